// Broker mode through the whole gateway (yoga.fetch), against the emulator's token endpoint,
// OIDC issuer and PAM: callers sign in with their JWTs, the demo policy decides, the gateway's
// M2M token goes upstream, and every mint is audited fail-closed.
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SignJWT, generateKeyPair } from 'jose';
import {
  DEMO_CALLERS,
  DEMO_CLOUD_ACCOUNT_ROLES,
  DEMO_CONSUMERS,
  DEMO_CREDENTIAL_PROVIDERS,
  DEMO_IAM_DOMAIN,
  DEMO_IAM_USERS,
  DEMO_INSTANCE_ID,
  DEMO_M2M_CLIENT,
} from '../../src/emulator/fixtures.ts';
import { auditFingerprint, brokerAuth, fieldFailure, fieldValue, readAuditLines, useStack, type GqlResult } from '../helpers.ts';
import { CREATE } from '../iam-documents.ts';

const dir = mkdtempSync(join(tmpdir(), 'broker-gateway-'));
const auditFile = join(dir, 'audit.log');
const policyFile = join(dir, 'policy.cedar');
copyFileSync('policies/demo.cedar', policyFile);

const stack = useStack((_c, emulator) => ({ auth: brokerAuth(emulator, { auditLog: auditFile, policyFile }) }));

const { admin, reader } = DEMO_CALLERS;
const callerToken = (c: { subject: string; groups: string[] }, extra: Record<string, unknown> = {}) =>
  stack.emulator.oidc.sign({ sub: c.subject, groups: c.groups, ...extra });
const as = async (c: { subject: string; groups: string[] }) => ({ authorization: `Bearer ${await callerToken(c)}` });

const LIST = `query($consumerId: String!) {
  instance(instanceId: "${DEMO_INSTANCE_ID}") {
    authenticationTokens(consumerId: $consumerId, credentialProviderIdentifier: "${DEMO_CREDENTIAL_PROVIDERS.jwt.identifier}", first: 2) {
      totalCount
      nodes { authenticationTokenId }
    }
  }
}`;
const MINT_JWT = `mutation($consumerId: String!, $tokenId: String!) {
  obtainJwtAuthenticationToken(input: { instanceId: "${DEMO_INSTANCE_ID}", consumerId: $consumerId, authenticationTokenId: $tokenId }) {
    jwt { value }
  }
}`;
const ROLE = `mutation($role: String!, $duration: Int) {
  obtainCloudAccountRoleAccessCredential(input: { instanceId: "${DEMO_INSTANCE_ID}", cloudAccountRoleExternalId: $role, durationSeconds: $duration }) {
    accessCredential { expiresAt expiresIn alibabaCloudStsToken { accessKeyId accessKeySecret securityToken } }
  }
}`;
const READ_ONLY_ROLE = DEMO_CLOUD_ACCOUNT_ROLES.alibaba.cloudAccountRoleExternalId;

const calls = (route: string) => stack.emulator.counters()[route]?.requests ?? 0;

const auditLines = () => readAuditLines(auditFile);
const linesOf = (r: GqlResult<unknown>) => auditLines().filter((l) => l.requestId === r.headers.get('x-request-id'));
const fingerprint = auditFingerprint;

async function firstTokenId(consumerId: string): Promise<string> {
  const r = await stack.gql(LIST, { consumerId }, await as(admin));
  return fieldValue(r, 'instance').authenticationTokens.nodes[0].authenticationTokenId;
}

describe('callers', () => {
  it('viewer shows the signed-in caller, with no secret', async () => {
    const r = await stack.gql('{ viewer { mode subject issuer groups } }', {}, await as(admin));
    expect(fieldValue(r, 'viewer')).toEqual({ mode: 'BROKER', subject: 'alice', issuer: stack.emulator.oidc.issuer, groups: ['platform-admins'] });
  });

  it.each([
    ['no Authorization header', async () => ({})],
    ['an IDaaS access token instead of a JWT', async () => ({ authorization: 'Bearer demo-idaas-access-token-full' })],
    ['an expired JWT', async () => ({ authorization: `Bearer ${await callerToken(admin, { expiresInSeconds: -120 })}` })],
    ['a JWT for another audience', async () => ({ authorization: `Bearer ${await callerToken(admin, { aud: 'another-app' })}` })],
    [
      'a JWT signed by another key',
      async () => {
        const { privateKey } = await generateKeyPair('RS256');
        const jwt = await new SignJWT({ groups: admin.groups })
          .setProtectedHeader({ alg: 'RS256', kid: 'other' })
          .setIssuer(stack.emulator.oidc.issuer)
          .setAudience('token-gateway')
          .setSubject(admin.subject)
          .setExpirationTime('5m')
          .sign(privateKey);
        return { authorization: `Bearer ${jwt}` };
      },
    ],
  ])('%s: UNAUTHENTICATED for list and mint, and no upstream call', async (_name, headers) => {
    const h = await headers();
    const list = await stack.gql(LIST, { consumerId: DEMO_CONSUMERS.small }, h);
    expect(list.errors?.map((e) => e.extensions.code)).toEqual(['UNAUTHENTICATED']);
    expect(list.data.instance.authenticationTokens).toBeNull();
    const mint = await stack.gql(ROLE, { role: READ_ONLY_ROLE }, h);
    fieldFailure(mint, 'UNAUTHENTICATED', 'obtainCloudAccountRoleAccessCredential');
    expect(calls('idaas.listAuthenticationTokens') + calls('idaas.obtainAccessCredential') + calls('idaas.token')).toBe(0);
  });
});

describe('policy', () => {
  it('a reader lists the consumer the policy names, and is FORBIDDEN (POLICY) for another, without an upstream call', async () => {
    const headers = await as(reader);
    const allowed = await stack.gql(LIST, { consumerId: DEMO_CONSUMERS.medium }, headers);
    expect(fieldValue(allowed, 'instance').authenticationTokens.totalCount).toBe(25);
    const before = calls('idaas.listAuthenticationTokens');

    const denied = await stack.gql(LIST, { consumerId: DEMO_CONSUMERS.small }, headers);
    expect(denied.errors?.map((e) => [e.extensions.code, e.extensions.reason])).toEqual([['FORBIDDEN', 'POLICY']]);
    expect(denied.data.instance.authenticationTokens).toBeNull();
    expect(calls('idaas.listAuthenticationTokens')).toBe(before);
  });

  it('a reader gets the read-only role for an hour, not a second more; the denial is audited and calls nothing', async () => {
    const headers = await as(reader);
    const ok = await stack.gql(ROLE, { role: READ_ONLY_ROLE, duration: 3600 }, headers);
    expect(fieldValue(ok, 'obtainCloudAccountRoleAccessCredential').accessCredential.expiresIn).toBeGreaterThan(3500);
    const minted = calls('idaas.obtainAccessCredential');

    const denied = await stack.gql(ROLE, { role: READ_ONLY_ROLE, duration: 3601 }, headers);
    expect(fieldFailure(denied, 'FORBIDDEN', 'obtainCloudAccountRoleAccessCredential').extensions.reason).toBe('POLICY');
    expect(calls('idaas.obtainAccessCredential')).toBe(minted);
    expect(linesOf(denied)).toEqual([
      expect.objectContaining({ event: 'decision', decision: 'deny', outcome: 'denied', action: 'obtainCloudAccountRoleAccessCredential' }),
    ]);
  });

  it('without durationSeconds the policy decides on 3600 s, and the upstream is asked for exactly that', async () => {
    const r = await stack.gql(ROLE, { role: READ_ONLY_ROLE }, await as(reader));
    const expiresIn = fieldValue(r, 'obtainCloudAccountRoleAccessCredential').accessCredential.expiresIn;
    expect(expiresIn).toBeGreaterThan(3590);
    expect(expiresIn).toBeLessThanOrEqual(3600);
  });

  it('forbid wins: even an admin gets no role credential for more than 4 h', async () => {
    const headers = await as(admin);
    expect(fieldValue(await stack.gql(ROLE, { role: READ_ONLY_ROLE, duration: 14_400 }, headers), 'obtainCloudAccountRoleAccessCredential')).toBeTruthy();
    const denied = await stack.gql(ROLE, { role: READ_ONLY_ROLE, duration: 14_401 }, headers);
    expect(fieldFailure(denied, 'FORBIDDEN', 'obtainCloudAccountRoleAccessCredential').extensions.reason).toBe('POLICY');
  });

  it('a group the policy does not name is denied by default', async () => {
    const headers = { authorization: `Bearer ${await callerToken({ subject: 'carol', groups: ['interns'] })}` };
    const r = await stack.gql(LIST, { consumerId: DEMO_CONSUMERS.medium }, headers);
    expect(r.errors?.map((e) => e.extensions.code)).toEqual(['FORBIDDEN']);
  });

  it('a reloaded policy decides the next request; a broken one is refused and the old one stays', async () => {
    const headers = await as(reader);
    const small = () => stack.gql(LIST, { consumerId: DEMO_CONSUMERS.small }, headers);
    expect((await small()).errors?.[0]?.extensions.code).toBe('FORBIDDEN');
    const demo = readFileSync(policyFile, 'utf8');
    try {
      writeFileSync(policyFile, `${demo}\npermit (principal in Group::"readers", action == Action::"listAuthenticationTokens", resource == Consumer::"${DEMO_CONSUMERS.small}");\n`);
      expect(stack.gateway.services.broker!.policy.reload()).toEqual({ ok: true });
      expect(fieldValue(await small(), 'instance').authenticationTokens.totalCount).toBe(3);

      writeFileSync(policyFile, 'permit (principal in Grup::"readers", action, resource);\n');
      const failed = stack.gateway.services.broker!.policy.reload();
      expect(failed.ok).toBe(false);
      expect(!failed.ok && failed.error).toMatch(/policy\.cedar:1:\d+: .*Grup/);
      expect(fieldValue(await small(), 'instance').authenticationTokens.totalCount).toBe(3);
    } finally {
      writeFileSync(policyFile, demo);
      stack.gateway.services.broker!.policy.reload();
    }
  });
});

describe('the M2M token', () => {
  it('is fetched once for 50 concurrent requests, and reused', async () => {
    await stack.gateway.services.broker!.m2m.invalidate(await stack.gateway.services.broker!.m2m.token());
    stack.emulator.reset();
    stack.emulator.inject({ route: 'idaas.token', latencyMs: 200 });
    const headers = await as(admin);
    const results = await Promise.all(Array.from({ length: 50 }, () => stack.gql(LIST, { consumerId: DEMO_CONSUMERS.small }, headers)));
    for (const r of results) expect(fieldValue(r, 'instance').authenticationTokens.totalCount).toBe(3);
    expect(calls('idaas.token')).toBe(1);
    await stack.gql(LIST, { consumerId: DEMO_CONSUMERS.medium }, headers);
    expect(calls('idaas.token')).toBe(1);
  });

  it('rejected by PAM as invalid_token, it is renewed once and the call made again', async () => {
    const headers = await as(admin);
    await stack.gql(LIST, { consumerId: DEMO_CONSUMERS.small }, headers);
    stack.emulator.reset(); // forgets every issued token: PAM now answers 401 invalid_token
    const r = await stack.gql(LIST, { consumerId: DEMO_CONSUMERS.small }, headers);
    expect(fieldValue(r, 'instance').authenticationTokens.totalCount).toBe(3);
    expect(calls('idaas.token')).toBe(1);
    expect(calls('idaas.listAuthenticationTokens')).toBe(2);
  });

  it('a mint rejected as invalid_token is renewed and minted once', async () => {
    const tokenId = await firstTokenId(DEMO_CONSUMERS.medium);
    stack.emulator.revokeAccessTokens();
    stack.emulator.reset();
    const r = await stack.gql(MINT_JWT, { consumerId: DEMO_CONSUMERS.medium, tokenId }, await as(admin));
    expect(fieldValue(r, 'obtainJwtAuthenticationToken').jwt.value).toMatch(/^ey/);
    expect(calls('idaas.obtainJwt')).toBe(2); // 401 invalid_token, then the mint
  });

  it('token endpoint failures are the operator’s: UPSTREAM_ERROR (idaas-token) or UPSTREAM_UNAVAILABLE, never the secret', async () => {
    const broker = stack.gateway.services.broker!;
    broker.m2m.invalidate(await broker.m2m.token());
    stack.emulator.reset();
    stack.emulator.inject({
      route: 'idaas.token',
      status: 401,
      body: { error: 'invalid_client', error_description: `client authentication failed for ${DEMO_M2M_CLIENT.clientSecret}` },
      times: 1,
    });
    const headers = await as(admin);
    const r = await stack.gql(ROLE, { role: READ_ONLY_ROLE }, headers);
    const err = fieldFailure(r, 'UPSTREAM_ERROR', 'obtainCloudAccountRoleAccessCredential');
    expect(err.extensions.upstream).toMatchObject({ service: 'idaas-token', status: 401, code: 'invalid_client' });
    expect(JSON.stringify(r)).not.toContain(DEMO_M2M_CLIENT.clientSecret);
    expect(calls('idaas.obtainAccessCredential')).toBe(0);
    expect(linesOf(r).map((l) => [l.event, l.outcome, l.errorCode])).toEqual([
      ['decision', 'pending', undefined],
      ['outcome', 'failed', 'UPSTREAM_ERROR'],
    ]);

    stack.emulator.inject({ route: 'idaas.token', status: 503, times: 1 });
    fieldFailure(await stack.gql(ROLE, { role: READ_ONLY_ROLE }, headers), 'UPSTREAM_UNAVAILABLE', 'obtainCloudAccountRoleAccessCredential');
    // The next request gets a token again.
    fieldValue(await stack.gql(ROLE, { role: READ_ONLY_ROLE }, headers), 'obtainCloudAccountRoleAccessCredential');
  });
});

describe('audit', () => {
  it('a JWT mint: a decision line before, an outcome line after, with the fingerprint of the JWT', async () => {
    const tokenId = await firstTokenId(DEMO_CONSUMERS.medium);
    const before = auditLines().length;
    const r = await stack.gql(MINT_JWT, { consumerId: DEMO_CONSUMERS.medium, tokenId }, await as(admin));
    const jwt = fieldValue(r, 'obtainJwtAuthenticationToken').jwt.value as string;
    const lines = linesOf(r);
    expect(auditLines()).toHaveLength(before + 2);
    const common = {
      requestId: r.headers.get('x-request-id'),
      caller: { issuer: stack.emulator.oidc.issuer, subject: 'alice', groups: ['platform-admins'] },
      action: 'obtainJwtAuthenticationToken',
      resource: { type: 'Consumer', id: DEMO_CONSUMERS.medium, instanceId: DEMO_INSTANCE_ID },
      decision: 'allow',
    };
    expect(lines[0]).toEqual({ time: expect.any(String), event: 'decision', outcome: 'pending', ...common });
    expect(lines[1]).toEqual({
      time: expect.any(String),
      event: 'outcome',
      outcome: 'issued',
      ...common,
      upstreamRequestId: expect.stringMatching(/^[0-9A-F-]{36}$/),
      expiresAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      credentialFingerprint: fingerprint(jwt),
    });
    expect(readFileSync(auditFile, 'utf8')).not.toContain(jwt);
  });

  it('role credentials and IAM tokens are fingerprinted by their secret', async () => {
    const role = await stack.gql(ROLE, { role: READ_ONLY_ROLE }, await as(admin));
    const sts = fieldValue(role, 'obtainCloudAccountRoleAccessCredential').accessCredential.alibabaCloudStsToken;
    expect(linesOf(role)[1]).toMatchObject({ outcome: 'issued', credentialFingerprint: fingerprint(sts.accessKeySecret) });

    const password = { userName: DEMO_IAM_USERS.password.name, password: DEMO_IAM_USERS.password.password, domainName: DEMO_IAM_DOMAIN.name };
    const iam = await stack.gql(CREATE, { input: { password, includeCatalog: false } }, await as(reader));
    const token = fieldValue(iam, 'createIamToken').value as string;
    expect(linesOf(iam)).toEqual([
      expect.objectContaining({ event: 'decision', action: 'createIamToken', resource: { type: 'IamEndpoint', id: 'emulator' } }),
      expect.objectContaining({ event: 'outcome', outcome: 'issued', credentialFingerprint: fingerprint(token) }),
    ]);
    const file = readFileSync(auditFile, 'utf8');
    for (const secret of [sts.accessKeySecret, sts.securityToken, token]) expect(file).not.toContain(secret);
  });

  it('a failed mint is audited with its code and the upstream request id', async () => {
    stack.emulator.inject({ route: 'idaas.obtainAccessCredential', status: 403, times: 1 });
    const r = await stack.gql(ROLE, { role: READ_ONLY_ROLE }, await as(admin));
    fieldFailure(r, 'FORBIDDEN', 'obtainCloudAccountRoleAccessCredential');
    expect(linesOf(r)[1]).toEqual(
      expect.objectContaining({ event: 'outcome', outcome: 'failed', errorCode: 'FORBIDDEN', upstreamRequestId: expect.any(String) }),
    );
  });

  it('reads are not audited', async () => {
    const r = await stack.gql(LIST, { consumerId: DEMO_CONSUMERS.small }, await as(admin));
    fieldValue(r, 'instance');
    expect(linesOf(r)).toEqual([]);
  });
});

describe('no secret leaves the gateway', () => {
  it('client secret, M2M token, caller JWT and minted credentials reach no log line and no audit line', async () => {
    const callerJwt = await callerToken(admin);
    const headers = { authorization: `Bearer ${callerJwt}` };
    const tokenId = await firstTokenId(DEMO_CONSUMERS.medium);
    const jwt = await stack.gql(MINT_JWT, { consumerId: DEMO_CONSUMERS.medium, tokenId }, headers);
    const role = await stack.gql(ROLE, { role: READ_ONLY_ROLE }, headers);
    stack.emulator.inject({ route: 'idaas.obtainJwt', status: 500, times: 1 });
    await stack.gql(MINT_JWT, { consumerId: DEMO_CONSUMERS.medium, tokenId }, headers);
    const m2mToken = await stack.gateway.services.broker!.m2m.token();
    const sts = fieldValue(role, 'obtainCloudAccountRoleAccessCredential').accessCredential.alibabaCloudStsToken;
    const secrets = [
      DEMO_M2M_CLIENT.clientSecret,
      m2mToken,
      callerJwt,
      callerJwt.split('.')[2]!,
      fieldValue(jwt, 'obtainJwtAuthenticationToken').jwt.value,
      sts.accessKeySecret,
      sts.securityToken,
    ];
    const written = stack.logs.join('') + readFileSync(auditFile, 'utf8');
    expect(stack.logs.length).toBeGreaterThan(0);
    for (const s of secrets) expect(written).not.toContain(s);
  });
});
