// The IDaaS PAM emulator over real HTTP: routes, auth and scopes, pagination, errors.
import { describe, expect, it } from 'vitest';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { startEmulator } from '../../src/emulator/index.ts';
import { IDAAS_PAGE_SIZE, RateLimiter, idaasJwtIssuer } from '../../src/emulator/idaas.ts';
import { DEMO_ACCESS_TOKENS, DEMO_AUTHENTICATION_TOKENS, DEMO_CLOUD_ACCOUNT_ROLES, DEMO_CONSUMERS, DEMO_CREDENTIAL_PROVIDERS, DEMO_INSTANCE_ID, DEMO_OTHER_INSTANCE_ID, JWT_LIFETIME_SECONDS, ROLE_CREDENTIAL_DURATION, type AuthenticationTokenFixture } from '../../src/emulator/fixtures.ts';
import { expectIdaasError } from './helpers.ts';
import { useEmulator } from '../helpers.ts';

const I = DEMO_INSTANCE_ID;
const T = DEMO_ACCESS_TOKENS;
const PROVIDER = DEMO_CREDENTIAL_PROVIDERS.jwt;
const ROLES = DEMO_CLOUD_ACCOUNT_ROLES;
const ALIBABA_ROLE = { cloudAccountRoleExternalId: ROLES.alibaba.cloudAccountRoleExternalId };
const AWS_ROLE = { cloudAccountRoleExternalId: ROLES.aws.cloudAccountRoleExternalId };

interface Page {
  entities: AuthenticationTokenFixture[];
  totalCount: number;
  nextToken?: string;
  maxResults: number;
}

const emu = useEmulator();

// ------------------------------------------------------------------ request helpers

type Query = Record<string, string | number | boolean | undefined>;

/** `token: null` sends no Authorization header; a string starting with a scheme is sent as is. */
function headers(token: string | null): Record<string, string> {
  if (token === null) return {};
  return { authorization: /^\w+ /.test(token) ? token : `Bearer ${token}` };
}

function qs(query: Query): string {
  const entries = Object.entries(query).filter((e): e is [string, string | number | boolean] => e[1] !== undefined);
  return new URLSearchParams(entries.map(([k, v]) => [k, String(v)])).toString();
}

function list(query: Query, token: string | null = T.full.token, instanceId = I) {
  return fetch(`${emu.url}/v2/${instanceId}/authenticationTokens?${qs(query)}`, { headers: headers(token) });
}

function obtainJwt(body: unknown, token: string | null = T.full.token, instanceId = I) {
  return fetch(`${emu.url}/v2/${instanceId}/authenticationTokens/_/actions/obtainJwt`, {
    method: 'POST',
    headers: { ...headers(token), 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

function roleCredential(query: Query, token: string | null = T.full.token, instanceId = I) {
  return fetch(`${emu.url}/v2/${instanceId}/cloudAccountRoles/_/actions/obtainAccessCredential?${qs(query)}`, {
    headers: headers(token),
  });
}

async function ok<B>(res: Response): Promise<B> {
  const text = await res.text();
  expect(res.status, text).toBe(200);
  expect(res.headers.get('x-acs-request-id')).toBeTruthy();
  return JSON.parse(text) as B;
}

// ------------------------------------------------------------------ fixture helpers

const isExpired = (t: AuthenticationTokenFixture) => t.expirationTime <= Date.now();

function fixtureTokens(consumerId: string, instanceId = I, providerId = PROVIDER.credentialProviderId) {
  return DEMO_AUTHENTICATION_TOKENS.filter(
    (t) => t.consumerId === consumerId && t.instanceId === instanceId && t.credentialProviderId === providerId,
  );
}

const LARGE = fixtureTokens(DEMO_CONSUMERS.large);
const MEDIUM = fixtureTokens(DEMO_CONSUMERS.medium);
const usable = MEDIUM.find((t) => !t.revoked && !isExpired(t))!;
const revoked = MEDIUM.find((t) => t.revoked && !isExpired(t))!;
const expired = MEDIUM.find((t) => !t.revoked && isExpired(t))!;
const largeQuery = { consumerId: DEMO_CONSUMERS.large, credentialProviderIdentifier: PROVIDER.identifier };

/** Follows nextToken to the end, checking every page on the way. */
async function walk(query: Query, maxResults: number, token = T.full.token) {
  const ids: string[] = [];
  const totals = new Set<number>();
  let nextToken: string | undefined;
  let pages = 0;
  do {
    const page = await ok<Page>(await list({ ...query, maxResults, nextToken }, token));
    pages += 1;
    expect(page.maxResults).toBe(maxResults);
    totals.add(page.totalCount);
    ids.push(...page.entities.map((e) => e.authenticationTokenId));
    nextToken = page.nextToken;
    if (nextToken !== undefined) expect(page.entities).toHaveLength(maxResults);
    else expect(page).not.toHaveProperty('nextToken');
  } while (nextToken !== undefined && pages < 200);
  return { ids, totals: [...totals], pages };
}

it('the fixtures cover the cases the tests rely on', () => {
  expect(LARGE).toHaveLength(160);
  expect(MEDIUM).toHaveLength(25);
  for (const t of [usable, revoked, expired]) expect(t).toBeDefined();
});

// ------------------------------------------------------------------ ListAuthenticationTokens

describe('idaas.listAuthenticationTokens', () => {
  it('answers the first page in the upstream shape with the default page size', async () => {
    const page = await ok<Page>(
      await list({ consumerId: DEMO_CONSUMERS.medium, credentialProviderIdentifier: PROVIDER.identifier }),
    );
    expect(page.maxResults).toBe(IDAAS_PAGE_SIZE.default);
    expect(page.totalCount).toBe(25);
    expect(page.entities).toEqual(MEDIUM.slice(0, 20));
    expect(page.nextToken).toEqual(expect.any(String));
    expect(Object.keys(page.entities[0]!).sort()).toEqual(
      [
        'instanceId',
        'authenticationTokenId',
        'credentialProviderId',
        'createTime',
        'updateTime',
        'authenticationTokenType',
        'revoked',
        'creatorType',
        'creatorId',
        'consumerType',
        'consumerId',
        'expirationTime',
      ].sort(),
    );
  });

  it.each([7, 100, 80])('walks the 160-token consumer with maxResults %i: no gaps, no duplicates', async (size) => {
    const { ids, totals, pages } = await walk(largeQuery, size);
    expect(ids).toEqual(LARGE.map((t) => t.authenticationTokenId));
    expect(new Set(ids).size).toBe(160);
    expect(totals).toEqual([160]);
    expect(pages).toBe(Math.ceil(160 / size));
  });

  it('accepts a different page size on the next page (only the filters are bound)', async () => {
    const first = await ok<Page>(await list({ ...largeQuery, maxResults: 7 }));
    const second = await ok<Page>(await list({ ...largeQuery, maxResults: 10, nextToken: first.nextToken }));
    expect(second.entities.map((e) => e.authenticationTokenId)).toEqual(
      LARGE.slice(7, 17).map((t) => t.authenticationTokenId),
    );
  });

  it.each([
    { revoked: true },
    { revoked: false },
    { expired: true },
    { expired: false },
    { revoked: false, expired: false },
    { revoked: true, expired: true },
  ])('filters %o like the fixtures', async (filter) => {
    const want = LARGE.filter(
      (t) =>
        (filter.revoked === undefined || t.revoked === filter.revoked) &&
        (filter.expired === undefined || isExpired(t) === filter.expired),
    );
    expect(want.length).toBeGreaterThan(0);
    const { ids, totals } = await walk({ ...largeQuery, ...filter }, 9);
    expect(ids).toEqual(want.map((t) => t.authenticationTokenId));
    expect(totals).toEqual([want.length]);
  });

  it('computes expiry on the emulator clock', async () => {
    emu.advanceClock(Date.UTC(2040, 0, 1) - Date.now());
    const page = await ok<Page>(await list({ ...largeQuery, expired: false }));
    expect(page).toEqual({ entities: [], totalCount: 0, maxResults: 20 });
  });

  it('filters by credential provider identifier and instance', async () => {
    const medium = { consumerId: DEMO_CONSUMERS.medium };
    const other = await ok<Page>(
      await list({ ...medium, credentialProviderIdentifier: DEMO_CREDENTIAL_PROVIDERS.other.identifier }),
    );
    const otherProviderId = DEMO_CREDENTIAL_PROVIDERS.other.credentialProviderId;
    expect(other.entities).toEqual(fixtureTokens(DEMO_CONSUMERS.medium, I, otherProviderId));
    expect(other.totalCount).toBe(4);

    const jwtProvider = { ...medium, credentialProviderIdentifier: PROVIDER.identifier };
    const otherInstance = await ok<Page>(await list(jwtProvider, T.full.token, DEMO_OTHER_INSTANCE_ID));
    expect(otherInstance.totalCount).toBe(12);
    expect(otherInstance.entities.every((e) => e.instanceId === DEMO_OTHER_INSTANCE_ID)).toBe(true);
  });

  it('answers an empty page for an unknown consumer or credential provider', async () => {
    for (const query of [
      { consumerId: 'app_nobody', credentialProviderIdentifier: PROVIDER.identifier },
      { consumerId: DEMO_CONSUMERS.large, credentialProviderIdentifier: 'no_such_provider' },
    ]) {
      const page = await ok<Page>(await list(query));
      expect(page).toEqual({ entities: [], totalCount: 0, maxResults: 20 });
    }
  });

  it.each<[string, Query]>([
    ['no consumerId', { credentialProviderIdentifier: PROVIDER.identifier }],
    ['an empty consumerId', { ...largeQuery, consumerId: '' }],
    ['no credentialProviderIdentifier', { consumerId: DEMO_CONSUMERS.large }],
    ['maxResults 0', { ...largeQuery, maxResults: 0 }],
    ['maxResults 101', { ...largeQuery, maxResults: 101 }],
    ['maxResults -1', { ...largeQuery, maxResults: -1 }],
    ['maxResults 1.5', { ...largeQuery, maxResults: '1.5' }],
    ['maxResults 1e1', { ...largeQuery, maxResults: '1e1' }],
    ['maxResults abc', { ...largeQuery, maxResults: 'abc' }],
    ['revoked yes', { ...largeQuery, revoked: 'yes' }],
    ['expired 1', { ...largeQuery, expired: '1' }],
    ['an unknown nextToken', { ...largeQuery, nextToken: 'NTxxxexample' }],
  ])('rejects %s with 400 invalid_request', async (_, query) => {
    await expectIdaasError(await list(query), 400, 'invalid_request');
  });

  describe('nextToken', () => {
    async function firstToken(): Promise<string> {
      const page = await ok<Page>(await list({ ...largeQuery, maxResults: 7 }));
      return page.nextToken!;
    }

    it.each<[string, Query]>([
      ['revoked added', { ...largeQuery, revoked: true }],
      ['expired added', { ...largeQuery, expired: false }],
      ['another consumer', { ...largeQuery, consumerId: DEMO_CONSUMERS.medium }],
      ['another provider', { ...largeQuery, credentialProviderIdentifier: DEMO_CREDENTIAL_PROVIDERS.other.identifier }],
    ])('is rejected with other filters (%s)', async (_, query) => {
      const nextToken = await firstToken();
      await expectIdaasError(await list({ ...query, maxResults: 7, nextToken }), 400, 'invalid_request');
    });

    it('is bound to its instance', async () => {
      const nextToken = await firstToken();
      const res = await list({ ...largeQuery, nextToken }, T.full.token, DEMO_OTHER_INSTANCE_ID);
      await expectIdaasError(res, 400, 'invalid_request');
    });

    it('is rejected when tampered with', async () => {
      const nextToken = await firstToken();
      const dot = nextToken.indexOf('.');
      const flip = (s: string, at: number) => s.slice(0, at) + (s[at] === 'A' ? 'B' : 'A') + s.slice(at + 1);
      // Forge the position: re-encode the payload with another offset, keep the signature.
      const payload = JSON.parse(Buffer.from(nextToken.slice(2, dot), 'base64url').toString()) as { a: number };
      const forgedPayload = Buffer.from(JSON.stringify({ ...payload, a: 0 })).toString('base64url');
      const forged = `NT${forgedPayload}${nextToken.slice(dot)}`;
      const unsigned = nextToken.slice(0, dot);
      for (const bad of [flip(nextToken, 3), flip(nextToken, nextToken.length - 2), forged, `${nextToken}x`, unsigned]) {
        await expectIdaasError(await list({ ...largeQuery, nextToken: bad }), 400, 'invalid_request');
      }
    });

    it('is rejected by another emulator (signed with a per-emulator secret)', async () => {
      const nextToken = await firstToken();
      const other = await startEmulator({ port: 0 });
      try {
        const res = await fetch(`${other.url}/v2/${I}/authenticationTokens?${qs({ ...largeQuery, nextToken })}`, {
          headers: headers(T.full.token),
        });
        await expectIdaasError(res, 400, 'invalid_request');
      } finally {
        await other.close();
      }
    });
  });
});

// ------------------------------------------------------------------ authentication and scopes

describe('authentication and authorization', () => {
  it.each<[string, string | null]>([
    ['no Authorization header', null],
    ['a Basic header', 'Basic ZGVtbzpkZW1v'],
    ['a Bearer header without a token', 'Bearer '],
    ['an unknown token', 'Bearer not-a-demo-token'],
    ['a token with a stray suffix', `Bearer ${T.full.token}x`],
  ])('answers 401 invalid_token for %s', async (_, auth) => {
    const res = await list(largeQuery, auth);
    await expectIdaasError(res, 401, 'invalid_token');
    expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });

  it('accepts the scheme in any case', async () => {
    await ok(await list(largeQuery, `bearer ${T.full.token}`));
  });

  it('checks the token before the instance and the parameters', async () => {
    await expectIdaasError(await list({}, null), 401, 'invalid_token');
    await expectIdaasError(await list(largeQuery, 'Bearer nope', 'idaas_no_such_instance'), 401, 'invalid_token');
    await expectIdaasError(await obtainJwt('{not json', null), 401, 'invalid_token');
    await expectIdaasError(await obtainJwt('{not json', T.readOnly.token), 403, 'insufficient_scope');
    await expectIdaasError(await roleCredential({ durationSeconds: 1 }, T.readOnly.token), 403, 'insufficient_scope');
  });

  it('answers 404 not_found for an unknown instance', async () => {
    await expectIdaasError(await list(largeQuery, T.full.token, 'idaas_no_such_instance'), 404, 'not_found');
    await expectIdaasError(await roleCredential(ALIBABA_ROLE, T.mint.token, 'idaas_nope'), 404, 'not_found');
  });

  it('answers 401 invalid_token for a token not issued for the instance', async () => {
    await expectIdaasError(await roleCredential(ALIBABA_ROLE, T.mint.token, DEMO_OTHER_INSTANCE_ID), 401, 'invalid_token');
  });

  const jwtBody = { consumerId: usable.consumerId, authenticationTokenId: usable.authenticationTokenId };

  it('the read-only token can list but not mint', async () => {
    await ok(await list(largeQuery, T.readOnly.token));
    const jwt = await obtainJwt(jwtBody, T.readOnly.token);
    await expectIdaasError(jwt, 403, 'insufficient_scope');
    expect(jwt.headers.get('www-authenticate')).toContain('scope="urn:cloud:idaas:pam|authentication_token:obtain"');
    await expectIdaasError(await roleCredential(ALIBABA_ROLE, T.readOnly.token), 403, 'insufficient_scope');
  });

  it('the mint token can mint but not list', async () => {
    await expectIdaasError(await list(largeQuery, T.mint.token), 403, 'insufficient_scope');
    await ok(await obtainJwt(jwtBody, T.mint.token));
    await ok(await roleCredential(ALIBABA_ROLE, T.mint.token));
  });

  it('the full token can do everything', async () => {
    await ok(await list(largeQuery, T.full.token));
    await ok(await obtainJwt(jwtBody, T.full.token));
    await ok(await roleCredential(ALIBABA_ROLE, T.full.token));
  });
});

describe('RateLimiter', () => {
  it('allows perSecond requests per key and second, and 0 disables it', () => {
    const limiter = new RateLimiter(3);
    const t = 1_000_000;
    expect([1, 2, 3, 4].map(() => limiter.take('a', t))).toEqual([true, true, true, false]);
    expect(limiter.take('b', t + 999)).toBe(true);
    expect(limiter.take('a', t + 999)).toBe(false);
    expect(limiter.take('a', t + 1000)).toBe(true);
    const off = new RateLimiter(0);
    expect(Array.from({ length: 100 }, () => off.take('a', t)).every(Boolean)).toBe(true);
  });
});

// ------------------------------------------------------------------ ObtainJwtAuthenticationToken

interface JwtAnswer extends AuthenticationTokenFixture {
  jwtContent: { jwtValue: string; derivedShortToken: string };
}

describe('idaas.obtainJwt', () => {
  const body = { consumerId: usable.consumerId, authenticationTokenId: usable.authenticationTokenId };

  it('mints a signed ES256 JWT with the documented claims', async () => {
    const before = Date.now();
    const answer = await ok<JwtAnswer>(await obtainJwt(body));
    const after = Date.now();
    const { jwtContent, expirationTime, ...entity } = answer;
    const { expirationTime: _fixtureExpiry, ...fixtureEntity } = usable;
    expect(entity).toEqual(fixtureEntity);
    expect(expirationTime).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + JWT_LIFETIME_SECONDS * 1000);
    expect(expirationTime).toBeLessThanOrEqual(after + JWT_LIFETIME_SECONDS * 1000);
    expect(jwtContent.derivedShortToken).toMatch(/^sk-[0-9A-Za-z]{24,}$/);

    const jwks = await ok<JSONWebKeySet>(await fetch(`${emu.url}/v2/${I}/.well-known/jwks.json`));
    const { payload, protectedHeader } = await jwtVerify(jwtContent.jwtValue, createLocalJWKSet(jwks), {
      algorithms: ['ES256'],
      issuer: idaasJwtIssuer(I),
      audience: PROVIDER.identifier,
      subject: usable.consumerId,
    });
    expect(protectedHeader).toMatchObject({ alg: 'ES256', kid: jwks.keys[0]!.kid });
    expect(payload.exp! * 1000).toBe(expirationTime);
    expect(payload.iat).toBeGreaterThanOrEqual(Math.floor(before / 1000));
    expect(payload.iat).toBeLessThanOrEqual(Math.ceil(after / 1000));
    expect(payload.jti).toEqual(expect.any(String));
    expect(payload.authentication_token_id).toBe(usable.authenticationTokenId);
  });

  it('mints a fresh JWT and short token on every call', async () => {
    const a = await ok<JwtAnswer>(await obtainJwt(body));
    const b = await ok<JwtAnswer>(await obtainJwt(body));
    expect(a.jwtContent.jwtValue).not.toBe(b.jwtContent.jwtValue);
    expect(a.jwtContent.derivedShortToken).not.toBe(b.jwtContent.derivedShortToken);
    expect(decodeProtectedHeader(a.jwtContent.jwtValue).kid).toBe(decodeProtectedHeader(b.jwtContent.jwtValue).kid);
  });

  it('serves the JWKS only for known instances', async () => {
    await expectIdaasError(await fetch(`${emu.url}/v2/idaas_no_such_instance/.well-known/jwks.json`), 404, 'not_found');
  });

  it.each<[string, string]>([
    ['an empty body', ''],
    ['a body that is not JSON', '{"consumerId": '],
    ['a JSON array', '[]'],
    ['JSON null', 'null'],
    ['no consumerId', JSON.stringify({ authenticationTokenId: usable.authenticationTokenId })],
    ['no authenticationTokenId', JSON.stringify({ consumerId: usable.consumerId })],
    ['a numeric consumerId', JSON.stringify({ consumerId: 42, authenticationTokenId: usable.authenticationTokenId })],
  ])('rejects %s with 400 invalid_request', async (_, raw) => {
    await expectIdaasError(await obtainJwt(raw), 400, 'invalid_request');
  });

  it('answers 404 for an unknown token, another consumer\'s token or another instance\'s token', async () => {
    const otherInstanceToken = fixtureTokens(DEMO_CONSUMERS.medium, DEMO_OTHER_INSTANCE_ID)[0]!;
    for (const b of [
      { consumerId: usable.consumerId, authenticationTokenId: 'atntkn_doesnotexist' },
      { consumerId: DEMO_CONSUMERS.small, authenticationTokenId: usable.authenticationTokenId },
      { consumerId: DEMO_CONSUMERS.medium, authenticationTokenId: otherInstanceToken.authenticationTokenId },
    ]) {
      await expectIdaasError(await obtainJwt(b), 404, 'not_found');
    }
  });

  it('answers 400 invalid_request for a revoked or an expired token', async () => {
    for (const t of [revoked, expired]) {
      const res = await obtainJwt({ consumerId: t.consumerId, authenticationTokenId: t.authenticationTokenId });
      await expectIdaasError(res, 400, 'invalid_request');
    }
  });
});

// ------------------------------------------------------------------ ObtainCloudAccountRoleAccessCredential

interface StsAnswer {
  cloudAccountId: string;
  cloudAccountRoleId: string;
  cloudAccountRoleName: string;
  cloudAccountRoleExternalId: string;
  cloudAccountVendorType: string;
  cloudAccountRoleAccessCredential: {
    accessCredentialExpiresAt: number;
    alibabaCloudStsToken?: { accessKeyId: string; accessKeySecret: string; securityToken: string; expiration: string };
    awsStsToken?: { accessKeyId: string; secretAccessKey: string; sessionToken: string; expiration: string };
  };
}

describe('idaas.obtainAccessCredential', () => {
  const ISO_SECONDS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
  const { instanceId: _i, ...alibabaRole } = ROLES.alibaba;
  const { instanceId: _j, ...awsRole } = ROLES.aws;

  /** Asserts the credential expires `duration` seconds after the call, in both formats. */
  async function obtain(query: Query, duration: number): Promise<StsAnswer> {
    const before = Math.floor(Date.now() / 1000);
    const answer = await ok<StsAnswer>(await roleCredential(query));
    const after = Math.ceil(Date.now() / 1000);
    const cred = answer.cloudAccountRoleAccessCredential;
    expect(cred.accessCredentialExpiresAt).toBeGreaterThanOrEqual(before + duration);
    expect(cred.accessCredentialExpiresAt).toBeLessThanOrEqual(after + duration);
    const sts = cred.alibabaCloudStsToken ?? cred.awsStsToken;
    expect(sts?.expiration).toMatch(ISO_SECONDS);
    expect(Date.parse(sts!.expiration) / 1000).toBe(cred.accessCredentialExpiresAt);
    return answer;
  }

  it('issues an Alibaba Cloud STS token for the default duration', async () => {
    const answer = await obtain(ALIBABA_ROLE, ROLE_CREDENTIAL_DURATION.default);
    const { cloudAccountRoleAccessCredential: cred, ...role } = answer;
    expect(role).toEqual(alibabaRole);
    expect(Object.keys(cred).sort()).toEqual(['accessCredentialExpiresAt', 'alibabaCloudStsToken']);
    expect(cred.alibabaCloudStsToken).toMatchObject({
      accessKeyId: expect.stringMatching(/^STS\.[0-9A-Za-z]{20,}$/),
      accessKeySecret: expect.stringMatching(/^[0-9A-Za-z]{30,}$/),
      securityToken: expect.stringMatching(/^CAIS[A-Za-z0-9+/=]{100,}$/),
    });
  });

  it('issues an AWS STS token for an AWS role', async () => {
    const answer = await obtain({ ...AWS_ROLE, durationSeconds: 7200 }, 7200);
    const { cloudAccountRoleAccessCredential: cred, ...role } = answer;
    expect(role).toEqual(awsRole);
    expect(Object.keys(cred).sort()).toEqual(['accessCredentialExpiresAt', 'awsStsToken']);
    expect(cred.awsStsToken).toMatchObject({
      accessKeyId: expect.stringMatching(/^ASIA[A-Z2-7]{16}$/),
      secretAccessKey: expect.stringMatching(/^[A-Za-z0-9+/]{40}$/),
      sessionToken: expect.stringMatching(/^[A-Za-z0-9+/=]{100,}$/),
    });
  });

  it.each([ROLE_CREDENTIAL_DURATION.min, ROLE_CREDENTIAL_DURATION.max])('accepts durationSeconds %i', async (seconds) => {
    await obtain({ ...ALIBABA_ROLE, durationSeconds: seconds }, seconds);
  });

  it('expires relative to the emulator clock', async () => {
    const day = 86_400_000;
    emu.advanceClock(day);
    const answer = await ok<StsAnswer>(await roleCredential(ALIBABA_ROLE));
    const expected = Math.floor((Date.now() + day) / 1000) + ROLE_CREDENTIAL_DURATION.default;
    const { accessCredentialExpiresAt } = answer.cloudAccountRoleAccessCredential;
    expect(Math.abs(accessCredentialExpiresAt - expected)).toBeLessThanOrEqual(2);
  });

  it('hands out fresh secrets on every call', async () => {
    const secretsOf = ({ cloudAccountRoleAccessCredential: c }: StsAnswer) =>
      Object.entries(c.alibabaCloudStsToken ?? c.awsStsToken ?? {}).filter(([k]) => k !== 'expiration');
    for (const query of [ALIBABA_ROLE, AWS_ROLE]) {
      const a = secretsOf(await ok<StsAnswer>(await roleCredential(query)));
      const b = secretsOf(await ok<StsAnswer>(await roleCredential(query)));
      expect(a).toHaveLength(3);
      a.forEach(([key, secret], i) => expect(b[i], key).not.toEqual([key, secret]));
    }
  });

  it.each<[string, Query]>([
    ['no cloudAccountRoleExternalId', {}],
    ['durationSeconds 899', { durationSeconds: 899 }],
    ['durationSeconds 43201', { durationSeconds: 43_201 }],
    ['durationSeconds 1000.5', { durationSeconds: '1000.5' }],
    ['durationSeconds -900', { durationSeconds: -900 }],
    ['durationSeconds abc', { durationSeconds: 'abc' }],
  ])('rejects %s with 400 invalid_request', async (name, query) => {
    const withRole = name.startsWith('no ') ? query : { ...ALIBABA_ROLE, ...query };
    await expectIdaasError(await roleCredential(withRole), 400, 'invalid_request');
  });

  it('answers 404 for an unknown role or a role of another instance', async () => {
    const unknown = await roleCredential({ cloudAccountRoleExternalId: 'acs:ram::1:role/nope' });
    await expectIdaasError(unknown, 404, 'not_found');
    await expectIdaasError(await roleCredential(ALIBABA_ROLE, T.full.token, DEMO_OTHER_INSTANCE_ID), 404, 'not_found');
  });
});
