// IDaaS PAM, EIAM Developer API 2022-02-25: the route table. The operations live in idaas/.
//
// Where the upstream docs are silent we pick the behaviour an OAuth 2.0 resource server
// (RFC 6750) would show, and say so next to the code. Order of checks on every route:
// bearer token (401) → rate limit (429) → instance (404 / 401) → scope (403) → parameters (400)
// → entities (404). Authentication always comes before anything that depends on input, which
// is why each route calls `authorize` before its operation.
import type { Dialect, EmulatorState, Route } from './core.ts';
import { IDAAS_SCOPES } from './fixtures.ts';
import type { TokenRegistry } from './oauth.ts';
import { authorize, requireKnownInstance, type PamAuth } from './idaas/auth.ts';
import { listAuthenticationTokens, obtainJwt } from './idaas/authentication-tokens.ts';
import { obtainAccessCredential, type StsSettings } from './idaas/cloud-account-roles.ts';
import { JwtSigner } from './idaas/jwt-signer.ts';
import { EmulatorNextTokenCodec } from './idaas/next-token.ts';
import { RateLimiter } from './idaas/rate-limiter.ts';

export { IDAAS_PAGE_SIZE } from './idaas/authentication-tokens.ts';
export { idaasJwtIssuer } from './idaas/jwt-signer.ts';
export { RateLimiter } from './idaas/rate-limiter.ts';

/** The Developer API's snake_case error dialect. */
export const idaasDialect: Dialect = {
  requestIdHeader: 'x-acs-request-id',
  error: (err, requestId) => ({ error: err.code, error_description: err.message, request_id: requestId, ...err.extra }),
};

/**
 * Requests per second per access token before the emulator answers 429 `throttling`;
 * 0 disables the limit. Deliberately far above anything the tests or benchmarks send
 * (the direct REST baseline reached 4,600 requests per second per demo token on a fast run,
 * which 5,000 throttled now and then): tests exercise 429 through fault injection, this limit
 * only keeps the emulator honest.
 */
export const IDAAS_RATE_LIMIT_PER_SECOND = 20_000;

const INSTANCE = '([^/]+)';
const pattern = (rest: string) => new RegExp(`^/v2/${INSTANCE}/${rest}$`);

/**
 * `issued`: the token endpoint's registry (oauth.ts), whose live tokens PAM accepts too.
 * `sts`: the STS settings (read on every call, so the control API can change them).
 */
export function idaasRoutes(_state: EmulatorState, issued?: TokenRegistry, sts?: StsSettings): Route[] {
  // Per emulator: a fresh signing key, cursor secret and rate-limit windows, so nothing
  // minted by one emulator is accepted by another. (The clock arrives as `req.now`.)
  const auth: PamAuth = { limiter: new RateLimiter(IDAAS_RATE_LIMIT_PER_SECOND), issued };
  const nextTokens = new EmulatorNextTokenCodec();
  const signer = new JwtSigner();
  return [
    {
      name: 'idaas.listAuthenticationTokens',
      method: 'GET',
      pattern: pattern('authenticationTokens'),
      dialect: idaasDialect,
      handle: (req) => {
        const instanceId = authorize(req, IDAAS_SCOPES.read, auth);
        return { status: 200, body: listAuthenticationTokens(req, instanceId, nextTokens) };
      },
    },
    {
      name: 'idaas.obtainJwt',
      method: 'POST',
      pattern: pattern('authenticationTokens/_/actions/obtainJwt'),
      dialect: idaasDialect,
      handle: async (req) => {
        const instanceId = authorize(req, IDAAS_SCOPES.obtain, auth);
        return { status: 200, body: await obtainJwt(req, instanceId, signer) };
      },
    },
    {
      name: 'idaas.obtainAccessCredential',
      method: 'GET',
      pattern: pattern('cloudAccountRoles/_/actions/obtainAccessCredential'),
      dialect: idaasDialect,
      handle: (req) => {
        const instanceId = authorize(req, IDAAS_SCOPES.roleCredential, auth);
        return { status: 200, body: obtainAccessCredential(req, instanceId, sts) };
      },
    },
    {
      // Not part of the PAM API: the emulator's public key, so clients can verify minted JWTs.
      name: 'idaas.jwks',
      method: 'GET',
      pattern: pattern('\\.well-known/jwks\\.json'),
      dialect: idaasDialect,
      handle: (req) => {
        requireKnownInstance(req.params[0]!);
        return { status: 200, headers: { 'cache-control': 'public, max-age=300' }, body: signer.jwks() };
      },
    },
  ];
}
