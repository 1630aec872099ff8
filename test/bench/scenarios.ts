// What the benchmark sends: the direct REST baseline and four GraphQL operations, built from the
// emulator's demo data. Requests alternate between two demo access tokens so that the
// emulator's per-token throttle (IDAAS_RATE_LIMIT_PER_SECOND) stays out of the way.
// `list20-broker` sends the list-20 query to a second gateway in broker mode (AUTH_MODE=broker),
// as the demo caller alice (group platform-admins, allowed everything by policies/demo.cedar)
// with her OIDC JWT from the emulator's issuer; that gateway calls PAM with its own cached M2M
// token (one token for all requests: the 5000/s throttle is still far above the gateway's rate).
// `list20-ratelimit` and `list20-redis` send the same list-20 query to two more gateways with the
// per-client rate limit on (limits far above what the benchmark sends): one keeps its buckets in
// its own memory, the other in a redis-server the benchmark starts (REDIS_URL). Against each
// other, they give what Redis adds per request.
import type { AutocannonRequest } from 'autocannon';
import {
  DEMO_ACCESS_TOKENS,
  DEMO_AUTHENTICATION_TOKENS,
  DEMO_CALLERS,
  DEMO_CONSUMERS,
  DEMO_CREDENTIAL_PROVIDERS,
  DEMO_IAM_PROJECTS,
  DEMO_IAM_USERS,
  DEMO_INSTANCE_ID,
} from '../../src/emulator/fixtures.ts';

export type ScenarioId = 'direct' | 'list20' | 'list20-broker' | 'list20-ratelimit' | 'list20-redis' | 'alias5' | 'jwt' | 'iam' | 'instance' | 'list1';

/** What only exists once the emulator runs. */
export interface ScenarioContext {
  /** `Bearer <JWT>` of the broker-mode caller (BROKER_CALLER), signed by this emulator's OIDC issuer. */
  brokerAuthorization: string;
}

export interface Scenario {
  id: ScenarioId;
  label: string;
  /**
   * The emulator, the gateway in forward mode (AUTH_MODE=forward, rate limit off), the one in
   * broker mode, or a forward-mode one with the rate limit on: buckets in its memory
   * ('ratelimit') or in Redis ('redis').
   */
  target: 'emulator' | 'gateway' | 'broker' | 'ratelimit' | 'redis';
  /** Cycled through by every connection. */
  requests: AutocannonRequest[] | ((ctx: ScenarioContext) => AutocannonRequest[]);
  /** A response body that counts as a correct answer. */
  verify(body: string): boolean;
  /** Run only when BENCH_SCENARIOS names it (the cost breakdown, not the targets). */
  optional?: boolean;
  /** Run only at these upstream latencies (ms); default: every one in BENCH_LATENCIES. */
  onlyAtLatenciesMs?: number[];
}

const I = DEMO_INSTANCE_ID;
const CONSUMER = DEMO_CONSUMERS.large; // 160 tokens: a full page of 20
const PROVIDER = DEMO_CREDENTIAL_PROVIDERS.jwt.identifier;
const bearer = (t: { token: string }) => `Bearer ${t.token}`;
const READERS = [bearer(DEMO_ACCESS_TOKENS.full), bearer(DEMO_ACCESS_TOKENS.readOnly)];
const MINTERS = [bearer(DEMO_ACCESS_TOKENS.mint), bearer(DEMO_ACCESS_TOKENS.full)];
const MINTABLE = DEMO_AUTHENTICATION_TOKENS.find((t) => t.instanceId === I && t.consumerId === CONSUMER && !t.revoked && t.expirationTime > Date.now())!;

export const DIRECT_PATH =
  `/v2/${I}/authenticationTokens?` +
  new URLSearchParams({ consumerId: CONSUMER, credentialProviderIdentifier: PROVIDER, maxResults: '20' }).toString();

const TOKEN_ARGS = `consumerId: $consumerId, credentialProviderIdentifier: $provider, first: 20`;
const TOKEN_FIELDS = `nodes { authenticationTokenId expiresAt revoked }`;

export const LIST20 = `query List20($instanceId: String!, $consumerId: String!, $provider: String!) {
  instance(instanceId: $instanceId) {
    authenticationTokens(${TOKEN_ARGS}) { ${TOKEN_FIELDS} }
  }
}`;

/** The cost breakdown: no upstream call at all, and one call for a single token. */
export const INSTANCE_ONLY = `query Instance($instanceId: String!) { instance(instanceId: $instanceId) { instanceId } }`;
export const LIST1 = LIST20.replace('first: 20', 'first: 1').replace('List20', 'List1');

export const ALIAS5 = `query FiveAliases($instanceId: String!, $consumerId: String!, $provider: String!) {
  instance(instanceId: $instanceId) {
${[1, 2, 3, 4, 5].map((n) => `    a${n}: authenticationTokens(${TOKEN_ARGS}) { ${TOKEN_FIELDS} }`).join('\n')}
  }
}`;

export const MINT_JWT = `mutation MintJwt($input: ObtainJwtAuthenticationTokenInput!) {
  obtainJwtAuthenticationToken(input: $input) {
    authenticationToken { authenticationTokenId expiresAt }
    jwt { value }
  }
}`;

export const CREATE_IAM_TOKEN = `mutation CreateIamToken($input: CreateIamTokenInput!) {
  createIamToken(input: $input) { value expiresAt user { name } project { name } }
}`;

const LIST_VARIABLES = { instanceId: I, consumerId: CONSUMER, provider: PROVIDER };

export function graphqlBody(query: string, variables: Record<string, unknown>): string {
  return JSON.stringify({ query, variables });
}

const GRAPHQL_HEADERS = { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' };

function graphqlRequests(query: string, variables: Record<string, unknown>, authorizations: (string | undefined)[]): AutocannonRequest[] {
  const body = graphqlBody(query, variables);
  return authorizations.map((authorization) => ({
    method: 'POST',
    path: '/graphql',
    headers: authorization ? { ...GRAPHQL_HEADERS, authorization } : GRAPHQL_HEADERS,
    body,
  }));
}

/** A GraphQL answer with data and no `errors` member. */
export const graphqlOk = (body: string) => body.startsWith('{"data":{') && !body.includes('"errors":');

export const SCENARIOS: Scenario[] = [
  {
    id: 'direct',
    label: 'direct REST (emulator)',
    target: 'emulator',
    requests: READERS.map((authorization) => ({ method: 'GET', path: DIRECT_PATH, headers: { authorization } })),
    verify: (b) => b.startsWith('{') && b.includes('"entities":[{'),
  },
  {
    id: 'list20',
    label: 'list-20 query',
    target: 'gateway',
    requests: graphqlRequests(LIST20, LIST_VARIABLES, READERS),
    verify: (b) => graphqlOk(b) && b.includes('"authenticationTokenId"'),
  },
  {
    id: 'list20-broker',
    label: 'list-20 query, broker mode',
    target: 'broker',
    requests: (ctx) => graphqlRequests(LIST20, LIST_VARIABLES, [ctx.brokerAuthorization]),
    verify: (b) => graphqlOk(b) && b.includes('"authenticationTokenId"'),
  },
  // The rate-limit pair runs at 0 ms upstream latency only. There the gateway's CPU is the
  // bottleneck, so whatever the rate limit (and its Redis traffic) costs per request shows in the
  // throughput and in CPU per request. At 20 ms the gateway idles between the connections'
  // lock-step rounds (see the README's convoy note), so a few microseconds per request vanish in
  // the noise; the two runs would add half a minute to `npm run bench` and tell nothing more.
  {
    id: 'list20-ratelimit',
    label: 'list-20 query, rate limit in memory',
    target: 'ratelimit',
    requests: graphqlRequests(LIST20, LIST_VARIABLES, READERS),
    verify: (b) => graphqlOk(b) && b.includes('"authenticationTokenId"'),
    onlyAtLatenciesMs: [0],
  },
  {
    id: 'list20-redis',
    label: 'list-20 query, rate limit in Redis',
    target: 'redis',
    requests: graphqlRequests(LIST20, LIST_VARIABLES, READERS),
    verify: (b) => graphqlOk(b) && b.includes('"authenticationTokenId"'),
    onlyAtLatenciesMs: [0],
  },
  {
    id: 'alias5',
    label: 'five-alias query',
    target: 'gateway',
    requests: graphqlRequests(ALIAS5, LIST_VARIABLES, READERS),
    verify: (b) => graphqlOk(b) && b.includes('"a5":{'),
  },
  {
    id: 'jwt',
    label: 'JWT mint mutation',
    target: 'gateway',
    requests: graphqlRequests(
      MINT_JWT,
      { input: { instanceId: I, consumerId: CONSUMER, authenticationTokenId: MINTABLE.authenticationTokenId } },
      MINTERS,
    ),
    verify: (b) => graphqlOk(b) && b.includes('"jwt":{"value":"ey'),
  },
  {
    id: 'iam',
    label: 'IAM token mutation',
    target: 'gateway',
    requests: graphqlRequests(
      CREATE_IAM_TOKEN,
      {
        input: {
          password: { userName: DEMO_IAM_USERS.password.name, domainName: DEMO_IAM_USERS.password.domain.name, password: DEMO_IAM_USERS.password.password },
          scope: { project: { id: DEMO_IAM_PROJECTS.euWest0.id } },
          includeCatalog: false,
        },
      },
      [undefined],
    ),
    verify: (b) => graphqlOk(b) && b.includes('"createIamToken":{"value":"'),
  },
  {
    id: 'instance',
    label: 'instance query, no upstream call',
    target: 'gateway',
    requests: graphqlRequests(INSTANCE_ONLY, { instanceId: I }, READERS),
    verify: (b) => graphqlOk(b) && b.includes('"instanceId"'),
    optional: true,
  },
  {
    id: 'list1',
    label: 'list-1 query',
    target: 'gateway',
    requests: graphqlRequests(LIST1, LIST_VARIABLES, READERS),
    verify: (b) => graphqlOk(b) && b.includes('"authenticationTokenId"'),
    optional: true,
  },
];

export function scenarioRequests(s: Scenario, ctx: ScenarioContext): AutocannonRequest[] {
  return typeof s.requests === 'function' ? s.requests(ctx) : s.requests;
}

/** The first-answer probe for start-up timing: the list-20 query. */
export const STARTUP_PROBE = { headers: { ...GRAPHQL_HEADERS, authorization: READERS[0]! }, body: graphqlBody(LIST20, LIST_VARIABLES) };

/** The broker-mode caller: alice in platform-admins, whom policies/demo.cedar lets list everything. */
export const BROKER_CALLER = DEMO_CALLERS.admin;

/** The same probe for the broker-mode gateway, as BROKER_CALLER. */
export const brokerStartupProbe = (ctx: ScenarioContext) => ({
  headers: { ...GRAPHQL_HEADERS, authorization: ctx.brokerAuthorization },
  body: graphqlBody(LIST20, LIST_VARIABLES),
});
