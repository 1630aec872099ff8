// The IDaaS minting mutations through the whole gateway: obtainJwtAuthenticationToken and
// obtainCloudAccountRoleAccessCredential, their input validation, upstream errors, partial
// results, and the rule that minting is never retried.
import { describe, expect, it } from 'vitest';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import {
  DEMO_ACCESS_TOKENS,
  DEMO_AUTHENTICATION_TOKENS,
  DEMO_CLOUD_ACCOUNT_ROLES,
  DEMO_CONSUMERS,
  DEMO_CREDENTIAL_PROVIDERS,
  DEMO_INSTANCE_ID,
  JWT_LIFETIME_SECONDS,
  ROLE_CREDENTIAL_DURATION,
} from '../../src/emulator/fixtures.ts';
import { idaasJwtIssuer } from '../../src/emulator/idaas.ts';
import { onlyError, useStack, type GqlResult } from '../helpers.ts';

const I = DEMO_INSTANCE_ID;
const LARGE = DEMO_CONSUMERS.large;
const PROVIDER = DEMO_CREDENTIAL_PROVIDERS.jwt;
const ROLES = DEMO_CLOUD_ACCOUNT_ROLES;
const JWT_ROUTE = 'idaas.obtainJwt';
const ROLE_ROUTE = 'idaas.obtainAccessCredential';
const REQUEST_ID = /^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

const now = () => Date.now();
const usable = DEMO_AUTHENTICATION_TOKENS.filter((t) => t.consumerId === LARGE && !t.revoked && t.expirationTime > now());
const USABLE_TOKEN = usable[0]!;
const REVOKED_TOKEN = DEMO_AUTHENTICATION_TOKENS.find((t) => t.consumerId === LARGE && t.revoked)!;

const OBTAIN_JWT = /* GraphQL */ `
  mutation ObtainJwt($input: ObtainJwtAuthenticationTokenInput!) {
    obtainJwtAuthenticationToken(input: $input) {
      authenticationToken {
        id authenticationTokenId instanceId consumerId credentialProviderId type revoked
        createdAt updatedAt expiresAt expiresIn expired
      }
      jwt { value derivedShortToken header claims }
    }
  }
`;

const CREDENTIAL_FIELDS = /* GraphQL */ `
  cloudAccountRole { id cloudAccountId cloudAccountRoleId name externalId vendorType }
  accessCredential {
    expiresAt expiresIn expired
    alibabaCloudStsToken { accessKeyId accessKeySecret securityToken expiration }
    awsStsToken { accessKeyId secretAccessKey sessionToken expiration }
  }
`;

const OBTAIN_ROLE = /* GraphQL */ `
  mutation ObtainRole($input: ObtainCloudAccountRoleAccessCredentialInput!) {
    obtainCloudAccountRoleAccessCredential(input: $input) { ${CREDENTIAL_FIELDS} }
  }
`;

const stack = useStack();

// ------------------------------------------------------------------ helpers

const calls = (route: string) => stack.emulator.counters()[route]?.requests ?? 0;

function obtainJwt(input: Record<string, unknown>, headers?: Record<string, string>) {
  return stack.gql(OBTAIN_JWT, { input: { instanceId: I, consumerId: LARGE, authenticationTokenId: USABLE_TOKEN.authenticationTokenId, ...input } }, headers);
}

function obtainRole(input: Record<string, unknown>, headers?: Record<string, string>) {
  return stack.gql(OBTAIN_ROLE, { input: { instanceId: I, ...input } }, headers);
}

function expectUpstreamError(r: GqlResult<unknown>, code: string, upstream: { status: number; code?: string }) {
  const err = onlyError(r);
  expect(err.extensions.code).toBe(code);
  expect(err.extensions.upstream).toEqual({ service: 'idaas', requestId: expect.stringMatching(REQUEST_ID), ...upstream });
  return err;
}

/** seconds between `iso` and the window [before, after] shifted by `seconds` */
function expectAbout(iso: string, before: number, after: number, seconds: number) {
  const t = Date.parse(iso);
  expect(t).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + seconds * 1000);
  expect(t).toBeLessThanOrEqual(Math.ceil(after / 1000) * 1000 + seconds * 1000);
}

// ------------------------------------------------------------------ obtainJwtAuthenticationToken

describe('obtainJwtAuthenticationToken', () => {
  it('mints a JWT: value, decoded header and claims, derived short token, and the token it belongs to', async () => {
    const before = now();
    const r = await obtainJwt({});
    const after = now();
    expect(r.errors).toBeUndefined();
    const { authenticationToken: token, jwt } = r.data.obtainJwtAuthenticationToken;

    expect(jwt.value).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(jwt.derivedShortToken).toMatch(/^sk-[0-9A-Za-z]{32}$/);
    expect(jwt.header).toEqual({ alg: 'ES256', typ: 'JWT', kid: expect.any(String) });
    expect(jwt.claims).toMatchObject({
      iss: idaasJwtIssuer(I),
      sub: LARGE,
      aud: PROVIDER.identifier,
      authentication_token_id: USABLE_TOKEN.authenticationTokenId,
      jti: expect.any(String),
    });
    expect(jwt.claims.exp - jwt.claims.iat).toBe(JWT_LIFETIME_SECONDS);

    expect(token).toMatchObject({
      authenticationTokenId: USABLE_TOKEN.authenticationTokenId,
      instanceId: I,
      consumerId: LARGE,
      credentialProviderId: PROVIDER.credentialProviderId,
      type: 'JWT',
      revoked: false,
      createdAt: new Date(USABLE_TOKEN.createTime).toISOString(),
      updatedAt: new Date(USABLE_TOKEN.updateTime).toISOString(),
      expired: false,
    });
    // The payload's expiry is the JWT's: exp (epoch s) and expiresAt (from epoch ms) agree.
    expect(Date.parse(token.expiresAt)).toBe(jwt.claims.exp * 1000);
    expectAbout(token.expiresAt, before - 1000, after, JWT_LIFETIME_SECONDS);
    expect(token.expiresIn).toBeGreaterThan(JWT_LIFETIME_SECONDS - 10);
    expect(token.expiresIn).toBeLessThanOrEqual(JWT_LIFETIME_SECONDS);
    expect(calls(JWT_ROUTE)).toBe(1);
  });

  it('hands out the JWT unaltered: its signature verifies against the instance’s keys', async () => {
    const r = await obtainJwt({});
    const { jwt } = r.data.obtainJwtAuthenticationToken;
    const jwks = (await (await fetch(`${stack.emulator.url}/v2/${I}/.well-known/jwks.json`)).json()) as JSONWebKeySet;
    const { payload, protectedHeader } = await jwtVerify(jwt.value, createLocalJWKSet(jwks), { issuer: idaasJwtIssuer(I), subject: LARGE });
    expect(payload).toEqual(jwt.claims);
    expect(protectedHeader).toEqual(jwt.header);
  });

  it('mints a fresh JWT on every call (nothing cached)', async () => {
    const a = await obtainJwt({});
    const b = await obtainJwt({});
    expect(a.data.obtainJwtAuthenticationToken.jwt.value).not.toBe(b.data.obtainJwtAuthenticationToken.jwt.value);
    expect(calls(JWT_ROUTE)).toBe(2);
  });

  it('with credentialProviderIdentifier, the returned token can be refetched with node(id)', async () => {
    const r = await obtainJwt({ credentialProviderIdentifier: PROVIDER.identifier });
    const token = r.data.obtainJwtAuthenticationToken.authenticationToken;
    const n = await stack.gql(`query($id: ID!) { node(id: $id) { ... on AuthenticationToken { authenticationTokenId createdAt } } }`, { id: token.id });
    expect(n.errors).toBeUndefined();
    expect(n.data.node).toEqual({ authenticationTokenId: token.authenticationTokenId, createdAt: token.createdAt });
  });

  it('is FORBIDDEN with the read-only token, with the upstream’s details', async () => {
    const r = await obtainJwt({}, bearer(DEMO_ACCESS_TOKENS.readOnly.token));
    expectUpstreamError(r, 'FORBIDDEN', { status: 403, code: 'insufficient_scope' });
    expect(r.data.obtainJwtAuthenticationToken).toBeNull();
    expect(calls(JWT_ROUTE)).toBe(1);
  });

  it('works with the mint token', async () => {
    const r = await obtainJwt({}, bearer(DEMO_ACCESS_TOKENS.mint.token));
    expect(r.errors).toBeUndefined();
    expect(r.data.obtainJwtAuthenticationToken.jwt.claims.sub).toBe(LARGE);
  });

  it('is NOT_FOUND for an unknown authenticationTokenId', async () => {
    const r = await obtainJwt({ authenticationTokenId: 'atntkn_doesnotexist0000000000' });
    expectUpstreamError(r, 'NOT_FOUND', { status: 404, code: 'not_found' });
  });

  it('is NOT_FOUND for a token of another consumer', async () => {
    const r = await obtainJwt({ consumerId: DEMO_CONSUMERS.small });
    expectUpstreamError(r, 'NOT_FOUND', { status: 404, code: 'not_found' });
  });

  it('is BAD_USER_INPUT for a revoked token (the upstream’s 400)', async () => {
    const r = await obtainJwt({ authenticationTokenId: REVOKED_TOKEN.authenticationTokenId });
    expectUpstreamError(r, 'BAD_USER_INPUT', { status: 400, code: 'invalid_request' });
  });

  it('without Authorization: UNAUTHENTICATED and no upstream call', async () => {
    const r = await obtainJwt({}, {});
    expect(onlyError(r).extensions.code).toBe('UNAUTHENTICATED');
    expect(calls(JWT_ROUTE)).toBe(0);
  });

  it.each([
    ['an empty consumerId', { consumerId: '' }],
    ['an empty authenticationTokenId', { authenticationTokenId: '' }],
    ['a path in instanceId', { instanceId: '../x' }],
    ['an overlong instanceId', { instanceId: 'i'.repeat(65) }],
    ['a control character in consumerId', { consumerId: 'a\u0000b' }],
  ])('refuses %s with BAD_USER_INPUT before any upstream call', async (_name, input) => {
    const r = await obtainJwt(input);
    const err = onlyError(r);
    expect(err.extensions.code).toBe('BAD_USER_INPUT');
    expect(err.path).toEqual(['obtainJwtAuthenticationToken']);
    expect(r.data.obtainJwtAuthenticationToken).toBeNull();
    expect(calls(JWT_ROUTE)).toBe(0);
  });
});

// ------------------------------------------------------------------ obtainCloudAccountRoleAccessCredential

describe('obtainCloudAccountRoleAccessCredential', () => {
  it('Alibaba Cloud role: an STS token, no AWS token, expiring after the default hour', async () => {
    const before = now();
    const r = await obtainRole({ cloudAccountRoleExternalId: ROLES.alibaba.cloudAccountRoleExternalId });
    const after = now();
    expect(r.errors).toBeUndefined();
    const { cloudAccountRole: role, accessCredential: cred } = r.data.obtainCloudAccountRoleAccessCredential;
    expect(role).toMatchObject({
      cloudAccountId: ROLES.alibaba.cloudAccountId,
      cloudAccountRoleId: ROLES.alibaba.cloudAccountRoleId,
      name: ROLES.alibaba.cloudAccountRoleName,
      externalId: ROLES.alibaba.cloudAccountRoleExternalId,
      vendorType: 'ALIBABA_CLOUD',
    });
    expect(role.id).toEqual(expect.any(String));
    expect(cred.awsStsToken).toBeNull();
    expect(cred.alibabaCloudStsToken).toEqual({
      accessKeyId: expect.stringMatching(/^STS\.[0-9A-Za-z]{25}$/),
      accessKeySecret: expect.stringMatching(/^[0-9A-Za-z]{44}$/),
      securityToken: expect.stringMatching(/^CAIS/),
      expiration: cred.expiresAt,
    });
    // epoch seconds (accessCredentialExpiresAt) and the ISO expiration both normalise to the same DateTime.
    expect(cred.expiresAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000Z$/);
    expectAbout(cred.expiresAt, before - 1000, after, ROLE_CREDENTIAL_DURATION.default);
    expect(cred.expired).toBe(false);
    expect(cred.expiresIn).toBeGreaterThan(ROLE_CREDENTIAL_DURATION.default - 10);
    expect(cred.expiresIn).toBeLessThanOrEqual(ROLE_CREDENTIAL_DURATION.default);
    expect(calls(ROLE_ROUTE)).toBe(1);
  });

  it('AWS role: an AWS STS token, no Alibaba token', async () => {
    const r = await obtainRole({ cloudAccountRoleExternalId: ROLES.aws.cloudAccountRoleExternalId });
    expect(r.errors).toBeUndefined();
    const { cloudAccountRole: role, accessCredential: cred } = r.data.obtainCloudAccountRoleAccessCredential;
    expect(role).toMatchObject({ vendorType: 'AWS', externalId: ROLES.aws.cloudAccountRoleExternalId, name: ROLES.aws.cloudAccountRoleName });
    expect(cred.alibabaCloudStsToken).toBeNull();
    expect(cred.awsStsToken).toEqual({
      accessKeyId: expect.stringMatching(/^ASIA[A-Z2-7]{16}$/),
      secretAccessKey: expect.any(String),
      sessionToken: expect.any(String),
      expiration: cred.expiresAt,
    });
  });

  it.each([900, 43_200])('accepts durationSeconds %i: expiresIn follows it', async (durationSeconds) => {
    const r = await obtainRole({ cloudAccountRoleExternalId: ROLES.alibaba.cloudAccountRoleExternalId, durationSeconds });
    expect(r.errors).toBeUndefined();
    const cred = r.data.obtainCloudAccountRoleAccessCredential.accessCredential;
    expect(cred.expiresIn).toBeGreaterThan(durationSeconds - 10);
    expect(cred.expiresIn).toBeLessThanOrEqual(durationSeconds);
  });

  it.each([899, 43_201, 0, -1])('refuses durationSeconds %i with BAD_USER_INPUT and no upstream call', async (durationSeconds) => {
    const r = await obtainRole({ cloudAccountRoleExternalId: ROLES.alibaba.cloudAccountRoleExternalId, durationSeconds });
    const err = onlyError(r);
    expect(err.extensions.code).toBe('BAD_USER_INPUT');
    expect(err.path).toEqual(['obtainCloudAccountRoleAccessCredential']);
    expect(r.data.obtainCloudAccountRoleAccessCredential).toBeNull();
    expect(calls(ROLE_ROUTE)).toBe(0);
  });

  it('refuses an empty role id and a path in instanceId before any upstream call', async () => {
    for (const input of [{ cloudAccountRoleExternalId: '' }, { cloudAccountRoleExternalId: ROLES.aws.cloudAccountRoleExternalId, instanceId: 'a/b' }]) {
      expect(onlyError(await obtainRole(input)).extensions.code).toBe('BAD_USER_INPUT');
    }
    expect(calls(ROLE_ROUTE)).toBe(0);
  });

  it('is NOT_FOUND for an unknown role', async () => {
    const r = await obtainRole({ cloudAccountRoleExternalId: 'acs:ram::1234567890123456:role/nobody' });
    expectUpstreamError(r, 'NOT_FOUND', { status: 404, code: 'not_found' });
  });

  it('is FORBIDDEN with the read-only token', async () => {
    const r = await obtainRole({ cloudAccountRoleExternalId: ROLES.alibaba.cloudAccountRoleExternalId }, bearer(DEMO_ACCESS_TOKENS.readOnly.token));
    expectUpstreamError(r, 'FORBIDDEN', { status: 403, code: 'insufficient_scope' });
  });

  it('issues fresh secrets on every call', async () => {
    const input = { cloudAccountRoleExternalId: ROLES.alibaba.cloudAccountRoleExternalId };
    const a = await obtainRole(input);
    const b = await obtainRole(input);
    const secret = (r: GqlResult<any>) => r.data.obtainCloudAccountRoleAccessCredential.accessCredential.alibabaCloudStsToken.accessKeySecret;
    expect(secret(a)).not.toBe(secret(b));
    expect(calls(ROLE_ROUTE)).toBe(2);
  });
});

// ------------------------------------------------------------------ several mutations, failures, retries

describe('several mutations in one request', () => {
  const TWO = /* GraphQL */ `
    mutation Two($jwt: ObtainJwtAuthenticationTokenInput!, $role: ObtainCloudAccountRoleAccessCredentialInput!) {
      jwt: obtainJwtAuthenticationToken(input: $jwt) { jwt { value } }
      role: obtainCloudAccountRoleAccessCredential(input: $role) { accessCredential { expiresAt } }
    }
  `;
  const jwtInput = (authenticationTokenId: string) => ({ instanceId: I, consumerId: LARGE, authenticationTokenId });
  const roleInput = (cloudAccountRoleExternalId: string) => ({ instanceId: I, cloudAccountRoleExternalId });

  it('the second still returns data when the first fails; the error points at the first', async () => {
    const r = await stack.gql(TWO, { jwt: jwtInput('atntkn_doesnotexist0000000000'), role: roleInput(ROLES.alibaba.cloudAccountRoleExternalId) });
    expect(r.data.jwt).toBeNull();
    expect(r.data.role.accessCredential.expiresAt).toEqual(expect.any(String));
    const err = onlyError(r);
    expect(err.path).toEqual(['jwt']);
    expect(err.extensions.code).toBe('NOT_FOUND');
  });

  it('the first keeps its data when the second fails; the error points at the second', async () => {
    const r = await stack.gql(TWO, { jwt: jwtInput(USABLE_TOKEN.authenticationTokenId), role: roleInput('acs:ram::1:role/nobody') });
    expect(r.data.jwt.jwt.value).toEqual(expect.any(String));
    expect(r.data.role).toBeNull();
    const err = onlyError(r);
    expect(err.path).toEqual(['role']);
    expect(err.extensions.code).toBe('NOT_FOUND');
  });

  it('an input validation failure of one mutation does not stop the other', async () => {
    const r = await stack.gql(TWO, {
      jwt: { ...jwtInput(USABLE_TOKEN.authenticationTokenId), consumerId: '' },
      role: roleInput(ROLES.aws.cloudAccountRoleExternalId),
    });
    expect(r.data.jwt).toBeNull();
    expect(r.data.role).not.toBeNull();
    expect(onlyError(r)).toMatchObject({ path: ['jwt'], extensions: { code: 'BAD_USER_INPUT' } });
    expect(calls(JWT_ROUTE)).toBe(0);
  });
});

describe('minting is never retried', () => {
  it('obtainJwt: a 503 is UPSTREAM_UNAVAILABLE after exactly one request', async () => {
    stack.emulator.inject({ route: JWT_ROUTE, status: 503, times: 1 });
    const r = await obtainJwt({});
    expectUpstreamError(r, 'UPSTREAM_UNAVAILABLE', { status: 503, code: 'service_unavailable' });
    expect(calls(JWT_ROUTE)).toBe(1);
  });

  it('obtainJwt: a 429 with Retry-After is RATE_LIMITED after exactly one request', async () => {
    stack.emulator.inject({ route: JWT_ROUTE, status: 429, headers: { 'retry-after': '1' }, times: 1 });
    const r = await obtainJwt({});
    expectUpstreamError(r, 'RATE_LIMITED', { status: 429, code: 'throttling' });
    expect(calls(JWT_ROUTE)).toBe(1);
  });

  it('obtainJwt: a connection reset is UPSTREAM_UNAVAILABLE after exactly one request', async () => {
    stack.emulator.inject({ route: JWT_ROUTE, reset: true, times: 1 });
    const r = await obtainJwt({});
    const err = onlyError(r);
    expect(err.extensions.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(err.extensions.upstream).toMatchObject({ service: 'idaas' });
    expect(calls(JWT_ROUTE)).toBe(1);
  });

  it('obtainAccessCredential (a GET that issues secrets): a 503 is not retried either', async () => {
    stack.emulator.inject({ route: ROLE_ROUTE, status: 503, times: 1 });
    const r = await obtainRole({ cloudAccountRoleExternalId: ROLES.alibaba.cloudAccountRoleExternalId });
    expectUpstreamError(r, 'UPSTREAM_UNAVAILABLE', { status: 503, code: 'service_unavailable' });
    expect(calls(ROLE_ROUTE)).toBe(1);
  });

  it('obtainAccessCredential: a 502 and a reset are not retried', async () => {
    stack.emulator.inject({ route: ROLE_ROUTE, status: 502, times: 1 });
    const a = await obtainRole({ cloudAccountRoleExternalId: ROLES.aws.cloudAccountRoleExternalId });
    expect(onlyError(a).extensions.code).toBe('UPSTREAM_UNAVAILABLE');
    stack.emulator.inject({ route: ROLE_ROUTE, reset: true, times: 1 });
    const b = await obtainRole({ cloudAccountRoleExternalId: ROLES.aws.cloudAccountRoleExternalId });
    expect(onlyError(b).extensions.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(calls(ROLE_ROUTE)).toBe(2);
  });

  it('the next call after a failed one succeeds (the fault was one-off)', async () => {
    stack.emulator.inject({ route: JWT_ROUTE, status: 503, times: 1 });
    expect(onlyError(await obtainJwt({})).extensions.code).toBe('UPSTREAM_UNAVAILABLE');
    const r = await obtainJwt({});
    expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
    expect(calls(JWT_ROUTE)).toBe(2);
  });
});
