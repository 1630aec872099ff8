// The IDaaS instance's OAuth 2.0 token endpoint (client credentials only), and the registry
// of the access tokens it issued, which the PAM routes accept (idaas/auth.ts `authorize()`).
//
// RFC 6749 decides where the IDaaS docs are silent: one client authentication method per
// request (2.3), errors as `{error, error_description}` (5.2), `cache-control: no-store` on
// tokens (5.1). private_key_jwt follows RFC 7523 3 (iss = sub = client id, aud = this endpoint).
import { createHash, createPublicKey, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import { decodeJwt, jwtVerify } from 'jose';
import { EmuError, type Dialect, type EmuRequest, type EmuResponse, type Route } from './core.ts';
import { DEMO_M2M_CLIENT, type DemoAccessToken, type M2mClientFixture } from './fixtures.ts';

export const IDAAS_TOKEN_PATH = '/api/v2/iauths_system/oauth2/token';
export const DEFAULT_ACCESS_TOKEN_TTL_SECONDS = 3600;
export const JWT_BEARER_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** Longest client-assertion lifetime accepted (`exp` at most this far ahead). */
export const MAX_ASSERTION_LIFETIME_SECONDS = 300;

/** OAuth's own error dialect: exactly `{error, error_description}`. */
export const oauthDialect: Dialect = {
  requestIdHeader: 'x-acs-request-id',
  error: (err) => ({ error: err.code, error_description: err.message, ...err.extra }),
};

export type IssuedAccessToken = Pick<DemoAccessToken, 'token' | 'scopes' | 'instances'> & { expiresAt: number };

// Bounds, so a long-running emulator (benchmarks) cannot grow without limit.
const MAX_ENTRIES = 10_000;

/** Per emulator: the access tokens issued and the assertion ids already used. */
export class TokenRegistry {
  private readonly tokens = new Map<string, IssuedAccessToken>();
  /** `${clientId} ${jti}` → the assertion's exp (ms): a jti is refused again until then. */
  private readonly usedJtis = new Map<string, number>();
  private ttlOverride: number | undefined;

  constructor(private readonly defaultTtlSeconds = DEFAULT_ACCESS_TOKEN_TTL_SECONDS) {}

  get ttlSeconds(): number {
    return this.ttlOverride ?? this.defaultTtlSeconds;
  }

  /** TTL of tokens issued from now on. */
  setTtlSeconds(seconds: number): void {
    this.ttlOverride = seconds;
  }

  issue(scopes: string[], instances: string[], now: number): IssuedAccessToken {
    prune(this.tokens, (t) => t.expiresAt <= now);
    const issued = {
      token: `idaas-at-${randomBytes(32).toString('base64url')}`,
      scopes,
      instances,
      expiresAt: now + this.ttlSeconds * 1000,
    };
    this.tokens.set(issued.token, issued);
    return issued;
  }

  /** The live token with this value; expired and revoked ones are unknown. */
  lookup(token: string, now: number): IssuedAccessToken | undefined {
    const t = this.tokens.get(token);
    if (!t) return undefined;
    if (t.expiresAt > now) return t;
    this.tokens.delete(token);
    return undefined;
  }

  /** Records an assertion id; false when it was used already and has not expired. */
  useJti(clientId: string, jti: string, expMs: number, now: number): boolean {
    const key = `${clientId} ${jti}`;
    const seen = this.usedJtis.get(key);
    if (seen !== undefined && seen > now) return false;
    prune(this.usedJtis, (exp) => exp <= now);
    this.usedJtis.set(key, expMs);
    return true;
  }

  revokeAll(): void {
    this.tokens.clear();
  }

  reset(): void {
    this.tokens.clear();
    this.usedJtis.clear();
    this.ttlOverride = undefined;
  }
}

/** Drops stale entries once the map is full, then the oldest if it still is. */
function prune<V>(map: Map<string, V>, stale: (v: V) => boolean): void {
  if (map.size < MAX_ENTRIES) return;
  for (const [k, v] of map) if (stale(v)) map.delete(k);
  for (const k of map.keys()) {
    if (map.size < MAX_ENTRIES) break;
    map.delete(k);
  }
}

export function oauthRoutes(registry: TokenRegistry, clients: readonly M2mClientFixture[] = [DEMO_M2M_CLIENT]): Route[] {
  const byId = new Map(clients.map((c) => [c.clientId, c]));
  const publicKeys = new Map<string, KeyObject>(clients.map((c) => [c.clientId, createPublicKey(c.privateKeyPem)]));
  return [
    {
      name: 'idaas.token',
      method: 'POST',
      pattern: new RegExp(`^${IDAAS_TOKEN_PATH}$`),
      dialect: oauthDialect,
      handle: async (req): Promise<EmuResponse> => {
        const form = readForm(req);
        const client = await authenticateClient(req, form, { byId, publicKeys, registry });
        const grantType = form.get('grant_type');
        if (!grantType) throw invalidRequest('The required parameter grant_type is missing.');
        if (grantType !== 'client_credentials') {
          throw new EmuError(400, 'unsupported_grant_type', 'Only the client_credentials grant is supported.');
        }
        const scopes = grantedScopes(form.get('scope'), client);
        const issued = registry.issue(scopes, client.instances, req.now);
        return {
          status: 200,
          headers: { 'cache-control': 'no-store', pragma: 'no-cache' },
          body: {
            access_token: issued.token,
            token_type: 'Bearer',
            expires_in: registry.ttlSeconds,
            scope: scopes.join(' '),
          },
        };
      },
    },
  ];
}

const invalidRequest = (message: string) => new EmuError(400, 'invalid_request', message);

// RFC 6749 5.2 allows 400 or 401 for invalid_client; 401 needs a challenge (RFC 9110 11.6.1),
// and Basic is the scheme this endpoint supports.
const invalidClient = (message: string) =>
  new EmuError(401, 'invalid_client', message, { 'www-authenticate': 'Basic realm="idaas"' });

function readForm(req: EmuRequest): URLSearchParams {
  const type = req.headers['content-type'];
  if (typeof type !== 'string' || !/^application\/x-www-form-urlencoded\s*(;|$)/i.test(type)) {
    throw invalidRequest('The request body must be application/x-www-form-urlencoded.');
  }
  const form = new URLSearchParams(req.rawBody.toString('utf8'));
  for (const name of new Set(form.keys())) {
    if (form.getAll(name).length > 1) throw invalidRequest(`The parameter ${name} is included more than once.`);
  }
  return form;
}

interface AuthCtx {
  byId: Map<string, M2mClientFixture>;
  publicKeys: Map<string, KeyObject>;
  registry: TokenRegistry;
}

async function authenticateClient(req: EmuRequest, form: URLSearchParams, ctx: AuthCtx): Promise<M2mClientFixture> {
  const authorization = typeof req.headers.authorization === 'string' ? req.headers.authorization : undefined;
  const usesAssertion = form.has('client_assertion') || form.has('client_assertion_type');
  const attempts = [authorization !== undefined, form.has('client_secret'), usesAssertion].filter(Boolean).length;
  if (attempts > 1) throw invalidRequest('The request uses more than one client authentication method.');
  if (attempts === 0) throw invalidClient('The request carries no client authentication.');

  if (authorization !== undefined) {
    const m = /^Basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(authorization);
    if (!m) throw invalidClient('Only the Basic scheme is supported in the Authorization header.');
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw invalidClient('The Basic credentials are malformed.');
    const clientId = formDecode(decoded.slice(0, colon));
    const bodyId = form.get('client_id');
    if (bodyId !== null && bodyId !== clientId) throw invalidRequest('client_id differs from the authenticated client.');
    return checkSecret(ctx.byId.get(clientId), formDecode(decoded.slice(colon + 1)));
  }
  if (!usesAssertion) {
    const clientId = form.get('client_id');
    if (!clientId) throw invalidRequest('The required parameter client_id is missing.');
    return checkSecret(ctx.byId.get(clientId), form.get('client_secret')!);
  }
  return verifyAssertion(req, form, ctx);
}

/** Unknown client and wrong secret read the same, so client ids cannot be probed. */
function checkSecret(client: M2mClientFixture | undefined, secret: string): M2mClientFixture {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  if (!client || !timingSafeEqual(digest(client.clientSecret), digest(secret))) {
    throw invalidClient('Client authentication failed.');
  }
  return client;
}

/** `application/x-www-form-urlencoded` decoding of a Basic credential part (RFC 6749 2.3.1). */
function formDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    throw invalidClient('The Basic credentials are malformed.');
  }
}

async function verifyAssertion(req: EmuRequest, form: URLSearchParams, ctx: AuthCtx): Promise<M2mClientFixture> {
  const assertion = form.get('client_assertion');
  const type = form.get('client_assertion_type');
  if (!assertion || !type) throw invalidRequest('client_assertion and client_assertion_type go together.');
  if (type !== JWT_BEARER_ASSERTION_TYPE) throw invalidClient(`client_assertion_type must be ${JWT_BEARER_ASSERTION_TYPE}.`);

  let claimedId: unknown;
  try {
    claimedId = form.get('client_id') ?? decodeJwt(assertion).iss;
  } catch {
    throw invalidClient('The client assertion is not a JWT.');
  }
  const client = typeof claimedId === 'string' ? ctx.byId.get(claimedId) : undefined;
  const key = client && ctx.publicKeys.get(client.clientId);
  if (!client || !key) throw invalidClient('Client authentication failed.');

  // The client can only know this endpoint by the URL it called: the Host it sent plus the path.
  const host = req.headers.host ?? '';
  const audience = [`http://${host}${req.path}`, `https://${host}${req.path}`];
  let exp: number;
  let jti: string;
  try {
    const { payload } = await jwtVerify(assertion, key, {
      algorithms: ['RS256'],
      issuer: client.clientId,
      subject: client.clientId,
      audience,
      requiredClaims: ['exp', 'jti'],
      currentDate: new Date(req.now),
    });
    exp = payload.exp!;
    jti = String(payload.jti);
  } catch (e) {
    // jose's messages name the failed check, never the token.
    throw invalidClient(`The client assertion is invalid: ${e instanceof Error ? e.message : 'verification failed'}.`);
  }
  if (exp * 1000 - req.now > MAX_ASSERTION_LIFETIME_SECONDS * 1000) {
    throw invalidClient(`The client assertion must expire within ${MAX_ASSERTION_LIFETIME_SECONDS} seconds.`);
  }
  if (!ctx.registry.useJti(client.clientId, jti, exp * 1000, req.now)) {
    throw invalidClient('The client assertion was used already (jti replayed).');
  }
  return client;
}

/** Absent or empty: every scope the client may have; otherwise exactly those asked for. */
function grantedScopes(raw: string | null, client: M2mClientFixture): string[] {
  const asked = [...new Set((raw ?? '').split(' ').filter(Boolean))];
  if (asked.length === 0) return [...client.scopes];
  const refused = asked.filter((s) => !client.scopes.includes(s));
  if (refused.length > 0) throw new EmuError(400, 'invalid_scope', `The client may not ask for ${refused.join(' ')}.`);
  return asked;
}
