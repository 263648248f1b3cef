import * as jose from 'jose';
import { UserError } from '../core/errors.ts';
import { RoleSchema, type Authenticator, type Role, type User } from './users.ts';

/** How the API server checks OIDC bearer tokens (from config.authz.oidc). */
export interface OidcSettings {
  readonly issuer: string;
  readonly audience: string;
  /** The issuer's key set; undefined means the jwks_uri of its discovery document. */
  readonly jwksUrl: string | undefined;
  /** The claim that names the user (sub by default), and the one that lists their groups. */
  readonly userClaim: string;
  readonly groupsClaim: string;
  /** Accepted signature algorithms: asymmetric only, so a published key can never act as an HMAC secret. */
  readonly algorithms: readonly string[];
  readonly clockSkewSeconds: number;
}

const SYMMETRIC = /^(HS|none$)/i;
const USER_ID = /^[^\p{Cc}\p{Cf}\s]{1,200}$/u;

/** A token that is not ours to judge: the static-token authenticator takes it. */
export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token);
}

/**
 * Verifies bearer JWTs against the issuer's published keys (jose's remote key set: cached, and
 * fetched again when a token names a key it has not seen, which is how rotation shows up).
 * A refused token throws UNAUTHENTICATED with one sentence that says what is wrong with it.
 */
export function oidcAuthenticator(
  settings: OidcSettings,
  options: {
    readonly now?: () => Date;
    readonly fetchTimeoutMs?: number;
    /** How long after one fetch of the key set an unknown key may trigger the next (jose's cooldown). */
    readonly refetchCooldownMs?: number;
  } = {},
): Authenticator & { verify(token: string, expected?: { readonly nonce?: string }): Promise<User> } {
  const bad = settings.algorithms.filter((a) => SYMMETRIC.test(a));
  if (bad.length > 0) {
    throw new UserError(
      'CONFIG_INVALID',
      `MECHANIC_OIDC_ALGORITHMS names ${bad.join(', ')}; only asymmetric algorithms are accepted, since an HMAC key would be the public key anyone can read`,
    );
  }
  let keys: Promise<ReturnType<typeof jose.createRemoteJWKSet>> | undefined;
  const keySet = (): Promise<ReturnType<typeof jose.createRemoteJWKSet>> => {
    keys ??= resolveJwksUrl(settings, options.fetchTimeoutMs ?? 5000).then((url) =>
      jose.createRemoteJWKSet(url, {
        timeoutDuration: options.fetchTimeoutMs ?? 5000,
        cooldownDuration: options.refetchCooldownMs ?? 30_000,
      }),
    );
    // A failed discovery is tried again with the next token rather than remembered.
    keys.catch(() => (keys = undefined));
    return keys;
  };

  /** `expected.nonce`: an ID token from a browser sign-in must carry the nonce that sign-in sent. */
  async function verify(token: string, expected: { readonly nonce?: string } = {}): Promise<User> {
    if (!looksLikeJwt(token))
      throw refused('the bearer token is not a well-formed JWT; sign in again with "mechanic login"');
    let payload: jose.JWTPayload;
    try {
      ({ payload } = await jose.jwtVerify(token, await keySet(), {
        issuer: settings.issuer,
        audience: settings.audience,
        algorithms: [...settings.algorithms],
        clockTolerance: settings.clockSkewSeconds,
        requiredClaims: ['exp', settings.userClaim],
        ...(options.now ? { currentDate: options.now() } : {}),
      }));
    } catch (e) {
      throw explain(e, token, settings);
    }
    if (expected.nonce !== undefined && payload['nonce'] !== expected.nonce) {
      throw refused('the ID token was issued for another sign-in (its nonce does not match); sign in again');
    }
    const id = payload[settings.userClaim];
    if (typeof id !== 'string' || !USER_ID.test(id)) {
      throw refused(
        `the token's "${settings.userClaim}" claim is not a usable user id; check MECHANIC_OIDC_USER_CLAIM`,
      );
    }
    const raw = payload[settings.groupsClaim];
    const groups = Array.isArray(raw) ? raw.filter((g): g is string => typeof g === 'string' && USER_ID.test(g)) : [];
    // A group named like a role (operator, approver, …) confers that role.
    const roles = groups.filter((g): g is Role => RoleSchema.safeParse(g).success);
    const name = [payload['name'], payload['preferred_username']].find((v): v is string => typeof v === 'string');
    return { id, displayName: name ?? id, roles, groups };
  }

  return { verify, authenticate: (token) => verify(token) };
}

/**
 * Tokens from the users file (service accounts, the embedded stack's demo users) and, when an
 * issuer is configured, OIDC JWTs. Which one judges a token depends on its shape alone.
 */
export function combinedAuthenticator(tokens: Authenticator, oidc: Authenticator | undefined): Authenticator {
  return {
    authenticate(token) {
      if (oidc && looksLikeJwt(token)) return oidc.authenticate(token);
      return tokens.authenticate(token);
    },
  };
}

async function resolveJwksUrl(settings: OidcSettings, timeoutMs: number): Promise<URL> {
  if (settings.jwksUrl) return new URL(settings.jwksUrl);
  const discovery = `${settings.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  let doc: { issuer?: unknown; jwks_uri?: unknown };
  try {
    const res = await fetch(discovery, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    doc = (await res.json()) as typeof doc;
  } catch (e) {
    throw new UserError(
      'SERVER_UNAVAILABLE',
      `the identity provider's discovery document at ${discovery} cannot be read (${e instanceof Error ? e.message : String(e)}); check MECHANIC_OIDC_ISSUER or set MECHANIC_OIDC_JWKS_URL`,
    );
  }
  if (doc.issuer !== settings.issuer || typeof doc.jwks_uri !== 'string') {
    throw new UserError(
      'CONFIG_INVALID',
      `the discovery document at ${discovery} names the issuer ${String(doc.issuer)}, not ${settings.issuer}, or no jwks_uri; check MECHANIC_OIDC_ISSUER`,
    );
  }
  return new URL(doc.jwks_uri);
}

function refused(message: string): UserError {
  return new UserError('UNAUTHENTICATED', message);
}

/** One sentence for each way a token fails; a verifier's internals are never echoed. */
function explain(e: unknown, token: string, settings: OidcSettings): Error {
  if (e instanceof UserError) return e;
  if (!(e instanceof jose.errors.JOSEError)) return e instanceof Error ? e : new Error(String(e));
  const again = 'sign in again with "mechanic login"';
  if (e instanceof jose.errors.JWTExpired) {
    const exp = typeof e.payload.exp === 'number' ? new Date(e.payload.exp * 1000).toISOString() : 'an earlier time';
    return refused(`the token expired at ${exp}; ${again}`);
  }
  if (e instanceof jose.errors.JWTClaimValidationFailed) {
    switch (e.claim) {
      case 'nbf':
        return refused(
          "the token is not valid yet (its nbf is in the future); check this machine's and the issuer's clocks",
        );
      case 'iat':
        return refused("the token says it was issued in the future; check this machine's and the issuer's clocks");
      case 'iss':
        return refused(
          `the token was issued by ${String(e.payload.iss)}, not by ${settings.issuer}; use a token from the configured issuer`,
        );
      case 'aud':
        return refused(
          `the token is for another audience than ${settings.audience}; ask the issuer for a token for mechanic`,
        );
      default:
        return e.reason === 'missing'
          ? refused(
              `the token has no "${e.claim}" claim, which mechanic requires; ask the issuer for a token that carries it`,
            )
          : refused(`the token's "${e.claim}" claim is invalid; ${again}`);
    }
  }
  if (e instanceof jose.errors.JOSEAlgNotAllowed || e instanceof jose.errors.JOSENotSupported) {
    return refused(
      `the token is signed with ${algOf(token)}, which mechanic does not accept (accepted: ${settings.algorithms.join(', ')})`,
    );
  }
  if (e instanceof jose.errors.JWKSNoMatchingKey) {
    return refused(`the token is signed with a key the issuer does not publish; ${again}`);
  }
  if (e instanceof jose.errors.JWSSignatureVerificationFailed) {
    return refused("the token's signature does not verify; it was altered or signed by someone else");
  }
  if (e instanceof jose.errors.JWKSTimeout || e instanceof jose.errors.JWKSInvalid) {
    return new UserError('SERVER_UNAVAILABLE', "the identity provider's keys cannot be fetched now; try again shortly");
  }
  return refused(`the bearer token is not a valid JWT; ${again}`);
}

function algOf(token: string): string {
  try {
    const alg = jose.decodeProtectedHeader(token).alg;
    return typeof alg === 'string' ? `alg ${JSON.stringify(alg.slice(0, 20))}` : 'no alg';
  } catch {
    return 'an unreadable header';
  }
}
