// Generated and mutated requests (fast-check): whatever a client sends, the gateway answers
// with a 2xx/4xx, every GraphQL error carries a contract code, and the process neither crashes
// nor leaves a rejection unhandled. ~1500 runs in all; a property that runs out of time fails.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_AUTHENTICATION_TOKENS, DEMO_CONSUMERS, DEMO_IAM_USERS } from '../../src/emulator/fixtures.ts';
import { FULL, startStack, type Stack } from '../helpers.ts';
import { CREATE_IAM_TOKEN, I, OBTAIN_JWT, PROVIDER, TOKENS, contractErrors } from './support.ts';
import { listen, type Listening } from '../http-gateway.ts';

const USER = DEMO_IAM_USERS.password;
const TOKEN = DEMO_AUTHENTICATION_TOKENS.find((t) => t.consumerId === DEMO_CONSUMERS.large && !t.revoked)!;

const SEEDS = [
  TOKENS,
  OBTAIN_JWT,
  CREATE_IAM_TOKEN,
  `{ node(id: "QXV0aGVudGljYXRpb25Ub2tlbjpbXQ") { id ... on AuthenticationToken { expiresAt expired } ... on Instance { instanceId } } }`,
  `query Page($after: String) { instance(instanceId: "${I}") { authenticationTokens(consumerId: "${DEMO_CONSUMERS.large}", credentialProviderIdentifier: "${PROVIDER}", first: 3, after: $after) { edges { cursor node { id } } pageInfo { endCursor hasNextPage } } } }`,
  `mutation Scoped($input: CreateScopedIamTokenInput!) { createScopedIamToken(input: $input) { value project { id } } }`,
  `{ iamEndpoints { name isDefault } __typename }`,
];

const NASTY_CHARS = ['{', '}', '(', ')', '[', ']', '"', '"""', '\\', '$', '@', '!', ':', '...', '#', '\n', '\u0000', '\u2028', '😀', 'é', '\uFFFF', '\uD800', ' '];

/** A seed document with random edits: insertions, deletions, replacements and truncation. */
const mutatedDocument = fc
  .tuple(
    fc.constantFrom(...SEEDS),
    fc.array(
      fc.tuple(
        fc.nat(),
        fc.constantFrom('insert', 'delete', 'replace'),
        fc.oneof(fc.constantFrom(...NASTY_CHARS), fc.string({ maxLength: 3, unit: 'binary' })),
      ),
      { maxLength: 8 },
    ),
    fc.option(fc.nat(), { nil: undefined }),
  )
  .map(([seed, edits, cut]) => {
    let doc = seed;
    for (const [at, op, text] of edits) {
      const i = doc.length ? at % doc.length : 0;
      if (op === 'insert') doc = doc.slice(0, i) + text + doc.slice(i);
      else if (op === 'delete') doc = doc.slice(0, i) + doc.slice(i + 1 + (at % 5));
      else doc = doc.slice(0, i) + text + doc.slice(i + text.length);
    }
    return cut === undefined ? doc : doc.slice(0, cut % (doc.length + 1));
  });

/** Structurally odd documents: deep braces, deep selections, many arguments, unicode. */
const generatedDocument = fc.oneof(
  fc.nat({ max: 5_000 }).map((n) => `${'{'.repeat(n)}${'}'.repeat(n)}`),
  fc.nat({ max: 300 }).map((n) => `{ ${'node(id: "x") { ... on Instance { '.repeat(n)}id${' } }'.repeat(n)} }`),
  fc.nat({ max: 300 }).map((n) => `{ iamEndpoints(${Array.from({ length: n }, (_, i) => `a${i}: ${i}`).join(', ')}) { name } }`),
  fc.string({ maxLength: 200, unit: 'grapheme' }),
  fc.string({ maxLength: 200, unit: 'binary' }),
  fc.string({ maxLength: 40 }).map((s) => `query ${s} { __typename }`),
  fc.nat({ max: 2_000 }).map((n) => `query Q(${Array.from({ length: n }, (_, i) => `$v${i}: Int`).join(' ')}) { __typename }`),
);

const hugeNumber = fc.oneof(
  fc.integer(),
  fc.constantFrom(2 ** 31, -(2 ** 31) - 1, 1e21, -1, 0, 500, 501, Number.MAX_SAFE_INTEGER, 1.5, -0),
  fc.double(),
  fc.string({ maxLength: 20 }),
);

const text = fc.oneof(fc.string({ maxLength: 80 }), fc.string({ maxLength: 80, unit: 'grapheme' }), fc.constantFrom('', ' ', '../..', '%2F', 'a/b?c#d', 'x'.repeat(2_000)));

const smallInt = fc.oneof(fc.integer({ min: -2, max: 600 }), hugeNumber);
const ref = fc.record({ id: text, name: text }, { requiredKeys: [] });
const scope = fc.oneof(
  fc.record({ project: fc.record({ id: text, name: text, domain: ref }, { requiredKeys: [] }) }),
  fc.record({ domain: ref }),
  fc.record({ project: fc.constant({ id: '0a1b2c3d4e5f60718293a4b5c6d7e8f9' }) }),
  fc.jsonValue({ maxDepth: 3 }),
);
const iamPassword = fc.oneof(
  fc.record(
    {
      userName: fc.oneof(text, fc.constant(USER.name)),
      userId: text,
      domainName: fc.oneof(text, fc.constant(USER.domain.name)),
      domainId: text,
      password: fc.oneof(text, hugeNumber, fc.constant(USER.password)),
    },
    { requiredKeys: [] },
  ),
  fc.jsonValue({ maxDepth: 3 }),
);

/** A real operation with variables of the right shape (random values) or a wrong one. */
const operation = fc.oneof(
  fc.record({
    query: fc.constant(TOKENS),
    variables: fc.record({ consumerId: fc.oneof(text, fc.constantFrom(DEMO_CONSUMERS.small, DEMO_CONSUMERS.large)), first: smallInt }, { requiredKeys: ['consumerId'] }),
  }),
  fc.record({
    query: fc.constant(OBTAIN_JWT),
    variables: fc.record({
      input: fc.record(
        {
          instanceId: fc.oneof(text, fc.constant(TOKEN.instanceId)),
          consumerId: fc.oneof(text, fc.constant(TOKEN.consumerId)),
          authenticationTokenId: fc.oneof(text, fc.constant(TOKEN.authenticationTokenId)),
          credentialProviderIdentifier: fc.oneof(text, fc.constant(null), fc.constant(PROVIDER)),
        },
        { requiredKeys: ['instanceId', 'consumerId', 'authenticationTokenId'] },
      ),
    }),
  }),
  fc.record({
    query: fc.constant(CREATE_IAM_TOKEN),
    variables: fc.record({
      input: fc.record(
        {
          endpoint: fc.oneof(text, fc.constant(null), fc.constant('emulator')),
          includeCatalog: fc.oneof(fc.boolean(), text),
          password: iamPassword,
          totp: fc.oneof(fc.record({ userId: text, passcode: fc.oneof(text, hugeNumber) }, { requiredKeys: [] }), fc.jsonValue({ maxDepth: 2 })),
          scope,
          receipt: text,
        },
        { requiredKeys: [] },
      ),
    }),
  }),
  fc.record({ query: fc.constant(SEEDS[4]!), variables: fc.record({ after: fc.oneof(text, fc.base64String({ maxLength: 200 })) }) }),
  fc.record({ query: fc.constant(SEEDS[5]!), variables: fc.record({ input: fc.record({ token: text, scope, endpoint: text }, { requiredKeys: ['token'] }) }) }),
  fc.record({ query: fc.constant('query N($id: ID!) { node(id: $id) { id __typename } }'), variables: fc.record({ id: fc.oneof(text, fc.base64String({ maxLength: 300 }), hugeNumber) }) }),
);

/** Variables that fit no operation in particular. */
const variables = fc.oneof(fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 4 }), { maxKeys: 5 }), fc.jsonValue({ maxDepth: 3 }));

const headers = fc.record(
  {
    authorization: fc.oneof({ weight: 4, arbitrary: fc.constant(FULL.authorization) }, fc.constant('Bearer'), fc.string({ maxLength: 60 }).map((s) => `Bearer ${s}`), fc.constantFrom('Basic abc', '')),
    accept: fc.constantFrom('application/json', 'application/graphql-response+json', 'application/graphql-response+json, application/json', '*/*'),
    'x-request-id': fc.string({ maxLength: 140 }),
  },
  { requiredKeys: ['accept'] },
).map((h) => Object.fromEntries(Object.entries(h).map(([k, v]) => [k, v.replace(/[^\x20-\x7e]/g, '')])) as Record<string, string>);

/** A whole request body: a GraphQL request of random parts, or random JSON, or not JSON at all. */
const body = fc.oneof(
  { weight: 5, arbitrary: operation.map((b) => JSON.stringify(b)) },
  {
    weight: 3,
    arbitrary: fc
      .record({ query: fc.oneof(mutatedDocument, generatedDocument), variables, operationName: fc.option(fc.string({ maxLength: 20 }), { nil: undefined }) }, { requiredKeys: ['query'] })
      .map((b) => JSON.stringify(b)),
  },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 5 }).map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.record({ query: fc.jsonValue({ maxDepth: 2 }), variables: fc.jsonValue({ maxDepth: 2 }), extensions: fc.jsonValue({ maxDepth: 2 }) }).map((b) => JSON.stringify(b)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 300, unit: 'binary' }) },
);

/** The GraphQL errors of an answer, asserting they all carry a contract code. */
function checkAnswer(status: number, contentType: string | null, text: string, sent: unknown) {
  const where = `HTTP ${status} for ${JSON.stringify(sent).slice(0, 600)}`;
  expect(status, where).toBeLessThan(500);
  expect(status, where).toBeGreaterThanOrEqual(200);
  if (!contentType?.includes('json')) return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`${where}: the body is not JSON: ${text.slice(0, 200)}`);
  }
  try {
    contractErrors(parsed);
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`);
  }
  if (status >= 400) expect((parsed as { errors?: unknown[] }).errors?.length, where).toBeGreaterThan(0);
}

const unexpected: unknown[] = [];
const onUnexpected = (e: unknown) => void unexpected.push(e);

let stack: Stack;
let http: Listening;
beforeAll(async () => {
  process.on('unhandledRejection', onUnexpected);
  process.on('uncaughtException', onUnexpected);
  stack = await startStack();
  http = await listen(stack.gateway);
});
afterAll(async () => {
  process.off('unhandledRejection', onUnexpected);
  process.off('uncaughtException', onUnexpected);
  await http.close();
  await stack.close();
});

// Every run is a check: a property that hits its time limit fails (saying how many runs it
// made) rather than passing on fewer runs than it claims. The tests' own timeouts are longer.
const bounded = (numRuns: number) => ({ numRuns, interruptAfterTimeLimit: 20_000, markInterruptAsFailure: true, endOnFailure: true });

describe('fuzz through yoga.fetch', () => {
  it('POSTed bodies (mutated and generated documents, random variables, random JSON, garbage): never a 5xx, always contract codes', { timeout: 40_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(body, headers, async (b, h) => {
        const res = await stack.gateway.fetch('http://gateway.test/graphql', {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...h },
          body: b,
        });
        checkAnswer(res.status, res.headers.get('content-type'), await res.text(), { body: b, headers: h });
      }),
      bounded(900),
    );
  });

  it('GET with random query parameters: never a 5xx, always contract codes', { timeout: 30_000 }, async () => {
    const param = fc.oneof(mutatedDocument, generatedDocument, fc.string({ maxLength: 100 }));
    await fc.assert(
      fc.asyncProperty(param, fc.option(fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v))), fc.option(fc.string({ maxLength: 30 })), async (query, vars, op) => {
        const qs = new URLSearchParams({ query });
        if (vars !== null) qs.set('variables', vars);
        if (op !== null) qs.set('operationName', op);
        const res = await stack.gateway.fetch(`http://gateway.test/graphql?${qs}`, {
          headers: { 'x-graphql-yoga-csrf': '1', accept: 'application/graphql-response+json', ...FULL },
        });
        checkAnswer(res.status, res.headers.get('content-type'), await res.text(), { query, vars, op });
      }),
      bounded(300),
    );
  });
});

describe('fuzz over a real socket', () => {
  it('POSTed bodies with random content types over loopback: never a 5xx, always contract codes', { timeout: 30_000 }, async () => {
    const contentType = fc.constantFrom('application/json', 'application/json; charset=utf-8', 'application/graphql', 'application/graphql+json', 'application/json; charset=latin1', 'multipart/form-data; boundary=x');
    await fc.assert(
      fc.asyncProperty(body, headers, contentType, async (b, h, ct) => {
        const res = await fetch(http.url, {
          method: 'POST',
          headers: { ...h, 'content-type': ct },
          body: b,
        });
        checkAnswer(res.status, res.headers.get('content-type'), await res.text(), { body: b, headers: h, ct });
      }),
      bounded(300),
    );
  });
});

describe('after the fuzzing', () => {
  it('no unhandled rejection or uncaught exception, and the gateway still serves', async () => {
    expect(unexpected).toEqual([]);
    // The generated requests got past validation often enough to exercise resolvers and clients.
    const upstreamCalls = Object.values(stack.emulator.counters()).reduce((n, c) => n + c.requests, 0);
    expect(upstreamCalls).toBeGreaterThan(10);
    const r = await stack.gql(TOKENS, { consumerId: DEMO_CONSUMERS.small, first: 5 });
    expect(r.errors).toBeUndefined();
    expect(r.data.instance.authenticationTokens.totalCount).toBe(3);
    expect(stack.logs.filter((l) => l.includes('"unexpected error"'))).toEqual([]);
  });
});
