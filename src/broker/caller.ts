// Broker mode: who is calling. Callers send their own OIDC token (`Authorization: Bearer <JWT>`)
// and the gateway verifies it against the configured issuer's published keys.
import { createHash } from 'node:crypto';
import {
  createRemoteJWKSet,
  errors,
  jwtVerify,
  type FlattenedJWSInput,
  type JWSHeaderParameters,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import { LRUCache } from 'lru-cache';
import { GatewayError } from '../errors.ts';

export interface Caller {
  issuer: string;
  subject: string;
  groups: string[];
}

export interface CallerAuthOptions {
  /** CALLER_ISSUER */
  issuer: string;
  /** CALLER_AUDIENCE */
  audience: string;
  /** CALLER_JWKS_URL; default: `jwks_uri` of `${issuer}/.well-known/openid-configuration` */
  jwksUrl?: string;
  /** CALLER_GROUPS_CLAIM: a string array; absent = no groups */
  groupsClaim: string;
  /** Discovery / JWKS fetch timeout; default 5 s. */
  timeoutMs?: number;
  /** Milliseconds since the epoch, for tests. */
  now?: () => number;
}

// Asymmetric only: with a symmetric algorithm anyone holding the issuer's *public* key could
// sign (alg confusion), and `none` is not a signature at all.
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
const CLOCK_TOLERANCE_SECONDS = 30;
/** A token with a kid the JWKS lacks refetches it at most this often (a flood of bogus kids must not). */
const JWKS_COOLDOWN_MS = 30_000;
/** Keys are refetched this often even when every kid is known, so a withdrawn key stops working. */
const JWKS_MAX_AGE_MS = 10 * 60_000;
const CACHE_MAX_ENTRIES = 10_000;
/** Far above any real ID token; keeps hashing and parsing bounded. */
const MAX_TOKEN_LENGTH = 16 * 1024;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

type RemoteJwks = ReturnType<typeof createRemoteJWKSet>;

/** The issuer's keys could not be obtained: the gateway's problem, not the caller's. */
class KeySourceError extends Error {}

interface CachedCaller {
  caller: Caller;
  /** The token's `exp`, in ms. */
  expiresAt: number;
}

export class CallerAuthenticator {
  private readonly now: () => number;
  private readonly timeoutMs: number;
  private readonly issuer: string;
  /** Keyed by the SHA-256 of the token: a heap dump must not hand out bearer tokens. */
  private readonly cache = new LRUCache<string, CachedCaller>({ max: CACHE_MAX_ENTRIES });
  /** Discovery (when needed) plus the JWKS handle; dropped on failure so the next call retries. */
  private jwks?: Promise<RemoteJwks>;
  /** When the JWKS was last loaded, on `now()`'s clock. */
  private jwksLoadedAt?: number;

  constructor(private readonly opts: CallerAuthOptions) {
    this.now = opts.now ?? Date.now;
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.issuer = opts.issuer;
  }

  async authenticate(authorization: string | undefined): Promise<Caller> {
    const token = bearerToken(authorization);
    const key = createHash('sha256').update(token).digest('base64url');
    const now = this.now();
    const hit = this.cache.get(key);
    if (hit) {
      if (hit.expiresAt > now) return hit.caller;
      this.cache.delete(key);
    }

    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.getKey, {
        issuer: this.issuer,
        audience: this.opts.audience,
        algorithms: ALGORITHMS,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        requiredClaims: ['sub', 'exp'],
        currentDate: new Date(now),
      }));
    } catch (e) {
      throw this.verificationError(e);
    }

    // jose checks that `sub` is present, not what it holds.
    if (typeof payload.sub !== 'string' || payload.sub === '') {
      throw unauthenticated('The caller token\'s "sub" claim must be a non-empty string.');
    }
    // Shared by every request that presents the token: nobody may change it.
    const groups = Object.freeze([...this.groups(payload)]) as string[];
    const caller: Caller = Object.freeze({ issuer: this.issuer, subject: payload.sub, groups });
    this.cache.set(key, { caller, expiresAt: payload.exp! * 1000 });
    return caller;
  }

  private groups(payload: JWTPayload): string[] {
    const claim = this.opts.groupsClaim;
    const value = payload[claim];
    if (value === undefined) return [];
    if (!Array.isArray(value) || !value.every((g) => typeof g === 'string')) {
      throw unauthenticated(`The caller token's "${claim}" claim must be an array of strings.`);
    }
    return value as string[];
  }

  private readonly getKey: JWTVerifyGetKey = async (header: JWSHeaderParameters, token: FlattenedJWSInput) => {
    try {
      const jwks = await this.loadJwks();
      if (this.jwksLoadedAt === undefined || this.now() - this.jwksLoadedAt >= JWKS_MAX_AGE_MS) {
        await this.reloadJwks(jwks);
      }
      try {
        return await jwks(header, token);
      } catch (e) {
        // A new kid usually means the issuer rotated its keys since we last looked.
        if (!(e instanceof errors.JWKSNoMatchingKey) || this.now() - this.jwksLoadedAt! < JWKS_COOLDOWN_MS) throw e;
        await this.reloadJwks(jwks);
        return await jwks(header, token);
      }
    } catch (e) {
      if (e instanceof KeySourceError || e instanceof errors.JWKSNoMatchingKey || e instanceof errors.JWKSMultipleMatchingKeys) {
        throw e;
      }
      throw new KeySourceError(`the issuer's JWKS could not be loaded (${describe(e)})`);
    }
  };

  private async reloadJwks(jwks: RemoteJwks): Promise<void> {
    const started = this.now();
    await jwks.reload();
    this.jwksLoadedAt = started;
  }

  private loadJwks(): Promise<RemoteJwks> {
    this.jwks ??= this.jwksUrl().then(
      (url) =>
        // jose's own cache timers run on the wall clock; ours run on `now`, so jose's are disabled.
        createRemoteJWKSet(url, { timeoutDuration: this.timeoutMs, cooldownDuration: Infinity, cacheMaxAge: Infinity }),
      (e: unknown) => {
        this.jwks = undefined;
        throw e;
      },
    );
    return this.jwks;
  }

  private async jwksUrl(): Promise<URL> {
    if (this.opts.jwksUrl) return new URL(this.opts.jwksUrl);
    const where = `${this.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    let doc: unknown;
    try {
      const res = await fetch(where, {
        headers: { accept: 'application/json' },
        redirect: 'manual',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      if (res.status !== 200) {
        await res.body?.cancel();
        throw new KeySourceError(`the issuer's discovery document answered HTTP ${res.status}`);
      }
      doc = await res.json();
    } catch (e) {
      if (e instanceof KeySourceError) throw e;
      throw new KeySourceError(`the issuer's discovery document could not be loaded (${describe(e)})`);
    }
    const d = (doc && typeof doc === 'object' ? doc : {}) as Record<string, unknown>;
    // OIDC Discovery §4.3: a document naming another issuer must not be used.
    if (d.issuer !== this.issuer) throw new KeySourceError("the issuer's discovery document names a different issuer");
    if (typeof d.jwks_uri !== 'string' || !URL.canParse(d.jwks_uri)) {
      throw new KeySourceError("the issuer's discovery document has no valid jwks_uri");
    }
    return new URL(d.jwks_uri);
  }

  private verificationError(e: unknown): GatewayError {
    if (e instanceof GatewayError) return e;
    if (e instanceof KeySourceError) {
      return new GatewayError(`Caller authentication is unavailable: ${e.message}.`, 'UPSTREAM_UNAVAILABLE');
    }
    if (e instanceof errors.JWTExpired) return unauthenticated('The caller token has expired.');
    if (e instanceof errors.JWTClaimValidationFailed) return unauthenticated(this.claimProblem(e.claim, e.reason));
    if (e instanceof errors.JOSEAlgNotAllowed) {
      return unauthenticated('The caller token is not signed with an allowed algorithm (asymmetric signatures only).');
    }
    if (e instanceof errors.JWKSNoMatchingKey) {
      return unauthenticated('The caller token is signed with a key the issuer does not publish (unknown kid).');
    }
    if (e instanceof errors.JWKSMultipleMatchingKeys) {
      return unauthenticated("The caller token's key id matches several of the issuer's keys.");
    }
    if (e instanceof errors.JWSSignatureVerificationFailed) {
      return unauthenticated("The caller token's signature does not verify with the issuer's keys.");
    }
    if (e instanceof errors.JWSInvalid || e instanceof errors.JWTInvalid) return malformed();
    return unauthenticated('The caller token could not be verified.');
  }

  private claimProblem(claim: string, reason: string): string {
    if (reason === 'missing') return `The caller token has no "${claim}" claim.`;
    if (claim === 'iss') return `The caller token was not issued by the configured issuer (${this.issuer}).`;
    if (claim === 'aud') return `The caller token is not meant for this gateway (audience ${this.opts.audience}).`;
    if (claim === 'nbf') return 'The caller token is not valid yet.';
    return `The caller token's "${claim}" claim is invalid.`;
  }
}

function bearerToken(authorization: string | undefined): string {
  if (authorization === undefined || authorization.trim() === '') {
    throw unauthenticated('The request has no Authorization header; send "Bearer <token>".');
  }
  // RFC 7235: the scheme is case-insensitive.
  const m = /^Bearer +(\S+) *$/i.exec(authorization);
  if (!m) throw unauthenticated('The Authorization header must use the Bearer scheme: "Bearer <token>".');
  const token = m[1]!;
  if (token.length > MAX_TOKEN_LENGTH || !COMPACT_JWS.test(token)) throw malformed();
  return token;
}

const unauthenticated = (message: string) => new GatewayError(message, 'UNAUTHENTICATED');
const malformed = () => unauthenticated('The bearer token is not a well-formed JWT.');

/** Fetch failures nest their reason (`fetch failed` → ECONNREFUSED); the URL is config, not a secret. */
function describe(e: unknown): string {
  if (e instanceof Error && e.name === 'TimeoutError') return 'timed out';
  if (e instanceof errors.JWKSTimeout) return 'timed out';
  const cause = e instanceof Error ? (e.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
  if (typeof cause?.code === 'string') return cause.code;
  if (typeof cause?.message === 'string') return cause.message;
  return e instanceof Error ? e.message : String(e);
}
