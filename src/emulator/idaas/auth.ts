// Who may call a PAM route. `authorize` runs first on every route, before anything reads input.
import { EmuError, type EmuRequest } from '../core.ts';
import {
  DEMO_ACCESS_TOKENS,
  DEMO_AUTHENTICATION_TOKENS,
  DEMO_CLOUD_ACCOUNT_ROLES,
  IDAAS_SCOPES,
  type DemoAccessToken,
} from '../fixtures.ts';
import type { TokenRegistry } from '../oauth.ts';
import type { RateLimiter } from './rate-limiter.ts';

/** Per emulator, so one emulator's tokens and windows mean nothing to another. */
export interface PamAuth {
  limiter: RateLimiter;
  /** The token endpoint's registry (oauth.ts): PAM accepts its live tokens too. */
  issued: TokenRegistry | undefined;
}

const TOKENS_BY_VALUE = new Map<string, DemoAccessToken>(Object.values(DEMO_ACCESS_TOKENS).map((t) => [t.token, t]));

const KNOWN_INSTANCES = new Set<string>([
  ...Object.values(DEMO_ACCESS_TOKENS).flatMap((t) => t.instances),
  ...DEMO_AUTHENTICATION_TOKENS.map((t) => t.instanceId),
  ...Object.values(DEMO_CLOUD_ACCOUNT_ROLES).map((r) => r.instanceId),
]);

function invalidToken(message: string): EmuError {
  return new EmuError(401, 'invalid_token', message, { 'www-authenticate': 'Bearer error="invalid_token"' });
}

export function requireKnownInstance(instanceId: string): void {
  if (!KNOWN_INSTANCES.has(instanceId)) throw new EmuError(404, 'not_found', `Instance ${instanceId} does not exist.`);
}

/** Authenticates the bearer token and checks it may use `scope` on the path's instance; returns the instance id. */
export function authorize(req: EmuRequest, scope: string, auth: PamAuth): string {
  const header = req.headers.authorization;
  const m = typeof header === 'string' ? /^Bearer +([\x21-\x7e]+) *$/i.exec(header) : null;
  if (!m) throw invalidToken('The request carries no valid "Authorization: Bearer <access token>" header.');
  const token = TOKENS_BY_VALUE.get(m[1]!) ?? auth.issued?.lookup(m[1]!, req.now);
  if (!token) throw invalidToken('The access token is invalid or expired.');

  // Throttled per token, before any lookup, like the real API gateway in front of IDaaS.
  if (!auth.limiter.take(token.token, req.now)) {
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
