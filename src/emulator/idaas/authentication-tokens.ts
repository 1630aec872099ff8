// ListAuthenticationTokens and ObtainJwtAuthenticationToken, over the demo authentication tokens.
// Each takes the instance id `authorize` already checked.
import { EmuError, type EmuRequest } from '../core.ts';
import {
  DEMO_AUTHENTICATION_TOKENS,
  DEMO_CREDENTIAL_PROVIDERS,
  JWT_LIFETIME_SECONDS,
  type AuthenticationTokenFixture,
} from '../fixtures.ts';
import type { JwtSigner } from './jwt-signer.ts';
import type { EmulatorNextTokenCodec, EmulatorTokenQuery } from './next-token.ts';
import { bodyString, booleanParam, integerParam, invalidRequest, jsonObject, optionalParam, requiredParam } from './params.ts';
import { BASE62, randomString } from './random.ts';

/** maxResults default and cap of the listing (the usual Alibaba Cloud paging bounds). */
export const IDAAS_PAGE_SIZE = { default: 20, max: 100 } as const;

const PROVIDER_IDENTIFIER_BY_ID = new Map(
  Object.values(DEMO_CREDENTIAL_PROVIDERS).map((p) => [p.credentialProviderId, p.identifier]),
);

const TOKENS_BY_ID = new Map(DEMO_AUTHENTICATION_TOKENS.map((t) => [t.authenticationTokenId, t]));

const isExpired = (t: AuthenticationTokenFixture, now: number) => t.expirationTime <= now;

function matches(t: AuthenticationTokenFixture, q: EmulatorTokenQuery, now: number): boolean {
  return (
    t.instanceId === q.instanceId &&
    t.consumerId === q.consumerId &&
    PROVIDER_IDENTIFIER_BY_ID.get(t.credentialProviderId) === q.credentialProviderIdentifier &&
    (q.revoked === undefined || t.revoked === q.revoked) &&
    (q.expired === undefined || isExpired(t, now) === q.expired)
  );
}

export function listAuthenticationTokens(req: EmuRequest, instanceId: string, nextTokens: EmulatorNextTokenCodec) {
  const query: EmulatorTokenQuery = {
    instanceId,
    consumerId: requiredParam(req, 'consumerId'),
    credentialProviderIdentifier: requiredParam(req, 'credentialProviderIdentifier'),
    revoked: booleanParam(req, 'revoked'),
    expired: booleanParam(req, 'expired'),
  };
  const maxResults = integerParam(req, 'maxResults', 1, IDAAS_PAGE_SIZE.max) ?? IDAAS_PAGE_SIZE.default;
  const nextToken = optionalParam(req, 'nextToken');
  const after = nextToken === undefined ? -1 : nextTokens.decode(nextToken, query);

  // Positions in the fixture list are the sort key: a cursor names the last position
  // served, so a page never repeats or skips a token even if `expired` flips meanwhile.
  const matching: number[] = [];
  DEMO_AUTHENTICATION_TOKENS.forEach((t, i) => {
    if (matches(t, query, req.now)) matching.push(i);
  });
  const start = matching.findIndex((i) => i > after);
  const page = start < 0 ? [] : matching.slice(start, start + maxResults);
  const hasMore = start >= 0 && start + maxResults < matching.length;

  return {
    entities: page.map((i) => ({ ...DEMO_AUTHENTICATION_TOKENS[i]! })),
    totalCount: matching.length,
    ...(hasMore ? { nextToken: nextTokens.encode(page.at(-1)!, query) } : {}),
    maxResults,
  };
}

export async function obtainJwt(req: EmuRequest, instanceId: string, signer: JwtSigner) {
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
  const jwtValue = await signer.sign({
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
