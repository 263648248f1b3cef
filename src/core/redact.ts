/**
 * Output is redacted before it is stored anywhere (history preview, audit log). The patterns
 * cover secrets that commonly leak into logs; a runbook that prints a secret on purpose is still
 * a bug, but one that does not leave the secret in the audit trail.
 */
const PATTERNS: readonly RegExp[] = [
  /\b(?:AKIA|ASIA|AROA|AIDA)[A-Z0-9]{16}\b/g, // AWS access key ids
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g,
  /\bxox[abposr]-[A-Za-z0-9-]{10,}\b/g, // Slack tokens
  /\bgh[pousr]_[A-Za-z0-9]{36,}\b/g, // GitHub tokens
  /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b/g, // JWTs
  /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{12,}/gi,
];
// key=value / key: value where the key names a secret; the key is kept, the value replaced.
// The key may be quoted, as in JSON or YAML output: {"password": "…"}.
const ASSIGNMENT =
  /(["']?)\b([A-Za-z0-9_.-]*(?:password|passwd|secret|token|api[_-]?key|access[_-]?key)[A-Za-z0-9_.-]*)\1(\s*[:=]\s*)("[^"]*"|'[^']*'|[^\s,;}]+)/gi;
// user:password@host in connection strings.
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]+:)[^\s@/]+@/gi;

export const REDACTED = '[REDACTED]';

export function redact(text: string): string {
  let out = text;
  for (const pattern of PATTERNS) out = out.replace(pattern, REDACTED);
  out = out.replace(URL_PASSWORD, `$1${REDACTED}@`);
  return out.replace(
    ASSIGNMENT,
    (_m, quote: string, key: string, sep: string) => `${quote}${key}${quote}${sep}${REDACTED}`,
  );
}

/** Caps text at `max` characters, saying how much was cut so a reader never mistakes it for all. */
export function cap(text: string, max: number): string {
  if (text.length <= max) return text;
  return `${text.slice(0, max)}\n[… ${text.length - max} more characters not shown]`;
}
