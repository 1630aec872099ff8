// The per-request page loader, seen from the emulator's counters: identical upstream page
// requests within one operation are made once, different ones run concurrently, and nothing
// is cached across requests.
import { describe, expect, it } from 'vitest';
import {
  DEMO_AUTHENTICATION_TOKENS,
  DEMO_CONSUMERS,
  DEMO_CREDENTIAL_PROVIDERS,
  DEMO_INSTANCE_ID,
} from '../../src/emulator/fixtures.ts';
import { useStack } from '../helpers.ts';

const I = DEMO_INSTANCE_ID;
const PROVIDER = DEMO_CREDENTIAL_PROVIDERS.jwt.identifier;
const LIST_ROUTE = 'idaas.listAuthenticationTokens';

const CONNECTION_FIELDS = /* GraphQL */ `
  totalCount
  pageInfo { hasNextPage endCursor }
  edges { cursor node { id authenticationTokenId consumerId createdAt } }
`;

const stack = useStack();

const listCounters = () => stack.emulator.counters()[LIST_ROUTE] ?? { requests: 0, inFlight: 0, maxInFlight: 0 };

/** A small selection for pages of 100 and more (the query cost limit counts edges × fields). */
const LIGHT_FIELDS = 'edges { node { id authenticationTokenId } }';

/** `alias: authenticationTokens(...)` for one consumer. */
function field(alias: string, consumerId: string, first: number, selection = first > 20 ? LIGHT_FIELDS : CONNECTION_FIELDS) {
  return `${alias}: authenticationTokens(consumerId: "${consumerId}", credentialProviderIdentifier: "${PROVIDER}", first: ${first}) { ${selection} }`;
}

function instanceQuery(fields: string[], extra = '') {
  return `query { instance(instanceId: "${I}") { ${fields.join('\n')} } ${extra} }`;
}

function idsOf(consumerId: string) {
  return DEMO_AUTHENTICATION_TOKENS.filter((t) => t.instanceId === I && t.consumerId === consumerId && t.credentialProviderId === DEMO_CREDENTIAL_PROVIDERS.jwt.credentialProviderId).map(
    (t) => t.authenticationTokenId,
  );
}

/** The node id of the large consumer's token at `index`, looked up in a request of its own. */
async function tokenNodeId(index: number): Promise<string> {
  const r = await stack.gql(instanceQuery([field('t', DEMO_CONSUMERS.large, index + 1)]));
  expect(r.errors).toBeUndefined();
  const id = r.data.instance.t.edges[index].node.id as string;
  stack.emulator.reset();
  return id;
}

describe('within one operation', () => {
  it('five aliased identical fields make exactly one upstream call and agree', async () => {
    const aliases = ['a', 'b', 'c', 'd', 'e'];
    const r = await stack.gql(instanceQuery(aliases.map((a) => field(a, DEMO_CONSUMERS.large, 10))));
    expect(r.errors).toBeUndefined();
    expect(listCounters().requests).toBe(1);
    const results = aliases.map((a) => r.data.instance[a]);
    for (const res of results) expect(res).toEqual(results[0]);
    expect(results[0].edges.map((e: any) => e.node.authenticationTokenId)).toEqual(idsOf(DEMO_CONSUMERS.large).slice(0, 10));
  });

  it('three consumers in one query: three upstream calls that run concurrently', async () => {
    stack.emulator.inject({ route: LIST_ROUTE, latencyMs: 150 });
    const consumers = [DEMO_CONSUMERS.large, DEMO_CONSUMERS.medium, DEMO_CONSUMERS.small];
    const r = await stack.gql(instanceQuery(consumers.map((c, i) => field(`c${i}`, c, 5))));
    expect(r.errors).toBeUndefined();
    consumers.forEach((c, i) => {
      expect(r.data.instance[`c${i}`].edges.map((e: any) => e.node.consumerId)).toEqual(Array(Math.min(5, idsOf(c).length)).fill(c));
    });
    expect(listCounters()).toMatchObject({ requests: 3, maxInFlight: 3 });
  });

  it('the same field with different page sizes is different upstream requests', async () => {
    const r = await stack.gql(instanceQuery([field('a', DEMO_CONSUMERS.large, 5), field('b', DEMO_CONSUMERS.large, 6)]));
    expect(r.errors).toBeUndefined();
    expect(r.data.instance.b.edges.slice(0, 5)).toEqual(r.data.instance.a.edges.map((e: any) => ({ ...e, cursor: expect.any(String) })));
    expect(listCounters().requests).toBe(2);
  });

  it('a list with first: 100 and a node refetch of one of its tokens share one upstream call', async () => {
    // node refetch walks the consumer's listing with maxResults 100 from the first page: the
    // very request the list with first: 100 makes.
    const id = await tokenNodeId(42);
    const r = await stack.gql(
      instanceQuery([field('list', DEMO_CONSUMERS.large, 100)], `node(id: "${id}") { id ... on AuthenticationToken { authenticationTokenId } }`),
    );
    expect(r.errors).toBeUndefined();
    expect(r.data.node).toEqual({ id, authenticationTokenId: idsOf(DEMO_CONSUMERS.large)[42] });
    expect(r.data.instance.list.edges).toHaveLength(100);
    expect(listCounters().requests).toBe(1);
  });

  it('a node refetch past the first page reuses the shared first page and fetches only the second', async () => {
    const id = await tokenNodeId(130);
    const r = await stack.gql(
      instanceQuery([field('list', DEMO_CONSUMERS.large, 100)], `node(id: "${id}") { ... on AuthenticationToken { authenticationTokenId } }`),
    );
    expect(r.errors).toBeUndefined();
    expect(r.data.node).toEqual({ authenticationTokenId: idsOf(DEMO_CONSUMERS.large)[130] });
    expect(listCounters().requests).toBe(2);
  });

  it('a list with another page size does not share its page with a node refetch', async () => {
    const id = await tokenNodeId(3);
    const r = await stack.gql(
      instanceQuery([field('list', DEMO_CONSUMERS.large, 20)], `node(id: "${id}") { ... on AuthenticationToken { authenticationTokenId } }`),
    );
    expect(r.errors).toBeUndefined();
    expect(r.data.node).toEqual({ authenticationTokenId: idsOf(DEMO_CONSUMERS.large)[3] });
    expect(listCounters().requests).toBe(2);
  });

  it('two node refetches of tokens on the same page make one upstream call', async () => {
    const a = await tokenNodeId(1);
    const b = await tokenNodeId(77);
    const r = await stack.gql(`query {
      a: node(id: "${a}") { ... on AuthenticationToken { authenticationTokenId } }
      b: node(id: "${b}") { ... on AuthenticationToken { authenticationTokenId } }
    }`);
    expect(r.errors).toBeUndefined();
    expect([r.data.a.authenticationTokenId, r.data.b.authenticationTokenId]).toEqual([idsOf(DEMO_CONSUMERS.large)[1], idsOf(DEMO_CONSUMERS.large)[77]]);
    expect(listCounters().requests).toBe(1);
  });

  it('a failing page is shared too: every alias gets the error from one upstream call', async () => {
    stack.emulator.inject({ route: LIST_ROUTE, status: 400, times: 1 });
    const r = await stack.gql(instanceQuery(['a', 'b', 'c'].map((a) => field(a, DEMO_CONSUMERS.small, 5))));
    expect(r.data.instance).toEqual({ a: null, b: null, c: null });
    expect(r.errors?.map((e) => e.extensions.code)).toEqual(['BAD_USER_INPUT', 'BAD_USER_INPUT', 'BAD_USER_INPUT']);
    expect(listCounters().requests).toBe(1);
  });
});

describe('across requests', () => {
  it('caches nothing: the same query twice makes two upstream calls', async () => {
    const q = instanceQuery([field('a', DEMO_CONSUMERS.small, 5)]);
    const first = await stack.gql(q);
    const second = await stack.gql(q);
    expect(first.errors).toBeUndefined();
    expect(second.data).toEqual(first.data);
    expect(listCounters().requests).toBe(2);
  });

  it('concurrent identical requests are not merged either', async () => {
    stack.emulator.inject({ route: LIST_ROUTE, latencyMs: 100 });
    const q = instanceQuery([field('a', DEMO_CONSUMERS.small, 5)]);
    const results = await Promise.all([stack.gql(q), stack.gql(q)]);
    for (const r of results) expect(r.errors).toBeUndefined();
    expect(listCounters().requests).toBe(2);
  });
});
