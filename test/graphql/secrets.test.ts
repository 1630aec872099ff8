// Secrets never leave where they belong: the caller's bearer token, minted JWTs and short
// tokens and STS secrets must not appear in any log line (captured at trace level) nor in
// any error the gateway returns, even when an upstream echoes them back.
import { describe, expect, it } from 'vitest';
import {
  DEMO_ACCESS_TOKENS,
  DEMO_AUTHENTICATION_TOKENS,
  DEMO_CLOUD_ACCOUNT_ROLES,
  DEMO_CONSUMERS,
  DEMO_CREDENTIAL_PROVIDERS,
  DEMO_INSTANCE_ID,
} from '../../src/emulator/fixtures.ts';
import { useStack, type GqlResult } from '../helpers.ts';

const I = DEMO_INSTANCE_ID;
const LARGE = DEMO_CONSUMERS.large;
const PROVIDER = DEMO_CREDENTIAL_PROVIDERS.jwt.identifier;
const LIST_ROUTE = 'idaas.listAuthenticationTokens';
const UNKNOWN_BEARER = 'unknown-access-token-4f9c2a7e1b3d5f60';
const TOKENS = Object.values(DEMO_ACCESS_TOKENS).map((t) => t.token);
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

const USABLE = DEMO_AUTHENTICATION_TOKENS.find((t) => t.consumerId === LARGE && !t.revoked && t.expirationTime > Date.now())!;

const LIST = /* GraphQL */ `
  query { instance(instanceId: "${I}") {
    authenticationTokens(consumerId: "${LARGE}", credentialProviderIdentifier: "${PROVIDER}", first: 120) { totalCount nodes { id } }
  } }
`;
const OBTAIN_JWT = /* GraphQL */ `
  mutation($input: ObtainJwtAuthenticationTokenInput!) {
    obtainJwtAuthenticationToken(input: $input) { jwt { value derivedShortToken claims } }
  }
`;
const OBTAIN_ROLE = /* GraphQL */ `
  mutation($input: ObtainCloudAccountRoleAccessCredentialInput!) {
    obtainCloudAccountRoleAccessCredential(input: $input) { accessCredential {
      alibabaCloudStsToken { accessKeyId accessKeySecret securityToken }
      awsStsToken { accessKeyId secretAccessKey sessionToken }
    } }
  }
`;

const stack = useStack();

// ------------------------------------------------------------------ helpers

const obtainJwt = (headers?: Record<string, string>) =>
  stack.gql(OBTAIN_JWT, { input: { instanceId: I, consumerId: LARGE, authenticationTokenId: USABLE.authenticationTokenId } }, headers);
const obtainRole = (externalId: string, headers?: Record<string, string>) =>
  stack.gql(OBTAIN_ROLE, { input: { instanceId: I, cloudAccountRoleExternalId: externalId } }, headers);

/** Every log line and every error that contains one of `secrets`, with the secret named. */
function leaks(texts: string[], secrets: string[]): string[] {
  const found: string[] = [];
  for (const s of secrets) {
    for (const t of texts) if (t.includes(s)) found.push(`${s.slice(0, 12)}… in ${t.slice(0, 300)}`);
  }
  return found;
}

const errorsOf = (results: GqlResult<any>[]) => results.flatMap((r) => (r.errors ?? []).map((e) => JSON.stringify(e)));

// ------------------------------------------------------------------ logs

describe('logs', () => {
  it('carry no bearer token, JWT, short token or STS secret across successes and failures', async () => {
    stack.logs.length = 0;
    const results: GqlResult<any>[] = [];
    const secrets = [...TOKENS, UNKNOWN_BEARER];

    // Successes, with every demo token that can do them.
    results.push(await stack.gql(LIST));
    results.push(await stack.gql(LIST, {}, bearer(DEMO_ACCESS_TOKENS.readOnly.token)));
    for (const headers of [undefined, bearer(DEMO_ACCESS_TOKENS.mint.token)]) {
      const jwt = await obtainJwt(headers);
      expect(jwt.errors).toBeUndefined();
      const { value, derivedShortToken } = jwt.data.obtainJwtAuthenticationToken.jwt;
      secrets.push(value, derivedShortToken, ...value.split('.'));
      results.push(jwt);

      const ali = await obtainRole(DEMO_CLOUD_ACCOUNT_ROLES.alibaba.cloudAccountRoleExternalId, headers);
      const sts = ali.data.obtainCloudAccountRoleAccessCredential.accessCredential.alibabaCloudStsToken;
      secrets.push(sts.accessKeySecret, sts.securityToken);
      results.push(ali);

      const aws = await obtainRole(DEMO_CLOUD_ACCOUNT_ROLES.aws.cloudAccountRoleExternalId, headers);
      const awsSts = aws.data.obtainCloudAccountRoleAccessCredential.accessCredential.awsStsToken;
      secrets.push(awsSts.secretAccessKey, awsSts.sessionToken);
      results.push(aws);
    }

    // Failures: unknown token, missing scope, upstream faults, transport failures.
    results.push(await stack.gql(LIST, {}, bearer(UNKNOWN_BEARER)));
    results.push(await obtainJwt(bearer(UNKNOWN_BEARER)));
    results.push(await obtainJwt(bearer(DEMO_ACCESS_TOKENS.readOnly.token)));
    results.push(await stack.gql(LIST, {}, bearer(DEMO_ACCESS_TOKENS.mint.token)));
    stack.emulator.inject({ route: 'idaas.obtainJwt', status: 503, times: 1 });
    results.push(await obtainJwt());
    stack.emulator.inject({ route: 'idaas.obtainAccessCredential', reset: true, times: 1 });
    results.push(await obtainRole(DEMO_CLOUD_ACCOUNT_ROLES.aws.cloudAccountRoleExternalId));
    stack.emulator.inject({ route: LIST_ROUTE, malformed: true, times: 1 });
    results.push(await stack.gql(LIST));
    // A 429 that a retry cures (logged as a retry, answered with data).
    stack.emulator.inject({ route: LIST_ROUTE, status: 429, times: 1 });
    results.push(await stack.gql(LIST));

    expect(errorsOf(results)).toHaveLength(7);
    // The test is only meaningful if the gateway did log these calls.
    expect(stack.logs.filter((l) => l.includes('upstream call')).length).toBeGreaterThanOrEqual(14);
    expect(secrets.every((s) => typeof s === 'string' && s.length >= 8)).toBe(true);
    expect(leaks(stack.logs, secrets)).toEqual([]);
    expect(leaks(errorsOf(results), secrets)).toEqual([]);
  });
});

// ------------------------------------------------------------------ error messages

describe('error messages', () => {
  const token = DEMO_ACCESS_TOKENS.full.token;
  const echo = `The header "Authorization: Bearer ${token}" was rejected for token ${token}.`;

  it.each<[string, number, unknown]>([
    ['IDaaS error_description', 400, { error: 'invalid_request', error_description: echo, request_id: 'R-1' }],
    ['older Alibaba Message', 400, { Code: 'InvalidAuthorization', Message: echo, RequestId: 'R-2' }],
    ['Huawei error_msg', 401, { error_code: 'APIGW.0301', error_msg: echo, request_id: 'R-3' }],
    ['Keystone error.message', 403, { error: { code: 403, title: 'Forbidden', message: echo } }],
  ])('an upstream that echoes the bearer token in %s: the token is not in the GraphQL error', async (_name, status, body) => {
    stack.logs.length = 0;
    stack.emulator.inject({ route: LIST_ROUTE, status, body, times: 1 });
    const r = await stack.gql(LIST);
    expect(r.errors).toHaveLength(1);
    const text = JSON.stringify(r);
    expect(text).not.toContain(token);
    // The rest of the upstream's explanation is still useful and kept.
    expect(r.errors![0]!.message).toContain('was rejected for token');
    expect(leaks(stack.logs, [token])).toEqual([]);
  });

  it('an echoed token of the read-only caller is removed too (whatever token the caller sent)', async () => {
    const ro = DEMO_ACCESS_TOKENS.readOnly.token;
    stack.emulator.inject({ route: 'idaas.obtainJwt', status: 400, body: { error: 'invalid_request', error_description: `bad token ${ro}` }, times: 1 });
    const r = await obtainJwt(bearer(ro));
    expect(r.errors).toHaveLength(1);
    expect(JSON.stringify(r)).not.toContain(ro);
  });

  it('an echo of the whole Authorization header with another scheme spelling is removed', async () => {
    stack.emulator.inject({
      route: LIST_ROUTE,
      status: 400,
      body: { error: 'invalid_request', error_description: `got authorization: bearer ${token}` },
      times: 1,
    });
    const r = await stack.gql(LIST);
    expect(JSON.stringify(r)).not.toContain(token);
  });
});
