// The GraphiQL page the gateway serves, and its files (no browser here: see test/browser/ for that).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildClientSchema, parse, printSchema, validate } from 'graphql';
import { createHash } from 'node:crypto';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { schema } from '../src/schema/index.ts';
import {
  GRAPHIQL_ASSETS_PATH,
  PLACEHOLDER_EXAMPLE_VALUES,
  chooseEncoding,
  exampleDocument,
  graphiqlOptions,
} from '../src/graphiql.ts';
import { dirAssets, memoryAsset, writeAssetDir } from '../src/graphiql/assets.ts';
import { DEMO_EXAMPLE_VALUES, graphiqlDemo } from '../src/emulator/demo-examples.ts';
import { DEMO_ACCESS_TOKENS, DEMO_IAM_FEDERATED, DEMO_IAM_USERS } from '../src/emulator/fixtures.ts';
import { authenticator } from 'otplib';
import { FULL, startStack, type Stack } from './helpers.ts';
import type { GatewayConfig } from '../src/config.ts';

const OPERATIONS = ['ListTokens', 'MintJwt', 'ObtainStsCredentials', 'SignIn', 'SignInWithTotp', 'RescopeFederatedToken', 'LeaseCredential'];
/** Answered once over plain HTTP (the subscription streams over SSE: tested on its own). */
const REQUEST_RESPONSE = OPERATIONS.filter((o) => o !== 'LeaseCredential');

/** Every demo secret, none of which may be in a production page. */
const DEMO_SECRETS = [
  'demo-idaas-access-token',
  ...Object.values(DEMO_ACCESS_TOKENS).map((t) => t.token),
  DEMO_IAM_USERS.password.password,
  DEMO_IAM_USERS.mfa.password,
  DEMO_IAM_USERS.mfa.totpSecret,
  DEMO_IAM_FEDERATED.token,
];

async function getPage(stack: Stack) {
  const res = await stack.gateway.fetch('http://gateway.test/graphql', { headers: { accept: 'text/html' } });
  return { res, html: await res.text() };
}

/** Every file the page refers to (scripts, stylesheet, icon, Monaco's worker URLs). */
function referencedAssets(html: string): string[] {
  const urls = [...html.matchAll(/(?:src|href)="([^"]+)"|"(\/graphql\/assets\/[^"]+)"/g)].map((m) => (m[1] ?? m[2])!);
  return [...new Set(urls)];
}

const getAsset = (stack: Stack, path: string, headers: Record<string, string> = {}) =>
  stack.gateway.fetch(`http://gateway.test${path}`, { headers });

const IMMUTABLE = 'public, max-age=31536000, immutable';
const decode = (body: Buffer, encoding: string | null) =>
  encoding === 'br' ? brotliDecompressSync(body) : encoding === 'gzip' ? gunzipSync(body) : body;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('GraphiQL page', () => {
  const stacks: Stack[] = [];
  const start = async (overrides: Partial<GatewayConfig>) => {
    const s = await startStack(() => overrides);
    stacks.push(s);
    return s;
  };
  afterAll(async () => {
    await Promise.all(stacks.map((s) => s.close()));
  });

  test('demo mode: self-contained page with the example operations and the demo header', async () => {
    const stack = await start({ graphiqlDemo: graphiqlDemo() });
    const { res, html } = await getPage(stack);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('cache-control')).toBe('no-store'); // it carries the demo header
    expect(html).toContain('YogaGraphiQL.renderYogaGraphiQL');
    // Small: GraphiQL itself is in separate files, all served by the gateway (no CDN).
    expect(Buffer.byteLength(html)).toBeLessThan(50_000);
    const assets = referencedAssets(html);
    expect(assets.length).toBeGreaterThanOrEqual(7); // script, stylesheet, icon, schema, 3 workers
    for (const a of assets) expect(a.startsWith(GRAPHIQL_ASSETS_PATH)).toBe(true);
    expect(html).not.toContain('unpkg.com');
    for (const op of OPERATIONS) expect(html).toContain(op);
    expect(html).toContain(DEMO_EXAMPLE_VALUES.instanceId);
    expect(html).toContain(`Bearer ${DEMO_ACCESS_TOKENS.full.token}`);
    // Rendered once, then reused.
    expect((await getPage(stack)).html).toBe(html);
  });

  test('production mode (graphiqlDemo false): placeholders, no demo secret anywhere in the page', async () => {
    const stack = await start({ graphiqlDemo: undefined });
    const { res, html } = await getPage(stack);
    expect(res.status).toBe(200);
    for (const op of OPERATIONS) expect(html).toContain(op);
    expect(html).toContain(PLACEHOLDER_EXAMPLE_VALUES.instanceId);
    for (const secret of DEMO_SECRETS) expect(html).not.toContain(secret);
  });

  test('broker demo: the demo caller’s JWT in the Headers tab instead of the access token, and the header comment says so', () => {
    const options = graphiqlOptions({ graphiql: true, graphiqlDemo: graphiqlDemo('eyJhbGciOiJSUzI1NiJ9.e30.c2ln') }).graphiql as {
      headers: string;
      defaultQuery: string;
    };
    expect(JSON.parse(options.headers)).toEqual({ Authorization: 'Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln' });
    expect(options.defaultQuery).toContain('broker mode');
    expect(JSON.stringify(options)).not.toContain(DEMO_ACCESS_TOKENS.full.token);
  });

  test('GRAPHIQL=off: GET /graphql with Accept: text/html does not serve GraphiQL, nor its files', async () => {
    const on = await start({ graphiqlDemo: undefined });
    const script = referencedAssets((await getPage(on)).html).find((a) => a.endsWith('.js'))!;
    const stack = await start({ graphiql: false, graphiqlDemo: graphiqlDemo() });
    const { res, html } = await getPage(stack);
    expect(res.headers.get('content-type') ?? '').not.toMatch(/text\/html/);
    expect(html).not.toContain('GraphiQL');
    expect(html).not.toContain('demo-idaas-access-token');
    expect(graphiqlOptions({ graphiql: false, graphiqlDemo: graphiqlDemo() })).toEqual({ graphiql: false });
    expect((await getAsset(stack, script)).status).toBe(404);
  });
});

describe('GraphiQL files', () => {
  let stack: Stack;
  let html: string;
  beforeAll(async () => {
    stack = await startStack(() => ({ graphiqlDemo: graphiqlDemo() }));
    html = (await getPage(stack)).html;
  });
  afterAll(async () => stack.close());

  test('every file the page refers to: immutable for a year, its type, named after its content, br or gzip when accepted', async () => {
    const types: Record<string, RegExp> = { js: /^text\/javascript/, css: /^text\/css/, ico: /^image\/x-icon$/ };
    const assets = referencedAssets(html);
    expect(assets.map((a) => a.replace(/\.[0-9a-f]{16}\./, '.*.')).sort()).toEqual(
      [
        '/graphql/assets/editor.worker.*.js',
        '/graphql/assets/favicon.*.ico',
        '/graphql/assets/graphiql.*.css',
        '/graphql/assets/graphiql.*.js',
        '/graphql/assets/graphql.worker.*.js',
        '/graphql/assets/json.worker.*.js',
        '/graphql/assets/schema.*.js',
      ].sort(),
    );
    for (const path of assets) {
      const hash = /\.([0-9a-f]{16})\.[a-z]+$/.exec(path)![1]!;
      const ext = path.slice(path.lastIndexOf('.') + 1);
      let identity: Buffer | undefined;
      for (const [accept, encoding] of [
        ['gzip, deflate, br, zstd', 'br'],
        ['gzip, deflate', 'gzip'],
        ['br;q=0, gzip;q=0.5', 'gzip'],
        ['identity', null],
        ['', null],
      ] as const) {
        const res = await getAsset(stack, path, accept ? { 'accept-encoding': accept } : {});
        expect(res.status, `${path} (${accept})`).toBe(200);
        expect(res.headers.get('cache-control')).toBe(IMMUTABLE);
        expect(res.headers.get('content-type')).toMatch(types[ext]!);
        expect(res.headers.get('vary')).toMatch(/accept-encoding/i);
        expect(res.headers.get('content-encoding')).toBe(encoding);
        const body = Buffer.from(await res.arrayBuffer());
        expect(Number(res.headers.get('content-length'))).toBe(body.length);
        const content = decode(body, encoding);
        if (encoding) expect(body.length).toBeLessThan(content.length);
        identity ??= content;
        expect(content.equals(identity)).toBe(true);
        expect(sha256(content).startsWith(hash)).toBe(true); // the name carries a hash of the content
      }
    }
  });

  test('the schema file is the schema (GraphiQL sends no introspection query)', async () => {
    const path = referencedAssets(html).find((a) => a.includes('/schema.'))!;
    const text = await (await getAsset(stack, path)).text();
    const json = /^self\.TOKEN_GATEWAY_SCHEMA=(.*);\n$/s.exec(text)![1]!;
    expect(printSchema(buildClientSchema(JSON.parse(json)))).toBe(printSchema(schema));
  });

  test('If-None-Match with the ETag: 304; HEAD: headers only', async () => {
    const path = referencedAssets(html).find((a) => a.endsWith('.css'))!;
    const first = await getAsset(stack, path, { 'accept-encoding': 'gzip' });
    const etag = first.headers.get('etag')!;
    expect(etag).toMatch(/^W\/"[0-9a-f]{64}"$/);
    const again = await getAsset(stack, path, { 'accept-encoding': 'gzip', 'if-none-match': etag });
    expect(again.status).toBe(304);
    expect(again.headers.get('cache-control')).toBe(IMMUTABLE);
    const head = await stack.gateway.fetch(`http://gateway.test${path}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-type')).toMatch(/^text\/css/);
    expect(await head.text()).toBe('');
  });

  test('unknown names, other hashes and paths outside the files: 404', async () => {
    const script = referencedAssets(html).find((a) => a.includes('/graphiql.') && a.endsWith('.js'))!;
    for (const path of [
      `${GRAPHIQL_ASSETS_PATH}nope.js`,
      script.replace(/\.[0-9a-f]{16}\./, '.0000000000000000.'),
      `${script}.br`,
      `${GRAPHIQL_ASSETS_PATH}manifest.json`,
      `${GRAPHIQL_ASSETS_PATH}`,
      '/graphql/assets',
    ]) {
      const res = await getAsset(stack, path, { 'accept-encoding': 'br' });
      expect(res.status, path).toBe(404);
      expect(res.headers.get('cache-control')).toBe('no-store');
    }
  });

  test('GraphQL answers stay no-store', async () => {
    const res = await stack.gateway.fetch('http://gateway.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'accept-encoding': 'br, gzip' },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toEqual({ data: { __typename: 'Query' } });
  });

  test('introspection off: no schema file (GraphiQL would introspect, and be refused, as before)', async () => {
    const off = await startStack(() => ({ introspection: false, graphiqlDemo: undefined }));
    try {
      const page = (await getPage(off)).html;
      expect(referencedAssets(page).some((a) => a.includes('/schema.'))).toBe(false);
      expect(page).not.toContain('TOKEN_GATEWAY_SCHEMA');
      const schemaPath = referencedAssets(html).find((a) => a.includes('/schema.'))!;
      expect((await getAsset(off, schemaPath)).status).toBe(404);
    } finally {
      await off.close();
    }
  });

  test('the build’s directory (npm run build: dist/graphiql-assets/) serves the same files, precompressed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'graphiql-assets-'));
    try {
      const script = memoryAsset('graphiql', 'js', 'console.log("GraphiQL");\n'.repeat(200));
      const stylesheet = memoryAsset('graphiql', 'css', '.graphiql { color: red }\n'.repeat(200));
      const names = { script: script.name, stylesheet: stylesheet.name, favicon: '', workers: { editorWorkerService: '', json: '', graphql: '' } };
      await writeAssetDir(dir, async () => ({ names, assets: [script, stylesheet] }));
      expect((await readdir(dir)).sort()).toEqual(
        ['manifest.json', ...[script.name, stylesheet.name].flatMap((n) => [n, `${n}.br`, `${n}.gz`])].sort(),
      );
      const built = await dirAssets(dir);
      expect(built.names).toEqual(names);
      expect(built.get('manifest.json')).toBeUndefined();
      const read = built.get(script.name)!;
      expect(read).toMatchObject({ name: script.name, type: 'text/javascript; charset=utf-8', sha256: script.sha256 });
      const identity = Buffer.from(await read.body());
      expect(identity.equals(Buffer.from(await script.body()))).toBe(true);
      expect(brotliDecompressSync(await read.body('br')).equals(identity)).toBe(true);
      expect(gunzipSync(await read.body('gzip')).equals(identity)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('Accept-Encoding', () => {
    expect(chooseEncoding(null)).toBeUndefined();
    expect(chooseEncoding('gzip, deflate, br, zstd')).toBe('br');
    expect(chooseEncoding('gzip')).toBe('gzip');
    expect(chooseEncoding('x-gzip')).toBe('gzip');
    expect(chooseEncoding('br;q=0, gzip')).toBe('gzip');
    expect(chooseEncoding('*')).toBe('br');
    expect(chooseEncoding('*, br;q=0')).toBe('gzip');
    expect(chooseEncoding('*;q=0')).toBeUndefined();
    expect(chooseEncoding('deflate, identity')).toBeUndefined();
  });
});

describe('example operations', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => stack.close());

  test.each([true, false])('the document (demo %s) is valid against the schema', (demo) => {
    const doc = parse(exampleDocument(demo ? DEMO_EXAMPLE_VALUES : PLACEHOLDER_EXAMPLE_VALUES, demo));
    expect(validate(schema, doc)).toEqual([]);
    expect(doc.definitions.map((d) => ('name' in d ? d.name?.value : undefined))).toEqual(OPERATIONS);
  });

  test('LeaseCredential streams its first credential over SSE with the demo values', async () => {
    const stop = new AbortController();
    const res = await stack.gateway.fetch('http://gateway.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...FULL },
      body: JSON.stringify({ query: exampleDocument(DEMO_EXAMPLE_VALUES, true), operationName: 'LeaseCredential' }),
      signal: stop.signal,
    });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (!/event: next\ndata: .*\n/.test(text)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    stop.abort();
    await reader.cancel().catch(() => {});
    const event = JSON.parse(/event: next\ndata: (.*)\n/.exec(text)![1]!) as { data: any; errors?: unknown };
    expect(event.errors).toBeUndefined();
    expect(event.data.cloudAccountRoleCredentialLease.sequence).toBe(1);
    expect(event.data.cloudAccountRoleCredentialLease.accessCredential.alibabaCloudStsToken.accessKeyId).toEqual(expect.any(String));
  });

  test.each(REQUEST_RESPONSE)('%s succeeds on the emulator with the demo values', async (operationName) => {
    const res = await stack.gateway.fetch('http://gateway.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...FULL },
      body: JSON.stringify({
        query: exampleDocument(DEMO_EXAMPLE_VALUES, true),
        operationName,
        variables: { after: null, passcode: authenticator.generate(DEMO_IAM_USERS.mfa.totpSecret) },
      }),
    });
    const body = (await res.json()) as { data?: Record<string, unknown>; errors?: unknown };
    expect(body.errors).toBeUndefined();
    expect(Object.values(body.data ?? {}).every((v) => v !== null)).toBe(true);
  });
});
