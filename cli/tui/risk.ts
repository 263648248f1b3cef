/**
 * A runbook's risk and owners, as the screens show them. Servers from before these existed send
 * neither, so each is read as optional and shown as "unknown" rather than guessed.
 */
import type { Tone } from './theme.ts';

export type Risk = 'low' | 'medium' | 'high';

/** The risk a runbook summary or a plan's runbook section names, if it names a valid one. */
export function riskOf(runbook: object): Risk | undefined {
  const risk = (runbook as { risk?: unknown }).risk;
  return risk === 'low' || risk === 'medium' || risk === 'high' ? risk : undefined;
}

/** The owners a runbook summary or a plan's runbook section names, if any. */
export function ownersOf(runbook: object): readonly string[] | undefined {
  return stringsOf((runbook as { owners?: unknown }).owners);
}

/** The groups whose members may approve (a plan's `approvalGroups`, a summary's `approval.groups`). */
export function approvalGroupsOf(source: object): readonly string[] | undefined {
  const s = source as { approvalGroups?: unknown; approval?: { groups?: unknown } };
  return stringsOf(s.approvalGroups ?? s.approval?.groups);
}

function stringsOf(value: unknown): readonly string[] | undefined {
  return Array.isArray(value) && value.every((v) => typeof v === 'string') ? value : undefined;
}

/** Always a word; the colour only repeats it (NO_COLOR reads the same). */
export const RISK_TONE: Record<Risk, Tone> = { low: 'good', medium: 'warn', high: 'bad' };

/** "risk high", or "risk unknown" from a server that does not say. */
export function riskText(risk: Risk | undefined): string {
  return `risk ${risk ?? 'unknown'}`;
}
