// The IDaaS OAuth token endpoint of the emulator over real HTTP: the three client
// authentication methods, OAuth's errors, and the issued tokens on the PAM routes.
import { beforeAll, describe, expect, it } from 'vitest';
import { createPrivateKey, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import { startEmulator } from '../../src/emulator/index.ts';
import { IDAAS_TOKEN_PATH, JWT_BEARER_ASSERTION_TYPE } from '../../src/emulator/oauth.ts';
import { DEMO_ACCESS_TOKENS, DEMO_AUTHENTICATION_TOKENS, DEMO_CONSUMERS, DEMO_CREDENTIAL_PROVIDERS, DEMO_INSTANCE_ID, DEMO_M2M_CLIENT, IDAAS_SCOPES } from '../../src/emulator/fixtures.ts';
import { expectIdaasError } from './helpers.ts';
import { useEmulator } from '../helpers.ts';

const C = DEMO_M2M_CLIENT;
const CLIENT_KEY = createPrivateKey(C.privateKeyPem);

const emu = useEmulator();
let endpoint: string;
beforeAll(() => {
  endpoint = `${emu.url}${IDAAS_TOKEN_PATH}`;
});

// ------------------------------------------------------------------ helpers

function post(form: Record<string, string>, headers: Record<string, string> = {}) {
  return fetch(endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form).toString(),
  });
}

const basic = (id: string, secret: string) => ({
  authorization: `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`,
});

const grant = (scope?: string) => ({ grant_type: 'client_credentials', ...(scope === undefined ? {} : { scope }) });

interface AssertionOptions {
  key?: KeyObject | Uint8Array;
  alg?: string;
  iss?: string;
  sub?: string;
  aud?: string;
  expiresIn?: number;
  jti?: string;
}

function assertion(o: AssertionOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: o.alg ?? 'RS256' })
    .setIssuer(o.iss ?? C.clientId)
    .setSubject(o.sub ?? C.clientId)
    .setAudience(o.aud ?? endpoint)
    .setJti(o.jti ?? randomUUID())
    .setIssuedAt(now)
    .setExpirationTime(now + (o.expiresIn ?? 60))
    .sign(o.key ?? CLIENT_KEY);
}

const jwtAuth = (clientAssertion: string) => ({
  client_assertion_type: JWT_BEARER_ASSERTION_TYPE,
  client_assertion: clientAssertion,
});

interface TokenAnswer {
  access_token: string;
  token_type: string;
  expires_in: number;
  scope: string;
}

async function expectToken(res: Response): Promise<TokenAnswer> {
  expect(res.status).toBe(200);
  expect(res.headers.get('cache-control')).toBe('no-store');
  const body = (await res.json()) as TokenAnswer;
  expect(body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, scope: expect.any(String) });
  return body;
}

/** OAuth's dialect: exactly `{error, error_description}`, the request id in a header. */
async function expectOAuthError(res: Response, status: number, error: string): Promise<string> {
  const body = (await res.json()) as Record<string, unknown>;
  expect({ status: res.status, error: body.error }).toEqual({ status, error });
  expect(Object.keys(body).sort()).toEqual(['error', 'error_description']);
  expect(res.headers.get('x-acs-request-id')).toMatch(/^[0-9A-F-]{36}$/);
  if (error === 'invalid_client') expect(res.headers.get('www-authenticate')).toMatch(/^Basic /);
  return body.error_description as string;
}

async function issue(scope?: string): Promise<string> {
  return (await expectToken(await post(grant(scope), basic(C.clientId, C.clientSecret)))).access_token;
}

const SMALL = DEMO_AUTHENTICATION_TOKENS.find((t) => t.consumerId === DEMO_CONSUMERS.small)!;

function list(token: string) {
  const qs = new URLSearchParams({
    consumerId: DEMO_CONSUMERS.small,
    credentialProviderIdentifier: DEMO_CREDENTIAL_PROVIDERS.jwt.identifier,
  });
  return fetch(`${emu.url}/v2/${DEMO_INSTANCE_ID}/authenticationTokens?${qs}`, { headers: { authorization: `Bearer ${token}` } });
}

function obtainJwt(token: string) {
  return fetch(`${emu.url}/v2/${DEMO_INSTANCE_ID}/authenticationTokens/_/actions/obtainJwt`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ consumerId: SMALL.consumerId, authenticationTokenId: SMALL.authenticationTokenId }),
  });
}

// ------------------------------------------------------------------ client authentication

describe('client authentication', () => {
  it('client_secret_basic gets every scope of the client when none is asked for', async () => {
    const body = await expectToken(await post(grant(), basic(C.clientId, C.clientSecret)));
    expect(body.scope.split(' ').sort()).toEqual([...C.scopes].sort());
    expect(body.access_token).not.toContain(C.clientSecret);
  });

  it('client_secret_post', async () => {
    const body = await expectToken(await post({ ...grant(IDAAS_SCOPES.read), client_id: C.clientId, client_secret: C.clientSecret }));
    expect(body.scope).toBe(IDAAS_SCOPES.read);
  });

  it('private_key_jwt, with or without client_id in the body', async () => {
    await expectToken(await post({ ...grant(), ...jwtAuth(await assertion()) }));
    await expectToken(await post({ ...grant(), client_id: C.clientId, ...jwtAuth(await assertion()) }));
  });

  it('a wrong secret and an unknown client read the same, and the secret is not echoed', async () => {
    const wrong = await expectOAuthError(await post(grant(), basic(C.clientId, 'wrong-secret-value')), 401, 'invalid_client');
    const unknown = await post({ ...grant(), client_id: 'no-such-client', client_secret: C.clientSecret });
    const text = await unknown.clone().text();
    expect(await expectOAuthError(unknown, 401, 'invalid_client')).toBe(wrong);
    expect(text).not.toContain(C.clientSecret);
  });

  it('no client authentication is invalid_client; two methods at once are invalid_request', async () => {
    await expectOAuthError(await post(grant()), 401, 'invalid_client');
    await expectOAuthError(await post({ ...grant(), client_id: C.clientId }), 401, 'invalid_client');
    const mixed = await post({ ...grant(), client_secret: C.clientSecret }, basic(C.clientId, C.clientSecret));
    await expectOAuthError(mixed, 400, 'invalid_request');
    const mixedJwt = await post({ ...grant(), client_id: C.clientId, client_secret: C.clientSecret, ...jwtAuth(await assertion()) });
    await expectOAuthError(mixedJwt, 400, 'invalid_request');
    await expectOAuthError(await post(grant(), { authorization: 'Bearer something' }), 401, 'invalid_client');
  });

  it('a repeated parameter or a non-form body is invalid_request', async () => {
    const twice = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...basic(C.clientId, C.clientSecret) },
      body: 'grant_type=client_credentials&scope=a&scope=b',
    });
    await expectOAuthError(twice, 400, 'invalid_request');
    const json = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...basic(C.clientId, C.clientSecret) },
      body: JSON.stringify(grant()),
    });
    await expectOAuthError(json, 400, 'invalid_request');
  });
});

describe('client assertions (private_key_jwt)', () => {
  const rejected = async (a: string | Promise<string>, why: RegExp) => {
    const description = await expectOAuthError(await post({ ...grant(), ...jwtAuth(await a) }), 401, 'invalid_client');
    expect(description).toMatch(why);
  };

  it('signed with another key', async () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    await rejected(assertion({ key: other }), /signature/);
  });

  it('expired, or expiring more than 5 minutes ahead', async () => {
    await rejected(assertion({ expiresIn: -120 }), /"exp"/);
    await rejected(assertion({ expiresIn: 600 }), /300 seconds/);
  });

  it('replayed (same jti)', async () => {
    const once = await assertion();
    await expectToken(await post({ ...grant(), ...jwtAuth(once) }));
    await rejected(once, /jti/);
    const jti = randomUUID();
    await expectToken(await post({ ...grant(), ...jwtAuth(await assertion({ jti })) }));
    await rejected(assertion({ jti }), /jti/);
  });

  it('for another audience, issuer or subject', async () => {
    await rejected(assertion({ aud: 'https://elsewhere.example/token' }), /"aud"/);
    await rejected(assertion({ sub: 'someone-else' }), /"sub"/);
    await rejected(assertion({ iss: 'no-such-client' }), /Client authentication failed/);
  });

  it('an HS256 assertion (even keyed with the client secret) is refused', async () => {
    await rejected(assertion({ alg: 'HS256', key: new TextEncoder().encode(C.clientSecret) }), /alg/);
  });

  it('a wrong assertion type, or an assertion without its type', async () => {
    const a = await assertion();
    await expectOAuthError(await post({ ...grant(), client_assertion_type: 'urn:other', client_assertion: a }), 401, 'invalid_client');
    await expectOAuthError(await post({ ...grant(), client_assertion: a }), 400, 'invalid_request');
    await expectOAuthError(await post({ ...grant(), client_assertion_type: JWT_BEARER_ASSERTION_TYPE, client_assertion: 'not.a.jwt' }), 401, 'invalid_client');
  });
});

describe('grant and scope', () => {
  const auth = () => basic(C.clientId, C.clientSecret);

  it('a grant other than client_credentials is unsupported_grant_type; none at all is invalid_request', async () => {
    await expectOAuthError(await post({ grant_type: 'password', username: 'u', password: 'p' }, auth()), 400, 'unsupported_grant_type');
    await expectOAuthError(await post({ scope: IDAAS_SCOPES.read }, auth()), 400, 'invalid_request');
  });

  it('a scope the client may not have is invalid_scope', async () => {
    const res = await post(grant(`${IDAAS_SCOPES.read} urn:cloud:idaas:other|admin`), auth());
    expect(await expectOAuthError(res, 400, 'invalid_scope')).toContain('urn:cloud:idaas:other|admin');
  });

  it('only POST', async () => {
    await expectIdaasError(await fetch(endpoint), 405, 'method_not_allowed');
  });

  it('injected faults answer in the OAuth dialect', async () => {
    emu.inject({ route: 'idaas.token', status: 503, times: 1 });
    await expectOAuthError(await post(grant(), auth()), 503, 'service_unavailable');
    expect(emu.counters()['idaas.token']!.requests).toBe(1);
  });
});

// ------------------------------------------------------------------ issued tokens on PAM

describe('issued access tokens on PAM', () => {
  it('carry exactly the scopes asked for', async () => {
    const token = await issue(IDAAS_SCOPES.read);
    const res = await list(token);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { totalCount: number }).totalCount).toBe(3);
    const denied = await obtainJwt(token);
    await expectIdaasError(denied, 403, 'insufficient_scope');
    expect(denied.headers.get('www-authenticate')).toContain(IDAAS_SCOPES.obtain);
    expect((await obtainJwt(await issue(IDAAS_SCOPES.obtain))).status).toBe(200);
  });

  it('expire on the emulator clock', async () => {
    const token = await issue();
    emu.advanceClock(3600_000 - 1000);
    expect((await list(token)).status).toBe(200);
    emu.advanceClock(1000);
    await expectIdaasError(await list(token), 401, 'invalid_token');
  });

  it('live as long as the TTL set by option or control route', async () => {
    const short = await startEmulator({ port: 0, accessTokenTtlSeconds: 30 });
    try {
      const res = await fetch(`${short.url}${IDAAS_TOKEN_PATH}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...basic(C.clientId, C.clientSecret) },
        body: 'grant_type=client_credentials',
      });
      expect(((await res.json()) as TokenAnswer).expires_in).toBe(30);
    } finally {
      await short.close();
    }

    const set = await fetch(`${emu.url}/__emulator/idaas/access-token-ttl`, { method: 'POST', body: JSON.stringify({ seconds: 60 }) });
    expect(set.status).toBe(200);
    const res = await post(grant(), basic(C.clientId, C.clientSecret));
    const body = (await res.json()) as TokenAnswer;
    expect(body.expires_in).toBe(60);
    emu.advanceClock(60_000);
    await expectIdaasError(await list(body.access_token), 401, 'invalid_token');

    emu.reset();
    await expectToken(await post(grant(), basic(C.clientId, C.clientSecret))); // back to 3600
    const bad = await fetch(`${emu.url}/__emulator/idaas/access-token-ttl`, { method: 'POST', body: JSON.stringify({ seconds: 0 }) });
    expect(bad.status).toBe(400);
  });

  it('are forgotten on revoke (API and control route) and reset; demo tokens keep working', async () => {
    const first = await issue();
    emu.revokeAccessTokens();
    await expectIdaasError(await list(first), 401, 'invalid_token');

    const second = await issue();
    const revoke = await fetch(`${emu.url}/__emulator/idaas/revoke-access-tokens`, { method: 'POST' });
    expect(revoke.status).toBe(204);
    await expectIdaasError(await list(second), 401, 'invalid_token');

    const third = await issue();
    emu.reset();
    await expectIdaasError(await list(third), 401, 'invalid_token');
    expect((await list(DEMO_ACCESS_TOKENS.full.token)).status).toBe(200);
  });

  it('of one emulator are unknown to another', async () => {
    const token = await issue();
    const other = await startEmulator({ port: 0 });
    try {
      const res = await fetch(`${other.url}/v2/${DEMO_INSTANCE_ID}/authenticationTokens?consumerId=x&credentialProviderIdentifier=y`, {
        headers: { authorization: `Bearer ${token}` },
      });
      await expectIdaasError(res, 401, 'invalid_token');
    } finally {
      await other.close();
    }
  });
});
