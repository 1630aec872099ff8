// IDaaS PAM, EIAM Developer API 2022-02-25: route handlers.
//
// Where the upstream docs are silent we pick the behaviour an OAuth 2.0 resource server
// (RFC 6750) would show, and say so next to the code. Order of checks on every route:
// bearer token (401) → rate limit (429) → instance (404 / 401) → scope (403) → parameters (400)
// → entities (404). Authentication always comes before anything that depends on input.
import {
  createHash,
  createHmac,
  generateKeyPairSync,
  randomBytes,
  randomUUID,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';
import { SignJWT } from 'jose';
import { EmuError, type Dialect, type EmuRequest, type EmulatorState, type Route } from './core.ts';
import type { TokenRegistry } from './oauth.ts';
import {
  DEMO_ACCESS_TOKENS,
  DEMO_AUTHENTICATION_TOKENS,
  DEMO_CLOUD_ACCOUNT_ROLES,
  DEMO_CREDENTIAL_PROVIDERS,
  IDAAS_SCOPES,
  JWT_LIFETIME_SECONDS,
  ROLE_CREDENTIAL_DURATION,
  type AuthenticationTokenFixture,
  type CloudAccountRoleFixture,
  type DemoAccessToken,
} from './fixtures.ts';

/** The Developer API's snake_case error dialect. */
export const idaasDialect: Dialect = {
  requestIdHeader: 'x-acs-request-id',
  error: (err, requestId) => ({ error: err.code, error_description: err.message, request_id: requestId, ...err.extra }),
};

/**
 * Requests per second per access token before the emulator answers 429 `throttling`;
 * 0 disables the limit. Deliberately far above anything the tests or benchmarks send
 * (benchmarks push a few thousand requests per second through one demo token): tests
 * exercise 429 through fault injection, this limit only keeps the emulator honest.
 */
export const IDAAS_RATE_LIMIT_PER_SECOND = 5000;

/** maxResults default and cap of the listing (the usual Alibaba Cloud paging bounds). */
export const IDAAS_PAGE_SIZE = { default: 20, max: 100 } as const;

/** The `iss` of minted JWTs; the instance's own OAuth issuer. */
export function idaasJwtIssuer(instanceId: string): string {
  return `https://${instanceId}.aliyunidaas.com/api/v2/iauths_system/oauth2`;
}

const INSTANCE = '([^/]+)';
const pattern = (rest: string) => new RegExp(`^/v2/${INSTANCE}/${rest}$`);

/** `issued`: the token endpoint's registry (oauth.ts), whose live tokens PAM accepts too. */
export function idaasRoutes(_state: EmulatorState, issued?: TokenRegistry): Route[] {
  // Per emulator: a fresh signing key, cursor secret and rate-limit windows, so nothing
  // minted by one emulator is accepted by another. (The clock arrives as `req.now`.)
  const ctx: Ctx = {
    limiter: new RateLimiter(IDAAS_RATE_LIMIT_PER_SECOND),
    cursors: new CursorCodec(),
    signer: new JwtSigner(),
    issued,
  };
  return [
    {
      name: 'idaas.listAuthenticationTokens',
      method: 'GET',
      pattern: pattern('authenticationTokens'),
      dialect: idaasDialect,
      handle: (req) => ({ status: 200, body: listAuthenticationTokens(req, ctx) }),
    },
    {
      name: 'idaas.obtainJwt',
      method: 'POST',
      pattern: pattern('authenticationTokens/_/actions/obtainJwt'),
      dialect: idaasDialect,
      handle: async (req) => ({ status: 200, body: await obtainJwt(req, ctx) }),
    },
    {
      name: 'idaas.obtainAccessCredential',
      method: 'GET',
      pattern: pattern('cloudAccountRoles/_/actions/obtainAccessCredential'),
      dialect: idaasDialect,
      handle: (req) => ({ status: 200, body: obtainAccessCredential(req, ctx) }),
    },
    {
      // Not part of the PAM API: the emulator's public key, so clients can verify minted JWTs.
      name: 'idaas.jwks',
      method: 'GET',
      pattern: pattern('\\.well-known/jwks\\.json'),
      dialect: idaasDialect,
      handle: (req) => {
        requireKnownInstance(req.params[0]!);
        return { status: 200, headers: { 'cache-control': 'public, max-age=300' }, body: ctx.signer.jwks() };
      },
    },
  ];
}

interface Ctx {
  limiter: RateLimiter;
  cursors: CursorCodec;
  signer: JwtSigner;
  issued: TokenRegistry | undefined;
}

// ---------------------------------------------------------------- authorization

const TOKENS_BY_VALUE = new Map<string, DemoAccessToken>(Object.values(DEMO_ACCESS_TOKENS).map((t) => [t.token, t]));

const KNOWN_INSTANCES = new Set<string>([
  ...Object.values(DEMO_ACCESS_TOKENS).flatMap((t) => t.instances),
  ...DEMO_AUTHENTICATION_TOKENS.map((t) => t.instanceId),
  ...Object.values(DEMO_CLOUD_ACCOUNT_ROLES).map((r) => r.instanceId),
]);

function invalidToken(message: string): EmuError {
  return new EmuError(401, 'invalid_token', message, { 'www-authenticate': 'Bearer error="invalid_token"' });
}

function requireKnownInstance(instanceId: string): void {
  if (!KNOWN_INSTANCES.has(instanceId)) throw new EmuError(404, 'not_found', `Instance ${instanceId} does not exist.`);
}

/** Authenticates the bearer token and checks it may use `scope` on the path's instance. */
function authorize(req: EmuRequest, scope: string, ctx: Ctx): string {
  const header = req.headers.authorization;
  const m = typeof header === 'string' ? /^Bearer +([\x21-\x7e]+) *$/i.exec(header) : null;
  if (!m) throw invalidToken('The request carries no valid "Authorization: Bearer <access token>" header.');
  const token = TOKENS_BY_VALUE.get(m[1]!) ?? ctx.issued?.lookup(m[1]!, req.now);
  if (!token) throw invalidToken('The access token is invalid or expired.');

  // Throttled per token, before any lookup, like the real API gateway in front of IDaaS.
  if (!ctx.limiter.take(token.token, req.now)) {
    throw new EmuError(429, 'throttling', 'Request was denied due to request throttling.', { 'retry-after': '1' });
  }

  const instanceId = req.params[0]!;
  requireKnownInstance(instanceId);
  // An access token is issued by one instance's authorization server; another instance
  // cannot validate it at all, so this is 401 invalid_token (get a token for that
  // instance), not 403 (which would say "valid token, ask for more scope").
  if (!token.instances.includes(instanceId)) throw invalidToken('The access token was not issued for this instance.');

  if (!token.scopes.includes(scope) && !token.scopes.includes(IDAAS_SCOPES.all)) {
    throw new EmuError(403, 'insufficient_scope', `The access token lacks the required scope ${scope}.`, {
      'www-authenticate': `Bearer error="insufficient_scope", scope="${scope}"`,
    });
  }
  return instanceId;
}

/** Fixed one-second windows per key; `perSecond <= 0` disables the limit. */
export class RateLimiter {
  private readonly windows = new Map<string, { second: number; count: number }>();
  constructor(readonly perSecond: number) {}

  /** Counts one request; false when it is over the limit. */
  take(key: string, nowMs: number): boolean {
    if (this.perSecond <= 0) return true;
    const second = Math.floor(nowMs / 1000);
    const w = this.windows.get(key);
    if (!w || w.second !== second) {
      // Keys are only ever authenticated tokens (demo ones, and the few the token endpoint issued), so this map stays small.
      this.windows.set(key, { second, count: 1 });
      return true;
    }
    w.count += 1;
    return w.count <= this.perSecond;
  }
}

// ---------------------------------------------------------------- parameters

const invalidRequest = (message: string) => new EmuError(400, 'invalid_request', message);

/** Optional parameters sent empty (`?revoked=`) count as absent, as the SDKs send them. */
function optionalParam(req: EmuRequest, name: string): string | undefined {
  const v = req.query.get(name);
  return v === null || v === '' ? undefined : v;
}

function requiredParam(req: EmuRequest, name: string): string {
  const v = optionalParam(req, name);
  if (v === undefined) throw invalidRequest(`The required parameter ${name} is missing.`);
  return v;
}

function booleanParam(req: EmuRequest, name: string): boolean | undefined {
  const v = optionalParam(req, name);
  if (v === undefined || v === 'true' || v === 'false') return v === undefined ? undefined : v === 'true';
  throw invalidRequest(`The parameter ${name} must be true or false.`);
}

function integerParam(req: EmuRequest, name: string, min: number, max: number): number | undefined {
  const v = optionalParam(req, name);
  if (v === undefined) return undefined;
  const n = /^\d{1,9}$/.test(v) ? Number(v) : NaN;
  if (!(n >= min && n <= max)) throw invalidRequest(`The parameter ${name} must be an integer from ${min} to ${max}.`);
  return n;
}

/** The JSON body as an object; the Developer API rejects anything else. */
function jsonObject(req: EmuRequest): Record<string, unknown> {
  const body = req.json();
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalidRequest('The request body must be a JSON object.');
  }
  return body as Record<string, unknown>;
}

function bodyString(body: Record<string, unknown>, name: string): string {
  const v = body[name];
  if (typeof v !== 'string' || v === '') {
    throw invalidRequest(`The required body field ${name} is missing or not a string.`);
  }
  return v;
}

// ---------------------------------------------------------------- ListAuthenticationTokens

const PROVIDER_IDENTIFIER_BY_ID = new Map(
  Object.values(DEMO_CREDENTIAL_PROVIDERS).map((p) => [p.credentialProviderId, p.identifier]),
);

interface TokenFilter {
  instanceId: string;
  consumerId: string;
  credentialProviderIdentifier: string;
  revoked: boolean | undefined;
  expired: boolean | undefined;
}

const isExpired = (t: AuthenticationTokenFixture, now: number) => t.expirationTime <= now;

function matches(t: AuthenticationTokenFixture, f: TokenFilter, now: number): boolean {
  return (
    t.instanceId === f.instanceId &&
    t.consumerId === f.consumerId &&
    PROVIDER_IDENTIFIER_BY_ID.get(t.credentialProviderId) === f.credentialProviderIdentifier &&
    (f.revoked === undefined || t.revoked === f.revoked) &&
    (f.expired === undefined || isExpired(t, now) === f.expired)
  );
}

function listAuthenticationTokens(req: EmuRequest, ctx: Ctx) {
  const instanceId = authorize(req, IDAAS_SCOPES.read, ctx);
  const filter: TokenFilter = {
    instanceId,
    consumerId: requiredParam(req, 'consumerId'),
    credentialProviderIdentifier: requiredParam(req, 'credentialProviderIdentifier'),
    revoked: booleanParam(req, 'revoked'),
    expired: booleanParam(req, 'expired'),
  };
  const maxResults = integerParam(req, 'maxResults', 1, IDAAS_PAGE_SIZE.max) ?? IDAAS_PAGE_SIZE.default;
  const nextToken = optionalParam(req, 'nextToken');
  const after = nextToken === undefined ? -1 : ctx.cursors.decode(nextToken, filter);

  // Positions in the fixture list are the sort key: a cursor names the last position
  // served, so a page never repeats or skips a token even if `expired` flips meanwhile.
  const matching: number[] = [];
  DEMO_AUTHENTICATION_TOKENS.forEach((t, i) => {
    if (matches(t, filter, req.now)) matching.push(i);
  });
  const start = matching.findIndex((i) => i > after);
  const page = start < 0 ? [] : matching.slice(start, start + maxResults);
  const hasMore = start >= 0 && start + maxResults < matching.length;

  return {
    entities: page.map((i) => ({ ...DEMO_AUTHENTICATION_TOKENS[i]! })),
    totalCount: matching.length,
    ...(hasMore ? { nextToken: ctx.cursors.encode(page.at(-1)!, filter) } : {}),
    maxResults,
  };
}

/**
 * Opaque, HMAC-signed page tokens: `NT` + base64url({a: last position, f: filter hash}) +
 * `.` + signature. Bound to the query's filters (instance included), so a token replayed
 * with other filters, forged or edited is a 400 rather than a silently wrong page.
 */
class CursorCodec {
  private readonly key = randomBytes(32);

  encode(after: number, filter: TokenFilter): string {
    const payload = Buffer.from(JSON.stringify({ a: after, f: filterHash(filter) })).toString('base64url');
    return `NT${payload}.${this.sign(payload)}`;
  }

  /** The position the token continues after. */
  decode(token: string, filter: TokenFilter): number {
    const m = /^NT([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(token);
    if (!m || !safeEqual(m[2]!, this.sign(m[1]!))) throw invalidRequest('The nextToken is invalid.');
    const { a, f } = JSON.parse(Buffer.from(m[1]!, 'base64url').toString('utf8')) as { a: number; f: string };
    if (f !== filterHash(filter)) {
      throw invalidRequest('The nextToken does not belong to this query; repeat the query with the same filters.');
    }
    return a;
  }

  private sign(payload: string): string {
    return createHmac('sha256', this.key).update(payload).digest('base64url').slice(0, 32);
  }
}

function filterHash(f: TokenFilter): string {
  const { instanceId, consumerId, credentialProviderIdentifier: provider, revoked, expired } = f;
  const canonical = JSON.stringify([instanceId, consumerId, provider, revoked ?? null, expired ?? null]);
  return createHash('sha256').update(canonical).digest('base64url').slice(0, 16);
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

// ---------------------------------------------------------------- ObtainJwtAuthenticationToken

const TOKENS_BY_ID = new Map(DEMO_AUTHENTICATION_TOKENS.map((t) => [t.authenticationTokenId, t]));

async function obtainJwt(req: EmuRequest, ctx: Ctx) {
  const instanceId = authorize(req, IDAAS_SCOPES.obtain, ctx);
  const body = jsonObject(req);
  const consumerId = bodyString(body, 'consumerId');
  const authenticationTokenId = bodyString(body, 'authenticationTokenId');

  // A token of another consumer is reported exactly like a missing one, so a caller
  // cannot probe other consumers' token ids.
  const token = TOKENS_BY_ID.get(authenticationTokenId);
  if (!token || token.instanceId !== instanceId || token.consumerId !== consumerId) {
    const message = `Authentication token ${authenticationTokenId} does not exist for this consumer.`;
    throw new EmuError(404, 'not_found', message);
  }
  // The docs are silent: a revoked or expired token is the caller's mistake, not a
  // conflict with server state it could resolve, so 400 invalid_request (as for OAuth's
  // invalid credentials) rather than 409.
  if (token.revoked) throw invalidRequest(`Authentication token ${authenticationTokenId} has been revoked.`);
  if (isExpired(token, req.now)) throw invalidRequest(`Authentication token ${authenticationTokenId} has expired.`);

  // Whole seconds, so the response's expirationTime is exactly the JWT's exp * 1000; a JWT
  // never outlives the authentication token it was minted from.
  const expirationTime = Math.min(
    Math.floor((req.now + JWT_LIFETIME_SECONDS * 1000) / 1000) * 1000,
    token.expirationTime,
  );
  const jwtValue = await ctx.signer.sign({
    instanceId,
    subject: consumerId,
    audience: PROVIDER_IDENTIFIER_BY_ID.get(token.credentialProviderId) ?? token.credentialProviderId,
    issuedAt: Math.floor(req.now / 1000),
    expiresAt: Math.floor(expirationTime / 1000),
    authenticationTokenId,
  });
  return {
    ...token,
    expirationTime,
    jwtContent: { jwtValue, derivedShortToken: `sk-${randomString(BASE62, 32)}` },
  };
}

/** An ES256 key generated once per emulator; minted JWTs carry its `kid`. */
class JwtSigner {
  private readonly privateKey: KeyObject;
  private readonly publicKey: KeyObject;
  readonly kid: string;

  constructor() {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.privateKey = privateKey;
    this.publicKey = publicKey;
    const spki = publicKey.export({ type: 'spki', format: 'der' });
    this.kid = createHash('sha256').update(spki).digest('base64url').slice(0, 16);
  }

  sign(c: {
    instanceId: string;
    subject: string;
    audience: string;
    issuedAt: number;
    expiresAt: number;
    authenticationTokenId: string;
  }): Promise<string> {
    return new SignJWT({ authentication_token_id: c.authenticationTokenId })
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: this.kid })
      .setIssuer(idaasJwtIssuer(c.instanceId))
      .setSubject(c.subject)
      .setAudience(c.audience)
      .setIssuedAt(c.issuedAt)
      .setExpirationTime(c.expiresAt)
      .setJti(randomUUID())
      .sign(this.privateKey);
  }

  jwks(): { keys: Record<string, unknown>[] } {
    return { keys: [{ ...this.publicKey.export({ format: 'jwk' }), kid: this.kid, alg: 'ES256', use: 'sig' }] };
  }
}

// ---------------------------------------------------------------- ObtainCloudAccountRoleAccessCredential

const ROLES_BY_EXTERNAL_ID = new Map<string, CloudAccountRoleFixture>(
  Object.values(DEMO_CLOUD_ACCOUNT_ROLES).map((r) => [`${r.instanceId} ${r.cloudAccountRoleExternalId}`, r]),
);

function obtainAccessCredential(req: EmuRequest, ctx: Ctx) {
  const instanceId = authorize(req, IDAAS_SCOPES.roleCredential, ctx);
  const externalId = requiredParam(req, 'cloudAccountRoleExternalId');
  const { min, max } = ROLE_CREDENTIAL_DURATION;
  const durationSeconds = integerParam(req, 'durationSeconds', min, max) ?? ROLE_CREDENTIAL_DURATION.default;

  const role = ROLES_BY_EXTERNAL_ID.get(`${instanceId} ${externalId}`);
  if (!role) throw new EmuError(404, 'not_found', `Cloud account role ${externalId} does not exist.`);

  const expiresAt = Math.floor(req.now / 1000) + durationSeconds;
  const expiration = new Date(expiresAt * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const { instanceId: _instance, ...roleFields } = role;
  return {
    ...roleFields,
    cloudAccountRoleAccessCredential: {
      accessCredentialExpiresAt: expiresAt,
      ...(role.cloudAccountVendorType === 'aws'
        ? { awsStsToken: awsStsToken(expiration) }
        : { alibabaCloudStsToken: alibabaStsToken(expiration) }),
    },
  };
}

// Fresh random secrets on every call, shaped like the real ones (lengths and prefixes).
function alibabaStsToken(expiration: string) {
  return {
    accessKeyId: `STS.${randomString(BASE62, 25)}`,
    accessKeySecret: randomString(BASE62, 44),
    securityToken: `CAIS${randomBytes(300).toString('base64')}`,
    expiration,
  };
}

function awsStsToken(expiration: string) {
  return {
    // AWS key ids are 'ASIA' (temporary credentials) + 16 chars of upper-case base32.
    accessKeyId: `ASIA${randomString(BASE32_UPPER, 16)}`,
    secretAccessKey: randomBytes(30).toString('base64'),
    sessionToken: `IQoJb3JpZ2luX2Vj${randomBytes(450).toString('base64')}`,
    expiration,
  };
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const BASE32_UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** Uniformly random string over `alphabet` (rejection sampling: no modulo bias). */
function randomString(alphabet: string, length: number): string {
  const limit = 256 - (256 % alphabet.length);
  let out = '';
  while (out.length < length) {
    for (const b of randomBytes(length * 2)) {
      if (b < limit) out += alphabet[b % alphabet.length];
      if (out.length === length) break;
    }
  }
  return out;
}
