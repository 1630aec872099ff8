// Trusted documents (src/http/persisted-operations.ts), through the whole gateway: each
// PERSISTED_OPERATIONS mode, known and unknown hashes, a hash with a query (matching or not),
// GraphiQL and introspection in `only` mode, manifests that stop start-up, the documents compiled
// at start-up, and the examples' committed manifest (kept in step with examples/).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { compileQuery } from 'graphql-jit';
import { ConfigError, defaultConfig, loadConfig, type GatewayConfig } from '../../src/config.ts';
import { createGateway } from '../../src/gateway.ts';
import { createLogger } from '../../src/logger.ts';
import { sha256Hex } from '../../src/http/persisted-operations.ts';
import { DEMO_AUTHENTICATION_TOKENS, DEMO_CONSUMERS, DEMO_CREDENTIAL_PROVIDERS, DEMO_INSTANCE_ID } from '../../src/emulator/fixtures.ts';
import { main, optionsFromEnv, GatewayRequestError, persistedDocuments, documentHash } from '../../examples/client.ts';
import { EXAMPLES_MANIFEST, generateExamplesManifest } from '../../scripts/persisted-operations.ts';
import { FULL, startStack, useStack, type Stack } from '../helpers.ts';
import { startHttpGateway } from '../http-gateway.ts';
import { start, within } from '../spawn-gateway.ts';

// Counts graphql-jit compilations, to see which requests compile and which find it done.
vi.mock('graphql-jit', async (importOriginal) => {
  const jit = await importOriginal<typeof import('graphql-jit')>();
  return { ...jit, compileQuery: vi.fn(jit.compileQuery) };
});

const EXAMPLES: Record<string, string> = JSON.parse(readFileSync(EXAMPLES_MANIFEST, 'utf8'));
const hashOf = (pattern: RegExp) => Object.keys(EXAMPLES).find((h) => pattern.test(EXAMPLES[h]!))!;
const LIST_TOKENS = hashOf(/^query ListTokens\b/);

const ENDPOINTS = 'query Endpoints { iamEndpoints { name } }';
const INTROSPECTION = 'query Introspect { __schema { queryType { name } } }';
/** Not in any manifest. */
const ARBITRARY = 'query Arbitrary { iamEndpoints { name } }';

const dir = mkdtempSync(join(tmpdir(), 'persisted-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function manifestFile(name: string, content: string): string {
  const file = join(dir, name);
  writeFileSync(file, content);
  return file;
}
const manifestOf = (...documents: string[]) => JSON.stringify(Object.fromEntries(documents.map((d) => [sha256Hex(d), d])), null, 2);

const MANIFEST = manifestFile('manifest.json', JSON.stringify({ ...EXAMPLES, ...JSON.parse(manifestOf(ENDPOINTS, INTROSPECTION)) }));

const persisted = (mode: 'allow' | 'only', extra: Partial<GatewayConfig> = {}) => (): Partial<GatewayConfig> => ({
  persistedOperations: { mode, file: MANIFEST },
  ...extra,
});

const LIST_VARIABLES = {
  instanceId: DEMO_INSTANCE_ID,
  consumerId: DEMO_CONSUMERS.small,
  provider: DEMO_CREDENTIAL_PROVIDERS.jwt.identifier,
  first: 10,
};
const SMALL_TOKENS = DEMO_AUTHENTICATION_TOKENS.filter((t) => t.instanceId === DEMO_INSTANCE_ID && t.consumerId === DEMO_CONSUMERS.small).map(
  (t) => t.authenticationTokenId,
);

const extensions = (sha256Hash: string) => ({ persistedQuery: { version: 1, sha256Hash } });

interface Answer {
  status: number;
  data?: any;
  errors?: { message: string; extensions: Record<string, any> }[];
}

async function post(stack: Stack, body: Record<string, unknown>, headers: Record<string, string> = FULL): Promise<Answer> {
  const res = await stack.gateway.fetch('http://gateway.test/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, ...((await res.json()) as object) };
}

const listCalls = (stack: Stack) => stack.emulator.counters()['idaas.listAuthenticationTokens']?.requests ?? 0;

function refused(r: Answer, reason: string | undefined) {
  expect(r.status, JSON.stringify(r)).toBe(400);
  expect(r.data ?? null).toBeNull();
  expect(r.errors).toHaveLength(1);
  expect(r.errors![0]!.extensions.code).toBe('BAD_USER_INPUT');
  expect(r.errors![0]!.extensions.reason).toBe(reason);
  expect(r.errors![0]!.extensions.http).toBeUndefined();
  return r.errors![0]!;
}

function listed(r: Answer) {
  expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
  expect(r.status).toBe(200);
  expect(r.data.instance.authenticationTokens.nodes.map((n: any) => n.authenticationTokenId)).toEqual(SMALL_TOKENS);
}

async function graphiqlServed(stack: Stack) {
  const res = await stack.gateway.fetch('http://gateway.test/graphql', { headers: { accept: 'text/html' } });
  const html = await res.text();
  return /text\/html/.test(res.headers.get('content-type') ?? '') && html.includes('GraphiQL');
}

describe('PERSISTED_OPERATIONS=allow', () => {
  const stack = useStack(persisted('allow'));

  it('a known hash runs the manifest’s document, with variables, on the emulator', async () => {
    listed(await post(stack, { extensions: extensions(LIST_TOKENS), variables: LIST_VARIABLES }));
    listed(await post(stack, { extensions: extensions(LIST_TOKENS.toUpperCase()), variables: LIST_VARIABLES, operationName: 'ListTokens' }));
    expect(listCalls(stack)).toBe(2);
  });

  it('a known hash by GET (a query; CSRF header as for any GET)', async () => {
    const url = new URL('http://gateway.test/graphql');
    url.searchParams.set('extensions', JSON.stringify(extensions(LIST_TOKENS)));
    url.searchParams.set('variables', JSON.stringify(LIST_VARIABLES));
    const res = await stack.gateway.fetch(url, { headers: { accept: 'application/graphql-response+json', 'x-graphql-yoga-csrf': '1', ...FULL } });
    listed({ status: res.status, ...((await res.json()) as object) });
  });

  it('arbitrary documents still run', async () => {
    const r = await post(stack, { query: ARBITRARY });
    expect(r).toMatchObject({ status: 200, data: { iamEndpoints: [{ name: 'emulator' }] } });
  });

  it('an unknown hash: BAD_USER_INPUT, reason PERSISTED_QUERY_NOT_FOUND (message PersistedQueryNotFound, as APQ clients expect)', async () => {
    const e = refused(await post(stack, { extensions: extensions(sha256Hex(ARBITRARY)) }), 'PERSISTED_QUERY_NOT_FOUND');
    expect(e.message).toBe('PersistedQueryNotFound');
    refused(await post(stack, { extensions: extensions('0'.repeat(64)), variables: LIST_VARIABLES }), 'PERSISTED_QUERY_NOT_FOUND');
    expect(listCalls(stack)).toBe(0);
  });

  it('a hash with its own query runs, known or not (an APQ client’s retry)', async () => {
    listed(await post(stack, { query: EXAMPLES[LIST_TOKENS], extensions: extensions(LIST_TOKENS), variables: LIST_VARIABLES }));
    const r = await post(stack, { query: ARBITRARY, extensions: extensions(sha256Hex(ARBITRARY)) });
    expect(r).toMatchObject({ status: 200, data: { iamEndpoints: [{ name: 'emulator' }] } });
  });

  it('a hash with a different query: BAD_USER_INPUT, reason PERSISTED_QUERY_HASH_MISMATCH, nothing runs', async () => {
    // Another manifest document, an arbitrary one, and the right document with one more space.
    for (const query of [ENDPOINTS, ARBITRARY, `${EXAMPLES[LIST_TOKENS]} `]) {
      const e = refused(await post(stack, { query, extensions: extensions(LIST_TOKENS), variables: LIST_VARIABLES }), 'PERSISTED_QUERY_HASH_MISMATCH');
      expect(e.message).toMatch(/sha256Hash is not the SHA-256 of `query`/);
    }
    expect(listCalls(stack)).toBe(0);
  });

  it('neither query nor hash: BAD_USER_INPUT', async () => {
    const r = await post(stack, { variables: {} });
    expect(r.status).toBe(400);
    expect(r.errors?.[0]?.extensions.code).toBe('BAD_USER_INPUT');
    expect(r.errors?.[0]?.message).toMatch(/query string/);
  });

  it('GraphiQL stays on by default', async () => {
    expect(loadConfig({ PERSISTED_OPERATIONS: 'allow', PERSISTED_OPERATIONS_FILE: MANIFEST }).graphiql).toBe(true);
    expect(await graphiqlServed(stack)).toBe(true);
  });
});

describe('PERSISTED_OPERATIONS=only', () => {
  const stack = useStack(persisted('only', { graphiql: loadConfig({ PERSISTED_OPERATIONS: 'only', PERSISTED_OPERATIONS_FILE: MANIFEST }).graphiql }));

  it('a known hash runs', async () => {
    listed(await post(stack, { extensions: extensions(LIST_TOKENS), variables: LIST_VARIABLES, operationName: 'ListTokens' }));
    expect(await post(stack, { extensions: extensions(sha256Hex(ENDPOINTS)) })).toMatchObject({ status: 200, data: { iamEndpoints: [{ name: 'emulator' }] } });
  });

  it('a plain query is refused with 400, reason PERSISTED_ONLY, before anything runs — even the text of a manifest document', async () => {
    for (const query of [ARBITRARY, ENDPOINTS, EXAMPLES[LIST_TOKENS]!]) {
      const e = refused(await post(stack, { query, variables: LIST_VARIABLES }), 'PERSISTED_ONLY');
      expect(e.message).toMatch(/only trusted documents/);
    }
    expect(listCalls(stack)).toBe(0);
  });

  it('an unknown hash, or neither query nor hash: PERSISTED_ONLY', async () => {
    refused(await post(stack, { extensions: extensions(sha256Hex(ARBITRARY)) }), 'PERSISTED_ONLY');
    refused(await post(stack, { variables: {} }), 'PERSISTED_ONLY');
    // A persistedQuery the gateway does not read (another version) is no hash at all.
    refused(await post(stack, { extensions: { persistedQuery: { version: 2, sha256Hash: LIST_TOKENS } } }), 'PERSISTED_ONLY');
  });

  it('a hash with its own query runs when the manifest has it; with another query: PERSISTED_QUERY_HASH_MISMATCH', async () => {
    listed(await post(stack, { query: EXAMPLES[LIST_TOKENS], extensions: extensions(LIST_TOKENS), variables: LIST_VARIABLES }));
    refused(await post(stack, { query: ARBITRARY, extensions: extensions(sha256Hex(ARBITRARY)) }), 'PERSISTED_ONLY');
    refused(await post(stack, { query: ARBITRARY, extensions: extensions(LIST_TOKENS), variables: LIST_VARIABLES }), 'PERSISTED_QUERY_HASH_MISMATCH');
    expect(listCalls(stack)).toBe(1);
  });

  it('a batch is refused as its parts are', async () => {
    const batching = await startStack(persisted('only', { limits: { ...defaultConfig().limits, batchingLimit: 2 } }));
    try {
      const res = await batching.gateway.fetch('http://gateway.test/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...FULL },
        body: JSON.stringify([{ extensions: extensions(sha256Hex(ENDPOINTS)) }, { query: ARBITRARY }]),
      });
      const [ok, no] = (await res.json()) as Answer[];
      expect(ok!.data).toEqual({ iamEndpoints: [{ name: 'emulator' }] });
      expect(no!.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'PERSISTED_ONLY' });
    } finally {
      await batching.close();
    }
  });

  it('GraphiQL is off unless GRAPHIQL is given', async () => {
    expect(await graphiqlServed(stack)).toBe(false);
    const config = (env: Record<string, string>) => loadConfig({ PERSISTED_OPERATIONS_FILE: MANIFEST, ...env });
    expect(config({ PERSISTED_OPERATIONS: 'only' }).graphiql).toBe(false);
    expect(config({ PERSISTED_OPERATIONS: 'only', GRAPHIQL: 'on' }).graphiql).toBe(true);
    expect(config({ PERSISTED_OPERATIONS: 'only', GRAPHIQL: 'off' }).graphiql).toBe(false);
    expect(config({}).graphiql).toBe(true);
    expect(config({ GRAPHIQL: 'off' }).graphiql).toBe(false);

    const explicit = await startStack(persisted('only', { graphiql: config({ PERSISTED_OPERATIONS: 'only', GRAPHIQL: 'on' }).graphiql }));
    try {
      expect(await graphiqlServed(explicit)).toBe(true);
    } finally {
      await explicit.close();
    }
  });

  it('introspection follows INTROSPECTION: a trusted introspection document runs when on, is refused when off', async () => {
    const hash = sha256Hex(INTROSPECTION);
    expect(await post(stack, { extensions: extensions(hash) })).toMatchObject({ status: 200, data: { __schema: { queryType: { name: 'Query' } } } });
    // A plain introspection query is just another query.
    refused(await post(stack, { query: '{ __schema { queryType { name } } }' }), 'PERSISTED_ONLY');

    const closed = await startStack(persisted('only', { introspection: false }));
    try {
      for (let round = 0; round < 2; round++) {
        const r = await post(closed, { extensions: extensions(hash) });
        expect(r.data ?? null).toBeNull();
        expect(r.errors?.[0]?.extensions.code).toBe('BAD_USER_INPUT');
        expect(r.errors?.[0]?.message).toMatch(/introspection/i);
      }
      expect(await post(closed, { extensions: extensions(sha256Hex(ENDPOINTS)) })).toMatchObject({ status: 200, data: { iamEndpoints: [{ name: 'emulator' }] } });
    } finally {
      await closed.close();
    }
  });
});

describe('PERSISTED_OPERATIONS=off (the default)', () => {
  const stack = useStack();

  it('is the default; a hash alone is not understood, a query with a hash runs as a query', async () => {
    expect(loadConfig({}).persistedOperations).toEqual({ mode: 'off', file: undefined });
    const r = await post(stack, { extensions: extensions(LIST_TOKENS), variables: LIST_VARIABLES });
    expect(r.status).toBe(400);
    expect(r.errors?.[0]?.extensions.code).toBe('BAD_USER_INPUT');
    expect(listCalls(stack)).toBe(0);
    const q = await post(stack, { query: ARBITRARY, extensions: extensions(LIST_TOKENS) });
    expect(q).toMatchObject({ status: 200, data: { iamEndpoints: [{ name: 'emulator' }] } });
  });
});

describe('the manifest, checked at start-up', () => {
  const gatewayWith = (file: string, mode: 'allow' | 'only' = 'only') =>
    createGateway({ ...defaultConfig(), persistedOperations: { mode, file } }, { logger: createLogger('silent') });
  /** The one-line message createGateway throws (src/server.ts prints it and exits 2). */
  const startUpError = (content: string) => {
    const file = manifestFile(`bad-${Math.random().toString(36).slice(2)}.json`, content);
    try {
      gatewayWith(file);
    } catch (e) {
      const message = (e as Error).message;
      expect(message).not.toContain('\n');
      expect(message.startsWith(`PERSISTED_OPERATIONS_FILE: ${file}: `), message).toBe(true);
      return message.slice(`PERSISTED_OPERATIONS_FILE: ${file}: `.length);
    }
    throw new Error('createGateway accepted the manifest');
  };

  it('the examples’ manifest and the test manifest load', async () => {
    for (const file of [EXAMPLES_MANIFEST, MANIFEST]) await gatewayWith(file).close();
  });

  it('a key that is not the SHA-256 of its document', () => {
    const wrong = sha256Hex(ARBITRARY);
    expect(startUpError(JSON.stringify({ [wrong]: ENDPOINTS }))).toBe(
      `entry "${wrong.slice(0, 12)}…": the SHA-256 of its document is ${sha256Hex(ENDPOINTS)}, not its key`,
    );
    // The hash is of the exact text: normalising whitespace changes it.
    expect(startUpError(JSON.stringify({ [sha256Hex(ENDPOINTS)]: `${ENDPOINTS}\n` }))).toMatch(/the SHA-256 of its document is/);
    expect(startUpError(JSON.stringify({ ListTokens: ENDPOINTS }))).toBe('entry "ListTokens": the key is not a SHA-256 hex digest');
  });

  it('a document that does not parse, or does not validate against the schema', () => {
    expect(startUpError(manifestOf('query { iamEndpoints { name }'))).toMatch(/: the document does not parse: Syntax Error: Expected Name, found <EOF>\.$/);
    expect(startUpError(manifestOf('{ iamEndpoint { name } }'))).toMatch(/: the document does not validate: Cannot query field "iamEndpoint" on type "Query"\. Did you mean "iamEndpoints"\?$/);
    expect(startUpError(manifestOf('query Q($x: Nope) { iamEndpoints { name } }'))).toMatch(/does not validate: Unknown type "Nope"/);
    expect(startUpError(JSON.stringify({ [sha256Hex('1')]: 1 }))).toMatch(/the document is not a string$/);
  });

  it('every problem counted, the first one named', () => {
    expect(startUpError(manifestOf('{ a }', '{ b }', ENDPOINTS, '{ c }'))).toMatch(/Cannot query field "a" .* \(and 2 more problems\)$/);
  });

  it('a file that is not JSON, not an object, or not there', () => {
    expect(startUpError('{ "abc": ')).toMatch(/^not JSON \(.+\)$/);
    expect(startUpError('["query { iamEndpoints { name } }"]')).toBe('must be a JSON object { "<sha256 hex of the document>": "<document>" }');
    const missing = join(dir, 'missing.json');
    expect(() => gatewayWith(missing)).toThrow(`PERSISTED_OPERATIONS_FILE: ${missing}: cannot be read (ENOENT)`);
  });

  it('loadConfig: a mode needs a file, and the modes are off, allow and only', () => {
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig(env);
        return [];
      } catch (e) {
        if (e instanceof ConfigError) return e.problems;
        throw e;
      }
    };
    expect(problems({ PERSISTED_OPERATIONS: 'only' })).toEqual(['PERSISTED_OPERATIONS_FILE: required when PERSISTED_OPERATIONS=only']);
    expect(problems({ PERSISTED_OPERATIONS: 'allow' })).toEqual(['PERSISTED_OPERATIONS_FILE: required when PERSISTED_OPERATIONS=allow']);
    expect(problems({ PERSISTED_OPERATIONS: 'strict' })).toEqual([expect.stringMatching(/^PERSISTED_OPERATIONS: .*"off"\|"allow"\|"only"/)]);
    expect(problems({ PERSISTED_OPERATIONS: 'only', PERSISTED_OPERATIONS_FILE: MANIFEST })).toEqual([]);
  });

  it('npm start: a bad manifest → exit 2 with one line on stderr, before listening', async () => {
    const file = manifestFile('start.json', JSON.stringify({ [sha256Hex(ARBITRARY)]: ENDPOINTS }));
    const r = start({ PORT: '0', PERSISTED_OPERATIONS: 'only', PERSISTED_OPERATIONS_FILE: file });
    expect(await within(20_000, 'exit', r.exited)).toEqual({ code: 2, signal: null });
    expect(r.stderr().trim().split('\n')).toEqual([`token-gateway: PERSISTED_OPERATIONS_FILE: ${file}: entry "${sha256Hex(ARBITRARY).slice(0, 12)}…": the SHA-256 of its document is ${sha256Hex(ENDPOINTS)}, not its key`]);
    expect(r.stdout()).not.toMatch(/listening/);
  });
});

describe('pre-compiled trusted documents', () => {
  const compile = vi.mocked(compileQuery);
  beforeEach(() => {
    compile.mockClear();
  });

  it('are compiled by createGateway; their requests compile nothing, unlike a new query', async () => {
    const stack = await startStack(persisted('only'));
    try {
      // One compilation per operation name, and one without a name (each has one operation).
      expect(compile).toHaveBeenCalledTimes(2 * Object.keys(JSON.parse(readFileSync(MANIFEST, 'utf8'))).length);
      compile.mockClear();
      listed(await post(stack, { extensions: extensions(LIST_TOKENS), variables: LIST_VARIABLES }));
      listed(await post(stack, { extensions: extensions(LIST_TOKENS), variables: LIST_VARIABLES, operationName: 'ListTokens' }));
      expect(compile).not.toHaveBeenCalled();
    } finally {
      await stack.close();
    }
    const allow = await startStack(persisted('allow'));
    try {
      compile.mockClear();
      await post(allow, { query: ARBITRARY });
      await post(allow, { query: ARBITRARY });
      expect(compile).toHaveBeenCalledTimes(1);
    } finally {
      await allow.close();
    }
  });
});

describe('the examples’ manifest (examples/persisted-operations.json)', () => {
  it('is what `npm run examples:persisted` generates from examples/ (gql.tada generate persisted)', { timeout: 120_000 }, async () => {
    expect(readFileSync(EXAMPLES_MANIFEST, 'utf8'), 'examples/persisted-operations.json is out of date: run `npm run examples:persisted`').toBe(
      await generateExamplesManifest(),
    );
  });

  it('lists exactly the client’s documents, keyed by the SHA-256 of the text the client sends', () => {
    expect(Object.keys(EXAMPLES).sort()).toEqual(persistedDocuments.map((d) => documentHash(d)).sort());
    for (const [hash, text] of Object.entries(EXAMPLES)) expect(sha256Hex(text)).toBe(hash);
  });

  it('examples/client.ts with PERSISTED=1 runs against PERSISTED_OPERATIONS=only; without it, it is refused', async () => {
    const gw = await startHttpGateway(() => ({ persistedOperations: { mode: 'only', file: EXAMPLES_MANIFEST } }));
    try {
      const result = await main({ ...optionsFromEnv({ GATEWAY_URL: gw.url, PERSISTED: '1' }), pageSize: 10 }, () => {});
      expect(result).toMatchObject({ iamUser: 'demo-user', totalCount: 25, pages: 3 });
      const err = await main(optionsFromEnv({ GATEWAY_URL: gw.url }), () => {}).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GatewayRequestError);
      expect((err as GatewayRequestError).errors[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'PERSISTED_ONLY' });
      expect((err as GatewayRequestError).status).toBe(400);
    } finally {
      await gw.close();
    }
  });
});
