// Shared pieces of the hardening tests: the contract's error codes, the documents every file
// sends, and a reader for Prometheus text. (A gateway on a socket: listen() in ../http-gateway.ts.)
import type { Gateway } from '../../src/gateway.ts';
import { authenticator } from 'otplib';
import {
  DEMO_ACCESS_TOKENS,
  DEMO_AUTHENTICATION_TOKENS,
  DEMO_CLOUD_ACCOUNT_ROLES,
  DEMO_CONSUMERS,
  DEMO_CREDENTIAL_PROVIDERS,
  DEMO_IAM_FEDERATED,
  DEMO_IAM_PROJECTS,
  DEMO_IAM_USERS,
  DEMO_INSTANCE_ID,
} from '../../src/emulator/fixtures.ts';
import type { Stack } from '../helpers.ts';

export const CONTRACT_CODES = [
  'BAD_USER_INPUT',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'NOT_FOUND',
  'RATE_LIMITED',
  'MFA_REQUIRED',
  'UPSTREAM_ERROR',
  'UPSTREAM_UNAVAILABLE',
  'UPSTREAM_TIMEOUT',
  'INTERNAL_SERVER_ERROR',
] as const;

export const I = DEMO_INSTANCE_ID;
export const PROVIDER = DEMO_CREDENTIAL_PROVIDERS.jwt.identifier;
export const SMALL = DEMO_CONSUMERS.small;
export const LIST_ROUTE = 'idaas.listAuthenticationTokens';
export const JWT_ROUTE = 'idaas.obtainJwt';
export const ROLE_ROUTE = 'idaas.obtainAccessCredential';
export const IAM_ROUTE = 'iam.createToken';

/** One upstream listing call for the small consumer (3 tokens, one page). */
export const TOKENS = /* GraphQL */ `
  query Tokens($consumerId: String!, $first: Int) {
    instance(instanceId: "${I}") {
      instanceId
      authenticationTokens(consumerId: $consumerId, credentialProviderIdentifier: "${PROVIDER}", first: $first) {
        totalCount
        nodes { authenticationTokenId }
      }
    }
  }
`;

export const CREATE_IAM_TOKEN = /* GraphQL */ `
  mutation CreateIamToken($input: CreateIamTokenInput!) {
    createIamToken(input: $input) { value methods expiresAt user { id name } }
  }
`;

export const OBTAIN_JWT = /* GraphQL */ `
  mutation ObtainJwt($input: ObtainJwtAuthenticationTokenInput!) {
    obtainJwtAuthenticationToken(input: $input) {
      authenticationToken { authenticationTokenId expiresAt }
      jwt { value derivedShortToken }
    }
  }
`;

export const calls = (stack: Stack, route: string): number => stack.emulator.counters()[route]?.requests ?? 0;

/** The value of one sample in Prometheus text, matching every given label; undefined when absent. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let total: number | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) total = (total ?? 0) + Number(m[3]);
  }
  return total;
}

export async function metricsText(gateway: Gateway): Promise<string> {
  const res = await gateway.fetch('http://gateway.test/metrics');
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return res.text();
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Every error of a GraphQL answer, asserting each has a contract code. */
export function contractErrors(body: unknown): { message: string; extensions: Record<string, any> }[] {
  const errors = (body as { errors?: unknown })?.errors;
  if (errors === undefined) return [];
  if (!Array.isArray(errors)) throw new Error(`errors is not a list: ${JSON.stringify(body).slice(0, 300)}`);
  for (const e of errors) {
    const code = (e as { extensions?: { code?: unknown } })?.extensions?.code;
    if (!CONTRACT_CODES.includes(code as (typeof CONTRACT_CODES)[number])) {
      throw new Error(`an error without a contract code: ${JSON.stringify(e).slice(0, 500)}`);
    }
  }
  return errors;
}

// ------------------------------------------------------------------ every operation, and its secrets

const OBTAIN_ROLE = /* GraphQL */ `
  mutation ObtainRole($input: ObtainCloudAccountRoleAccessCredentialInput!) {
    obtainCloudAccountRoleAccessCredential(input: $input) {
      cloudAccountRole { id vendorType }
      accessCredential {
        expiresAt
        alibabaCloudStsToken { accessKeyId accessKeySecret securityToken }
        awsStsToken { accessKeyId secretAccessKey sessionToken }
      }
    }
  }
`;

const CREATE_SCOPED = /* GraphQL */ `
  mutation CreateScoped($input: CreateScopedIamTokenInput!) {
    createScopedIamToken(input: $input) { value methods }
  }
`;

/**
 * Runs every operation of the schema once, successful and failing (wrong bearer, wrong
 * password, wrong passcode), and returns every secret that was sent or handed out.
 */
export async function runEveryOperation(stack: Stack): Promise<string[]> {
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const full = bearer(DEMO_ACCESS_TOKENS.full.token);
  const user = DEMO_IAM_USERS.password;
  const mfa = DEMO_IAM_USERS.mfa;
  const usable = DEMO_AUTHENTICATION_TOKENS.find((t) => t.consumerId === DEMO_CONSUMERS.large && !t.revoked && t.expirationTime > Date.now())!;
  const wrongBearer = 'wrong-bearer-token-9d8c7b6a5f4e3d2c';
  const wrongPassword = 'Wrong-Passw0rd-7f3a9c!';
  const wrongPasscode = '000000' === authenticator.generate(mfa.totpSecret) ? '111111' : '000000';
  const secrets = [
    ...Object.values(DEMO_ACCESS_TOKENS).map((t) => t.token),
    wrongBearer,
    user.password,
    mfa.password,
    wrongPassword,
    DEMO_IAM_FEDERATED.token,
  ];
  const ok = <T>(r: { errors?: unknown; data: T }, what: string): T => {
    if (r.errors) throw new Error(`${what} failed: ${JSON.stringify(r.errors)}`);
    return r.data;
  };

  ok(await stack.gql(TOKENS, { consumerId: SMALL, first: 5 }, full), 'list');
  await stack.gql(TOKENS, { consumerId: SMALL, first: 5 }, bearer(wrongBearer));
  await stack.gql('query Node($id: ID!) { node(id: $id) { id } }', { id: 'QXV0aGVudGljYXRpb25Ub2tlbjpbXQ' }, full);

  const jwt = ok(
    await stack.gql(
      OBTAIN_JWT,
      { input: { instanceId: usable.instanceId, consumerId: usable.consumerId, authenticationTokenId: usable.authenticationTokenId } },
      full,
    ),
    'obtainJwt',
  ) as any;
  const { value, derivedShortToken } = jwt.obtainJwtAuthenticationToken.jwt;
  secrets.push(value, value.split('.')[2], derivedShortToken);

  for (const role of [DEMO_CLOUD_ACCOUNT_ROLES.alibaba, DEMO_CLOUD_ACCOUNT_ROLES.aws]) {
    const r = ok(
      await stack.gql(OBTAIN_ROLE, { input: { instanceId: role.instanceId, cloudAccountRoleExternalId: role.cloudAccountRoleExternalId } }, full),
      'obtainRole',
    ) as any;
    const c = r.obtainCloudAccountRoleAccessCredential.accessCredential;
    if (c.alibabaCloudStsToken) secrets.push(c.alibabaCloudStsToken.accessKeySecret, c.alibabaCloudStsToken.securityToken);
    if (c.awsStsToken) secrets.push(c.awsStsToken.secretAccessKey, c.awsStsToken.sessionToken);
  }

  const password = (u: { name: string; domain: { name: string } }, pw: string) => ({ userName: u.name, domainName: u.domain.name, password: pw });
  const iam = ok(await stack.gql(CREATE_IAM_TOKEN, { input: { password: password(user, user.password) } }, {}), 'createIamToken') as any;
  secrets.push(iam.createIamToken.value);
  await stack.gql(CREATE_IAM_TOKEN, { input: { password: password(user, wrongPassword) } }, {});
  await stack.gql(CREATE_IAM_TOKEN, { input: { password: password(mfa, mfa.password) } }, {});
  const passcode = authenticator.generate(mfa.totpSecret);
  secrets.push(passcode);
  const withMfa = ok(
    await stack.gql(CREATE_IAM_TOKEN, { input: { password: password(mfa, mfa.password), totp: { userId: mfa.id, passcode } } }, {}),
    'createIamToken with totp',
  ) as any;
  secrets.push(withMfa.createIamToken.value);
  await stack.gql(CREATE_IAM_TOKEN, { input: { password: password(mfa, mfa.password), totp: { userId: mfa.id, passcode: wrongPasscode } } }, {});

  const scoped = ok(
    await stack.gql(CREATE_SCOPED, { input: { token: DEMO_IAM_FEDERATED.token, scope: { project: { id: DEMO_IAM_PROJECTS.euWest0.id } } } }, {}),
    'createScopedIamToken',
  ) as any;
  secrets.push(scoped.createScopedIamToken.value);
  const tampered = `${iam.createIamToken.value.slice(0, -4)}AAAA`;
  secrets.push(tampered);
  await stack.gql(CREATE_SCOPED, { input: { token: tampered, scope: { domain: { name: user.domain.name } } } }, {});
  await stack.gql('{ iamEndpoints { name isDefault } }', {}, {});

  return [...new Set(secrets.filter((s): s is string => typeof s === 'string' && s.length >= 6))];
}

/** The secrets found in a text (none, we hope). */
export const leaked = (text: string, secrets: readonly string[]) => secrets.filter((s) => text.includes(s));
