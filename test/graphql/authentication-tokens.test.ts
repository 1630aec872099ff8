// Query.instance → authenticationTokens through the whole gateway (yoga → Pothos → undici →
// emulator): fields and time normalisation, the Relay connection over nextToken paging,
// cursors, input validation, node refetch and the caller's Authorization.
import { describe, expect, it } from 'vitest';
import {
  DEMO_ACCESS_TOKENS,
  DEMO_AUTHENTICATION_TOKENS,
  DEMO_CLOUD_ACCOUNT_ROLES,
  DEMO_CONSUMERS,
  DEMO_CREDENTIAL_PROVIDERS,
  DEMO_INSTANCE_ID,
  DEMO_OTHER_INSTANCE_ID,
  type AuthenticationTokenFixture,
} from '../../src/emulator/fixtures.ts';
import { onlyError, useStack, type GqlResult } from '../helpers.ts';

const I = DEMO_INSTANCE_ID;
const PROVIDER = DEMO_CREDENTIAL_PROVIDERS.jwt;
const LARGE = DEMO_CONSUMERS.large;
const LIST_ROUTE = 'idaas.listAuthenticationTokens';
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const REQUEST_ID = /^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/;

const TOKEN_FIELDS = /* GraphQL */ `
  id authenticationTokenId instanceId credentialProviderId type revoked
  creatorType creatorId consumerType consumerId
  createdAt updatedAt expiresAt expiresIn expired
`;

const TOKENS_QUERY = /* GraphQL */ `
  query Tokens(
    $instanceId: String!, $consumerId: String!, $provider: String!,
    $revoked: Boolean, $expired: Boolean, $first: Int, $after: String
  ) {
    instance(instanceId: $instanceId) {
      id
      instanceId
      authenticationTokens(
        consumerId: $consumerId, credentialProviderIdentifier: $provider,
        revoked: $revoked, expired: $expired, first: $first, after: $after
      ) {
        totalCount
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
        edges { cursor node { ${TOKEN_FIELDS} } }
        nodes { authenticationTokenId }
      }
    }
  }
`;

interface Token {
  id: string;
  authenticationTokenId: string;
  instanceId: string;
  credentialProviderId: string;
  type: string;
  revoked: boolean;
  creatorType: string;
  creatorId: string;
  consumerType: string;
  consumerId: string;
  createdAt: string;
  updatedAt: string;
  expiresAt: string;
  expiresIn: number;
  expired: boolean;
}

interface Connection {
  totalCount: number;
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
  edges: { cursor: string; node: Token }[];
  nodes: { authenticationTokenId: string }[];
}

interface TokensData {
  instance: { id: string; instanceId: string; authenticationTokens: Connection | null } | null;
}

interface ListArgs {
  instanceId?: string;
  consumerId?: string;
  provider?: string;
  revoked?: boolean;
  expired?: boolean;
  first?: number;
  after?: string | null;
}

const stack = useStack();

// ------------------------------------------------------------------ helpers

function list(args: ListArgs = {}, headers?: Record<string, string>): Promise<GqlResult<TokensData>> {
  return stack.gql<TokensData>(TOKENS_QUERY, { instanceId: I, consumerId: LARGE, provider: PROVIDER.identifier, ...args }, headers);
}

/** One page that must succeed. */
async function page(args: ListArgs = {}): Promise<Connection> {
  const r = await list(args);
  expect(r.errors).toBeUndefined();
  const connection = r.data.instance?.authenticationTokens;
  if (!connection) throw new Error('no connection');
  // `nodes` is the same list as `edges[].node`.
  expect(connection.nodes.map((n) => n.authenticationTokenId)).toEqual(ids(connection));
  return connection;
}

const ids = (c: Connection) => c.edges.map((e) => e.node.authenticationTokenId);

/** Follows endCursor until hasNextPage is false; returns every id in order and the number of queries. */
async function walk(first: number, args: ListArgs = {}): Promise<{ ids: string[]; queries: number; totalCounts: Set<number> }> {
  const all: string[] = [];
  const totalCounts = new Set<number>();
  let after: string | null = null;
  let queries = 0;
  for (;;) {
    const c = await page({ ...args, first, after });
    queries += 1;
    totalCounts.add(c.totalCount);
    expect(c.edges.length).toBeLessThanOrEqual(first);
    expect(c.pageInfo.hasPreviousPage).toBe(after !== null);
    all.push(...ids(c));
    if (!c.pageInfo.hasNextPage) return { ids: all, queries, totalCounts };
    expect(c.edges.length).toBe(first);
    expect(c.pageInfo.endCursor).toBe(c.edges.at(-1)!.cursor);
    after = c.pageInfo.endCursor;
    if (queries > 200) throw new Error('the walk does not end');
  }
}

/** The fixture tokens a listing must return, in the upstream's order. */
function expected(
  opts: { consumerId?: string; instanceId?: string; revoked?: boolean; expired?: boolean } = {},
): AuthenticationTokenFixture[] {
  const now = Date.now();
  return DEMO_AUTHENTICATION_TOKENS.filter(
    (t) =>
      t.instanceId === (opts.instanceId ?? I) &&
      t.consumerId === (opts.consumerId ?? LARGE) &&
      t.credentialProviderId === PROVIDER.credentialProviderId &&
      (opts.revoked === undefined || t.revoked === opts.revoked) &&
      (opts.expired === undefined || t.expirationTime <= now === opts.expired),
  );
}

const LARGE_IDS = expected().map((t) => t.authenticationTokenId);

const upstreamCalls = (route = LIST_ROUTE) => stack.emulator.counters()[route]?.requests ?? 0;
const allUpstreamCalls = () => Object.values(stack.emulator.counters()).reduce((n, c) => n + c.requests, 0);

/** The edge `index` of the consumer's listing, fetched in one query. */
async function edgeAt(index: number) {
  const c = await page({ first: index + 1 });
  return c.edges[index]!;
}

function expectBadInput(r: GqlResult<unknown>) {
  const err = onlyError(r);
  expect(err.extensions.code).toBe('BAD_USER_INPUT');
  return err;
}

// ------------------------------------------------------------------ fields

describe('fields', () => {
  it('returns every field of the upstream token, times normalised from epoch ms to ISO-8601 UTC', async () => {
    const c = await page({ first: 20 });
    const fixtures = expected().slice(0, 20);
    expect(c.edges).toHaveLength(20);
    const now = Date.now();
    c.edges.forEach(({ node }, i) => {
      const f = fixtures[i]!;
      expect(node).toMatchObject({
        authenticationTokenId: f.authenticationTokenId,
        instanceId: I,
        credentialProviderId: PROVIDER.credentialProviderId,
        type: 'JWT',
        revoked: f.revoked,
        creatorType: f.creatorType,
        creatorId: f.creatorId,
        consumerType: f.consumerType,
        consumerId: LARGE,
        createdAt: new Date(f.createTime).toISOString(),
        updatedAt: new Date(f.updateTime).toISOString(),
        expiresAt: new Date(f.expirationTime).toISOString(),
        expired: f.expirationTime <= now,
      });
      expect(node.id).toEqual(expect.any(String));
    });
  });

  it('gives ISO strings in UTC with a Z suffix', async () => {
    const { node } = (await page({ first: 1 })).edges[0]!;
    expect(node.createdAt).toBe('2026-01-02T08:00:00.000Z');
    for (const t of [node.createdAt, node.updatedAt, node.expiresAt]) {
      expect(t).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$/);
    }
  });

  it('computes expiresIn in whole seconds from now and 0 for expired tokens', async () => {
    const before = Date.now();
    const c = await page({ first: 20 });
    const after = Date.now();
    const expiredOnes = c.edges.filter((e) => e.node.expired);
    const live = c.edges.filter((e) => !e.node.expired);
    expect(expiredOnes.length).toBeGreaterThan(0);
    expect(live.length).toBeGreaterThan(0);
    for (const { node } of expiredOnes) {
      expect(node.expiresIn).toBe(0);
      expect(Date.parse(node.expiresAt)).toBeLessThanOrEqual(after);
    }
    for (const { node } of live) {
      const exp = Date.parse(node.expiresAt);
      expect(Number.isInteger(node.expiresIn)).toBe(true);
      expect(node.expiresIn).toBeGreaterThanOrEqual(Math.floor((exp - after) / 1000) - 1);
      expect(node.expiresIn).toBeLessThanOrEqual(Math.ceil((exp - before) / 1000));
    }
  });

  it('answers Query.instance without any upstream call', async () => {
    const r = await stack.gql(`query($i: String!) { instance(instanceId: $i) { id instanceId } }`, { i: I });
    expect(r.errors).toBeUndefined();
    expect(r.data.instance.instanceId).toBe(I);
    expect(allUpstreamCalls()).toBe(0);
  });
});

// ------------------------------------------------------------------ pagination

describe('pagination over the 160-token consumer', () => {
  it.each([
    [7, 23],
    [20, 8],
    [100, 2],
    [150, 2],
    [500, 1],
  ])('walks with first = %i: every id once, in the upstream order (%i queries)', async (first, queries) => {
    const w = await walk(first);
    expect(new Set(w.ids).size).toBe(w.ids.length);
    expect(w.ids).toEqual(LARGE_IDS);
    expect(w.queries).toBe(queries);
    expect([...w.totalCounts]).toEqual([160]);
  });

  it('serves a `first` larger than the upstream page size (100) in one query', async () => {
    const c = await page({ first: 150 });
    expect(ids(c)).toEqual(LARGE_IDS.slice(0, 150));
    expect(c.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: false });
    expect(c.totalCount).toBe(160);
    expect(upstreamCalls()).toBe(2);

    stack.emulator.reset();
    const all = await page({ first: 500 });
    expect(ids(all)).toEqual(LARGE_IDS);
    expect(all.pageInfo.hasNextPage).toBe(false);
    expect(upstreamCalls()).toBe(2);
  });

  it('serves the maximum first: 500 with every field alike whether it is a variable or a literal', async () => {
    // Query-cost limits must not refuse with a literal what the contract allows (and what
    // they accept with a variable).
    const literal = TOKENS_QUERY.replace('$first: Int, ', '').replace('first: $first', 'first: 500');
    expect(literal).not.toContain('$first');
    const viaVariable = await list({ first: 500 });
    const viaLiteral = await stack.gql<TokensData>(literal, { instanceId: I, consumerId: LARGE, provider: PROVIDER.identifier });
    expect(viaVariable.errors).toBeUndefined();
    expect(viaLiteral.errors).toBeUndefined();
    expect(ids(viaLiteral.data.instance!.authenticationTokens!)).toEqual(ids(viaVariable.data.instance!.authenticationTokens!));
  });

  it('stops exactly at the end: hasNextPage false when `first` equals what is left', async () => {
    const c = await page({ first: 160 });
    expect(ids(c)).toEqual(LARGE_IDS);
    expect(c.pageInfo.hasNextPage).toBe(false);
  });

  it.each([
    ['in the middle of a single-page query', 20, 7],
    ['in the middle of the first upstream page of a multi-page query', 150, 42],
    ['at the last edge of an upstream page', 150, 99],
    ['in the second upstream page of a multi-page query', 150, 120],
    ['at the first edge', 10, 0],
  ])('resumes right after an edge cursor %s', async (_name, first, index) => {
    const c = await page({ first });
    const cursor = c.edges[index]!.cursor;
    expect(c.edges[index]!.node.authenticationTokenId).toBe(LARGE_IDS[index]);

    for (const next of [5, 30, 100]) {
      const after = await page({ first: next, after: cursor });
      expect(ids(after)).toEqual(LARGE_IDS.slice(index + 1, index + 1 + next));
      expect(after.pageInfo.hasPreviousPage).toBe(true);
      expect(after.pageInfo.hasNextPage).toBe(index + 1 + next < 160);
    }
  });

  it('walks to the end from a middle cursor without gaps or duplicates', async () => {
    const c = await page({ first: 20 });
    const start = c.edges[12]!.cursor;
    const seen = [...LARGE_IDS.slice(0, 13)];
    let after: string | null = start;
    for (let q = 0; after && q < 50; q++) {
      const p = await page({ first: 33, after });
      seen.push(...ids(p));
      after = p.pageInfo.hasNextPage ? p.pageInfo.endCursor : null;
    }
    expect(seen).toEqual(LARGE_IDS);
  });

  it('after the last edge: no edges, no next page, a previous page', async () => {
    const all = await page({ first: 160 });
    const after = await page({ first: 20, after: all.pageInfo.endCursor });
    expect(after.edges).toEqual([]);
    expect(after.pageInfo).toEqual({ hasNextPage: false, hasPreviousPage: true, startCursor: null, endCursor: null });
    expect(after.totalCount).toBe(160);
  });

  it('first: 0 returns no edges but the total count', async () => {
    const c = await page({ first: 0 });
    expect(c.edges).toEqual([]);
    expect(c.nodes).toEqual([]);
    expect(c.totalCount).toBe(160);
    expect(c.pageInfo).toMatchObject({ hasPreviousPage: false, startCursor: null, endCursor: null, hasNextPage: true });
  });

  it('uses the default first = 20', async () => {
    const c = await page({});
    expect(ids(c)).toEqual(LARGE_IDS.slice(0, 20));
    expect(c.pageInfo.hasNextPage).toBe(true);
  });

  it('pageInfo: start/end cursors are the first and last edge cursors; hasPreviousPage only after a cursor', async () => {
    const first = await page({ first: 10 });
    expect(first.pageInfo.hasPreviousPage).toBe(false);
    expect(first.pageInfo.startCursor).toBe(first.edges[0]!.cursor);
    expect(first.pageInfo.endCursor).toBe(first.edges[9]!.cursor);
    const second = await page({ first: 10, after: first.pageInfo.endCursor });
    expect(second.pageInfo.hasPreviousPage).toBe(true);
    expect(ids(second)).toEqual(LARGE_IDS.slice(10, 20));
  });

  it('a small consumer fits in one page', async () => {
    const c = await page({ consumerId: DEMO_CONSUMERS.small, first: 20 });
    expect(ids(c)).toEqual(expected({ consumerId: DEMO_CONSUMERS.small }).map((t) => t.authenticationTokenId));
    expect(c.totalCount).toBe(3);
    expect(c.pageInfo.hasNextPage).toBe(false);
  });
});

// ------------------------------------------------------------------ filters

describe('filters', () => {
  it.each([
    { revoked: true },
    { revoked: false },
    { expired: true },
    { expired: false },
    { revoked: false, expired: false },
    { revoked: true, expired: true },
  ])('forwards %o: ids and totalCount match the fixtures', async (filter) => {
    const want = expected(filter).map((t) => t.authenticationTokenId);
    expect(want.length).toBeGreaterThan(0);
    const one = await page({ ...filter, first: 500 });
    expect(ids(one)).toEqual(want);
    expect(one.totalCount).toBe(want.length);
    expect(one.edges.every((e) => (filter.revoked === undefined || e.node.revoked === filter.revoked))).toBe(true);
    expect(one.edges.every((e) => (filter.expired === undefined || e.node.expired === filter.expired))).toBe(true);

    const w = await walk(9, filter);
    expect(w.ids).toEqual(want);
  });
});

// ------------------------------------------------------------------ cursors and arguments

describe('cursor and argument validation', () => {
  async function cursorOf(args: ListArgs = {}) {
    const c = await page({ ...args, first: 5 });
    stack.emulator.reset();
    return c.edges[2]!.cursor;
  }

  it.each<[string, ListArgs, ListArgs]>([
    ['other filters (revoked)', {}, { revoked: true }],
    ['other filters (expired)', { expired: false }, { expired: true }],
    ['dropped filter', { revoked: false }, {}],
    ['another consumer', { consumerId: DEMO_CONSUMERS.medium }, { consumerId: DEMO_CONSUMERS.small }],
    ['another credential provider', { consumerId: DEMO_CONSUMERS.medium }, { consumerId: DEMO_CONSUMERS.medium, provider: DEMO_CREDENTIAL_PROVIDERS.other.identifier }],
    ['another instance', { consumerId: DEMO_CONSUMERS.medium }, { consumerId: DEMO_CONSUMERS.medium, instanceId: DEMO_OTHER_INSTANCE_ID }],
  ])('refuses a cursor used with %s: BAD_USER_INPUT, no upstream call', async (_name, from, to) => {
    const cursor = await cursorOf(from);
    const r = await list({ ...to, first: 5, after: cursor });
    expectBadInput(r);
    expect(r.data.instance?.authenticationTokens).toBeNull();
    expect(allUpstreamCalls()).toBe(0);
  });

  it('accepts the cursor with the very same filters (control for the test above)', async () => {
    const cursor = await cursorOf({ consumerId: DEMO_CONSUMERS.medium, revoked: false });
    const c = await page({ consumerId: DEMO_CONSUMERS.medium, revoked: false, first: 2, after: cursor });
    expect(c.edges).toHaveLength(2);
  });

  it('refuses a cursor whose payload was edited', async () => {
    const cursor = await cursorOf();
    const flipped = (cursor[0] === 'W' ? 'X' : 'W') + cursor.slice(1);
    const r = await list({ first: 5, after: flipped });
    expectBadInput(r);
    expect(allUpstreamCalls()).toBe(0);
  });

  it('refuses a cursor whose payload was re-encoded to point elsewhere', async () => {
    const cursor = await cursorOf();
    const [payload, sig] = cursor.split('.') as [string, string];
    // Whatever the payload holds, a forger would change a number in it (e.g. the offset).
    const decoded = Buffer.from(payload, 'base64url').toString('utf8');
    const forged = Buffer.from(decoded.replace(/\d+(?=\]$)/, (n) => String(Number(n) + 1))).toString('base64url');
    expect(forged).not.toBe(payload);
    expectBadInput(await list({ first: 5, after: `${forged}.${sig}` }));
  });

  it('refuses every single-character alteration of a cursor', async () => {
    const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const cursor = await cursorOf();
    const accepted: string[] = [];
    for (let i = 0; i < cursor.length; i++) {
      const ch = cursor[i]!;
      if (ch === '.') continue;
      // The neighbour in the base64url alphabet: differs in the lowest bit only.
      const altered = cursor.slice(0, i) + ALPHABET[ALPHABET.indexOf(ch) ^ 1] + cursor.slice(i + 1);
      const r = await list({ first: 5, after: altered });
      if (r.errors?.[0]?.extensions.code !== 'BAD_USER_INPUT') accepted.push(`position ${i}: ${altered}`);
    }
    expect(accepted, `altered cursors that were accepted (original ${cursor})`).toEqual([]);
  });

  it.each(['', 'garbage', 'a.b', '.', 'x'.repeat(5000), 'eyJwIjpudWxsfQ', '{"p":null,"s":5,"o":3}'])(
    'refuses a garbage cursor %#',
    async (after) => {
      const r = await list({ first: 5, after });
      expectBadInput(r);
      expect(allUpstreamCalls()).toBe(0);
    },
  );

  it.each<[string, unknown]>([
    ['a string', 'x'],
    ['a float', 2.5],
    ['a number beyond Int', 2 ** 40],
  ])('refuses a `first` variable that is %s with BAD_USER_INPUT and no upstream call', async (_name, first) => {
    const r = await stack.gql(TOKENS_QUERY, { instanceId: I, consumerId: LARGE, provider: PROVIDER.identifier, first });
    expect(r.errors?.map((e) => e.extensions.code)).toEqual(['BAD_USER_INPUT']);
    expect(r.data ?? null).toBeNull();
    expect(allUpstreamCalls()).toBe(0);
  });

  it.each([-1, 501, -500])('refuses first: %i with BAD_USER_INPUT and no upstream call', async (first) => {
    const r = await list({ first });
    const err = expectBadInput(r);
    expect(err.path).toEqual(['instance', 'authenticationTokens']);
    expect(allUpstreamCalls()).toBe(0);
  });

  it('accepts first: 500, the maximum', async () => {
    expect(ids(await page({ first: 500 }))).toEqual(LARGE_IDS);
  });

  it.each(['../x', 'a/b', 'x?y=1', 'a'.repeat(65), '', 'x y', '%2e%2e', 'a#b', 'a\\b', 'ä'])(
    'refuses instanceId %j with BAD_USER_INPUT and no upstream call',
    async (instanceId) => {
      const r = await list({ instanceId });
      expectBadInput(r);
      expect(r.data).toBeNull();
      expect(allUpstreamCalls()).toBe(0);
    },
  );

  it('accepts a 64-character instanceId (reaches the upstream, which does not know it)', async () => {
    const r = await list({ instanceId: 'a'.repeat(64) });
    const err = onlyError(r);
    expect(err.extensions.code).toBe('NOT_FOUND');
    expect(upstreamCalls()).toBe(1);
  });

  it.each([
    ['empty consumerId', { consumerId: '' }],
    ['empty credentialProviderIdentifier', { provider: '' }],
    ['control characters in consumerId', { consumerId: 'a\nb' }],
    ['an overlong consumerId', { consumerId: 'c'.repeat(257) }],
  ])('refuses %s with BAD_USER_INPUT and no upstream call', async (_name, args) => {
    const r = await list(args);
    expectBadInput(r);
    expect(allUpstreamCalls()).toBe(0);
  });

  it('passes query-string metacharacters in consumerId as data, not as parameters', async () => {
    const r = await list({ consumerId: `${LARGE}&consumerId=${DEMO_CONSUMERS.small}`, first: 5 });
    expect(r.errors).toBeUndefined();
    expect(r.data.instance?.authenticationTokens?.totalCount).toBe(0);
  });
});

// ------------------------------------------------------------------ node refetch

describe('node(id)', () => {
  const NODE_QUERY = /* GraphQL */ `
    query Node($id: ID!) {
      node(id: $id) {
        __typename
        id
        ... on AuthenticationToken { ${TOKEN_FIELDS} }
        ... on Instance { instanceId }
      }
    }
  `;
  const node = (id: string) => stack.gql(NODE_QUERY, { id });

  it.each([3, 130])('refetches the AuthenticationToken of list edge %i', async (index) => {
    const edge = await edgeAt(index);
    stack.emulator.reset();
    const r = await node(edge.node.id);
    expect(r.errors).toBeUndefined();
    const { expiresIn, ...rest } = edge.node;
    expect(r.data.node).toMatchObject({ __typename: 'AuthenticationToken', ...rest });
    expect(Math.abs(r.data.node.expiresIn - expiresIn)).toBeLessThanOrEqual(5);
    expect(upstreamCalls()).toBe(index < 100 ? 1 : 2);
  });

  it('refetches an Instance without an upstream call', async () => {
    const r = await list({ first: 1 });
    const id = r.data.instance!.id;
    stack.emulator.reset();
    const n = await node(id);
    expect(n.errors).toBeUndefined();
    expect(n.data.node).toEqual({ __typename: 'Instance', id, instanceId: I });
    expect(allUpstreamCalls()).toBe(0);
  });

  it('returns null for a well-formed id of a token that does not exist', async () => {
    const { node: token } = await edgeAt(0);
    const raw = Buffer.from(token.id, 'base64').toString('utf8');
    expect(raw).toContain(token.authenticationTokenId);
    const missing = Buffer.from(raw.replace(token.authenticationTokenId, 'atntkn_doesnotexist')).toString('base64');
    const r = await node(missing);
    expect(r.errors).toBeUndefined();
    expect(r.data.node).toBeNull();
  });

  it('refuses a forged token id that smuggles a path into the instance id, without an upstream call', async () => {
    const { node: token } = await edgeAt(0);
    const raw = Buffer.from(token.id, 'base64').toString('utf8');
    expect(raw).toContain(I);
    const forged = Buffer.from(raw.replace(I, '../../x')).toString('base64');
    stack.emulator.reset();
    const r = await node(forged);
    expectBadInput(r);
    expect(r.data.node).toBeNull();
    expect(allUpstreamCalls()).toBe(0);
  });

  it.each([
    ['not base64 at all', 'garbage'],
    ['an unknown type name', Buffer.from('Foo:bar').toString('base64')],
    ['a token id with a broken payload', Buffer.from('AuthenticationToken:xx').toString('base64')],
    ['an empty id', ''],
  ])('answers a node id that is %s with a BAD_USER_INPUT error, not a crash', async (_name, id) => {
    const r = await node(id);
    expect(r.status).toBe(200);
    expect(r.data.node).toBeNull();
    const err = onlyError(r);
    expect(err.path).toEqual(['node']);
    expect(err.extensions?.code).toBe('BAD_USER_INPUT');
    expect(allUpstreamCalls()).toBe(0);
  });
});

// ------------------------------------------------------------------ the caller's Authorization

describe('Authorization', () => {
  it('without Authorization: UNAUTHENTICATED on the field, sibling data kept, no upstream call', async () => {
    const r = await list({ first: 5 }, {});
    const err = onlyError(r);
    expect(err.extensions.code).toBe('UNAUTHENTICATED');
    expect(err.path).toEqual(['instance', 'authenticationTokens']);
    expect(r.data.instance).toMatchObject({ instanceId: I, authenticationTokens: null });
    expect(allUpstreamCalls()).toBe(0);
  });

  it('with a blank Authorization header: UNAUTHENTICATED, no upstream call', async () => {
    const r = await list({ first: 5 }, { authorization: '   ' });
    expect(onlyError(r).extensions.code).toBe('UNAUTHENTICATED');
    expect(allUpstreamCalls()).toBe(0);
  });

  it('forwards the caller’s token: the read-only token can list', async () => {
    const r = await list({ first: 5 }, bearer(DEMO_ACCESS_TOKENS.readOnly.token));
    expect(r.errors).toBeUndefined();
    expect(r.data.instance?.authenticationTokens?.edges.map((e) => e.node.authenticationTokenId)).toEqual(LARGE_IDS.slice(0, 5));
  });

  it('an unknown token is UNAUTHENTICATED with the upstream’s 401 details', async () => {
    const r = await list({ first: 5 }, bearer('not-a-real-access-token'));
    const err = onlyError(r);
    expect(err.extensions.code).toBe('UNAUTHENTICATED');
    expect(err.extensions.upstream).toEqual({ service: 'idaas', status: 401, code: 'invalid_token', requestId: expect.stringMatching(REQUEST_ID) });
    expect(upstreamCalls()).toBe(1);
  });

  it('forwards a non-Bearer scheme as is (the upstream refuses it)', async () => {
    const r = await list({ first: 5 }, { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` });
    const err = onlyError(r);
    expect(err.extensions.code).toBe('UNAUTHENTICATED');
    expect(err.extensions.upstream).toMatchObject({ service: 'idaas', status: 401, code: 'invalid_token' });
  });

  it('a token not issued for the instance is UNAUTHENTICATED (mint token on the other instance)', async () => {
    const r = await list({ first: 5, consumerId: DEMO_CONSUMERS.medium, instanceId: DEMO_OTHER_INSTANCE_ID }, bearer(DEMO_ACCESS_TOKENS.mint.token));
    expect(onlyError(r).extensions).toMatchObject({ code: 'UNAUTHENTICATED', upstream: { status: 401, code: 'invalid_token' } });
  });

  it('the mint token lacks the read scope: listing is FORBIDDEN', async () => {
    const r = await list({ first: 5 }, bearer(DEMO_ACCESS_TOKENS.mint.token));
    const err = onlyError(r);
    expect(err.extensions.code).toBe('FORBIDDEN');
    expect(err.extensions.upstream).toEqual({ service: 'idaas', status: 403, code: 'insufficient_scope', requestId: expect.stringMatching(REQUEST_ID) });
    expect(r.data.instance?.authenticationTokens).toBeNull();
  });

  it('the read-only token lacks the mint scopes: obtainJwt and obtainAccessCredential are FORBIDDEN', async () => {
    const token = expected().find((t) => !t.revoked && t.expirationTime > Date.now())!;
    const r = await stack.gql(
      /* GraphQL */ `
        mutation ($jwt: ObtainJwtAuthenticationTokenInput!, $role: ObtainCloudAccountRoleAccessCredentialInput!) {
          jwt: obtainJwtAuthenticationToken(input: $jwt) { jwt { value } }
          role: obtainCloudAccountRoleAccessCredential(input: $role) { accessCredential { expiresAt } }
        }
      `,
      {
        jwt: { instanceId: I, consumerId: LARGE, authenticationTokenId: token.authenticationTokenId },
        role: { instanceId: I, cloudAccountRoleExternalId: DEMO_CLOUD_ACCOUNT_ROLES.alibaba.cloudAccountRoleExternalId },
      },
      bearer(DEMO_ACCESS_TOKENS.readOnly.token),
    );
    expect(r.data).toEqual({ jwt: null, role: null });
    expect(r.errors?.map((e) => [e.path, e.extensions.code, e.extensions.upstream?.code])).toEqual([
      [['jwt'], 'FORBIDDEN', 'insufficient_scope'],
      [['role'], 'FORBIDDEN', 'insufficient_scope'],
    ]);
  });
});
