// The gateway's own limits, each tried and refused the way a client sees it: document limits
// (depth, aliases, tokens, directives, cost), body size, batching, GET mutations, CSRF, CORS,
// introspection, the per-client rate limit, and the headers every answer carries.
import { request } from 'node:http';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { GatewayConfig } from '../../src/config.ts';
import { DEMO_ACCESS_TOKENS } from '../../src/emulator/fixtures.ts';
import { FULL, movableClock, startStack, type GqlResult, type Stack } from '../helpers.ts';
import { CONTRACT_CODES, IAM_ROUTE, JWT_ROUTE, LIST_ROUTE, SMALL, TOKENS, calls } from './support.ts';
import { listen, type Listening } from '../http-gateway.ts';

const READ_ONLY = { authorization: `Bearer ${DEMO_ACCESS_TOKENS.readOnly.token}` };
const JSON_HEADERS = { 'content-type': 'application/json', accept: 'application/graphql-response+json' };

/** Nested inline fragments on Query: each level counts as one more level of depth. */
const nested = (levels: number) => `{ ${'... on Query { '.repeat(levels)}__typename${' }'.repeat(levels)} }`;
const aliased = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: iamEndpoints { name }`).join(' ')} }`;
const directives = (n: number) => `{ ${'__typename @include(if: true) '.repeat(n)}}`;
const manyTokens = (n: number) => `{ ${'__typename '.repeat(n - 2)}}`;

function refused(r: GqlResult<any>, message: RegExp) {
  expect(r.errors, JSON.stringify(r.data)).toHaveLength(1);
  const err = r.errors![0]!;
  expect(err.extensions.code).toBe('BAD_USER_INPUT');
  expect(err.message).toMatch(message);
  expect(r.data ?? null).toBeNull();
  return err;
}

function accepted(r: GqlResult<any>) {
  expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
  expect(r.status).toBe(200);
}

async function bodyOf(res: Response): Promise<{ data?: unknown; errors?: { message: string; extensions: Record<string, any> }[] }> {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`not JSON (HTTP ${res.status}): ${text.slice(0, 200)}`);
  }
}

/** The one error of a GraphQL-shaped refusal, with a contract code. */
async function refusal(res: Response, code: (typeof CONTRACT_CODES)[number] = 'BAD_USER_INPUT') {
  const body = await bodyOf(res);
  expect(body.errors, JSON.stringify(body)).toHaveLength(1);
  expect(body.errors![0]!.extensions.code).toBe(code);
  expect(body.data ?? null).toBeNull();
  return body.errors![0]!;
}

// ------------------------------------------------------------------ document limits

/** The listing with `first: 20` written in the document (armor only counts literal arguments). */
const TOKENS_FIRST_20 = TOKENS.replace(', $first: Int', '').replace('first: $first', 'first: 20');

describe('document limits (graphql-armor)', () => {
  let stack: Stack;
  let lowCost: Stack;
  beforeAll(async () => {
    stack = await startStack();
    lowCost = await startStack((c) => ({ limits: { ...c.limits, maxCost: 50 } }));
  });
  afterAll(async () => {
    await stack.close();
    await lowCost.close();
  });
  beforeEach(() => {
    stack.emulator.reset();
    lowCost.emulator.reset();
  });

  it('depth: 12 levels (MAX_DEPTH) pass, 13 are refused with BAD_USER_INPUT naming the limit', async () => {
    accepted(await stack.gql(nested(11)));
    refused(await stack.gql(nested(12)), /depth limit of 12/i);
  });

  it('depth: a lowered limit (maxDepth 3) refuses an ordinary listing query, before any upstream call', async () => {
    const low = await startStack((c) => ({ limits: { ...c.limits, maxDepth: 3 } }));
    try {
      refused(await low.gql(TOKENS, { consumerId: SMALL }), /depth limit of 3/i);
      expect(calls(low, LIST_ROUTE)).toBe(0);
    } finally {
      await low.close();
    }
  });

  it('aliases: 15 pass, 16 are refused', async () => {
    accepted(await stack.gql(aliased(15)));
    refused(await stack.gql(aliased(16)), /aliases limit of 15/i);
  });

  it('tokens: a document of 300 tokens passes, one of more than 2000 (MAX_TOKENS) is refused', async () => {
    accepted(await stack.gql(manyTokens(300)));
    refused(await stack.gql(manyTokens(2100)), /token limit of 2000/i);
  });

  it('directives: 20 pass, 21 are refused', async () => {
    accepted(await stack.gql(directives(20)));
    refused(await stack.gql(directives(21)), /directives limit of 20/i);
  });

  it('cost: with maxCost 50 an ordinary listing of 20 tokens is refused and the upstream is not called', async () => {
    refused(await lowCost.gql(TOKENS_FIRST_20, { consumerId: SMALL }), /cost limit of 50/i);
    expect(calls(lowCost, LIST_ROUTE)).toBe(0);
    accepted(await lowCost.gql('{ iamEndpoints { name } }'));
  });

  // GraphQL over HTTP (application/graphql-response+json): a response without `data` MUST be
  // 4xx/5xx. The gateway answers other invalid documents (unknown field, token limit) with 400.
  it.each([
    ['depth', nested(12), false],
    ['aliases', aliased(16), false],
    ['tokens', manyTokens(2100), false],
    ['directives', directives(21), false],
    ['cost', TOKENS_FIRST_20, true],
  ])('a document refused for its %s answers HTTP 400, like any other invalid document', async (_limit, doc, cheap) => {
    const r = await (cheap ? lowCost : stack).gql(doc, { consumerId: SMALL });
    expect(r.errors?.[0]?.extensions.code).toBe('BAD_USER_INPUT');
    expect(r.status).toBe(400);
  });
});

// ------------------------------------------------------------------ HTTP-level limits

describe('HTTP limits', () => {
  let stack: Stack;
  let http: Listening;
  beforeAll(async () => {
    stack = await startStack();
    http = await listen(stack.gateway);
  });
  afterAll(async () => {
    await http.close();
    await stack.close();
  });
  beforeEach(() => stack.emulator.reset());

  const max = () => stack.gateway.services.config.limits.maxBodyBytes;
  const bigBody = () => JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(max()) } });

  it('a body larger than MAX_BODY_BYTES with a Content-Length → 413 with a GraphQL-shaped error', async () => {
    const body = bigBody();
    const res = await stack.gateway.fetch('http://gateway.test/graphql', {
      method: 'POST',
      headers: { ...JSON_HEADERS, 'content-length': String(Buffer.byteLength(body)) },
      body,
    });
    expect(res.status).toBe(413);
    expect(res.headers.get('content-type')).toMatch(/json/);
    const err = await refusal(res);
    expect(err.message).toMatch(new RegExp(`larger than ${max()} bytes`));
    expect(err.extensions.maxBodyBytes).toBe(max());
  });

  /** A POST over a real socket, the body written in chunks without a Content-Length. */
  function postChunked(chunks: string[]): Promise<{ status: number; headers: Record<string, unknown>; body: any }> {
    return new Promise((resolve, reject) => {
      const url = new URL(http.url);
      const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json', ...FULL } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: JSON.parse(text) }));
      });
      req.on('error', reject);
      req.setTimeout(10_000, () => req.destroy(new Error('no answer in 10 s')));
      for (const c of chunks) req.write(c);
      req.end();
    });
  }

  it('a chunked body (no Content-Length) over the limit → 413 with a GraphQL-shaped error, over a real socket', async () => {
    const pieces = ['{"query":"{ __typename }","variables":{"pad":"', ...Array.from({ length: 30 }, () => 'x'.repeat(5_000)), '"}}'];
    const r = await postChunked(pieces);
    expect(r.status).toBe(413);
    expect(r.headers['transfer-encoding']).toBe('chunked');
    expect(r.body.errors).toHaveLength(1);
    expect(r.body.errors[0].extensions.code).toBe('BAD_USER_INPUT');
    expect(r.body.errors[0].message).toMatch(/larger than/);
  });

  it('a chunked body under the limit is read and answered normally', async () => {
    const doc = JSON.stringify({ query: TOKENS, variables: { consumerId: SMALL } });
    const r = await postChunked([doc.slice(0, 50), doc.slice(50, 200), doc.slice(200)]);
    expect(r.status).toBe(200);
    expect(r.body.errors).toBeUndefined();
    expect(r.body.data.instance.authenticationTokens.totalCount).toBe(3);
  });

  it('batching is off by default: a JSON array is refused (4xx) and reaches no upstream', async () => {
    const res = await stack.gateway.fetch('http://gateway.test/graphql', {
      method: 'POST',
      headers: { ...JSON_HEADERS, ...FULL },
      body: JSON.stringify([{ query: TOKENS, variables: { consumerId: SMALL } }, { query: TOKENS, variables: { consumerId: SMALL } }]),
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect((await refusal(res)).message).toMatch(/batching/i);
    expect(calls(stack, LIST_ROUTE)).toBe(0);
  });

  it('a mutation over GET is refused with 405 (Allow: POST) and mints nothing', async () => {
    const mutation = 'mutation { obtainJwtAuthenticationToken(input: { instanceId: "i", consumerId: "c", authenticationTokenId: "t" }) { jwt { value } } }';
    const res = await stack.gateway.fetch(`http://gateway.test/graphql?query=${encodeURIComponent(mutation)}`, {
      headers: { 'x-graphql-yoga-csrf': '1', accept: 'application/graphql-response+json', ...FULL },
    });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
    expect((await refusal(res)).message).toMatch(/POST/);
    expect(calls(stack, JWT_ROUTE)).toBe(0);
  });
});

describe('batching on (limit 2)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack((c) => ({ limits: { ...c.limits, batchingLimit: 2 } }));
  });
  afterAll(async () => {
    await stack.close();
  });

  const batch = (n: number) =>
    stack.gateway.fetch('http://gateway.test/graphql', {
      method: 'POST',
      headers: { ...JSON_HEADERS, ...FULL },
      body: JSON.stringify(Array.from({ length: n }, () => ({ query: TOKENS, variables: { consumerId: SMALL } }))),
    });

  it('accepts a batch of 2 and answers both', async () => {
    const res = await batch(2);
    expect(res.status).toBe(200);
    const body = (await res.json()) as any[];
    expect(body).toHaveLength(2);
    for (const r of body) expect(r.data.instance.authenticationTokens.totalCount).toBe(3);
  });

  it('refuses a batch of 3 (4xx) without calling the upstream', async () => {
    stack.emulator.reset();
    const res = await batch(3);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect((await refusal(res)).message).toMatch(/limited to 2/);
    expect(calls(stack, LIST_ROUTE)).toBe(0);
  });
});

// ------------------------------------------------------------------ CSRF and CORS

describe('CSRF prevention', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack.close();
  });

  const get = (headers: Record<string, string> = {}) =>
    stack.gateway.fetch(`http://gateway.test/graphql?query=${encodeURIComponent('{ __typename }')}`, { headers });

  it('a GET without a preflight-forcing header is refused with 403', async () => {
    const res = await get();
    expect(res.status).toBe(403);
    expect((await refusal(res)).message).toMatch(/CSRF/);
  });

  it('the same GET with x-graphql-yoga-csrf works', async () => {
    const res = await get({ 'x-graphql-yoga-csrf': '1' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ data: { __typename: 'Query' } });
  });

  it('a JSON POST (which a browser must preflight) needs no extra header', async () => {
    accepted(await stack.gql('{ __typename }', {}, {}));
  });

  // What an HTML form on another site can send without a preflight: a "simple" content type.
  // Such a form could, from every visitor's browser, spend a user's sign-in attempts (and get
  // them locked) without ever reading an answer.
  const signIn = {
    query: 'mutation($input: CreateIamTokenInput!) { createIamToken(input: $input) { value } }',
    variables: JSON.stringify({ input: { password: { userName: 'demo-user', domainName: 'demo-domain', password: 'guess' } } }),
  };
  it.each([
    ['application/x-www-form-urlencoded', new URLSearchParams(signIn).toString()],
    ['text/plain', JSON.stringify({ query: signIn.query, variables: JSON.parse(signIn.variables) })],
  ])('a cross-site form POST (%s, no CSRF header) is refused and reaches no upstream', async (contentType, body) => {
    stack.emulator.reset();
    const res = await stack.gateway.fetch('http://gateway.test/graphql', {
      method: 'POST',
      headers: { 'content-type': contentType, origin: 'https://evil.example' },
      body,
    });
    expect(calls(stack, IAM_ROUTE)).toBe(0);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
  });

  it('a multipart POST (GraphQL file uploads, which this schema has none of) is refused even with the CSRF header, and reaches no upstream', async () => {
    stack.emulator.reset();
    const form = new FormData();
    form.set('operations', JSON.stringify({ query: signIn.query, variables: JSON.parse(signIn.variables) }));
    form.set('map', '{}');
    const res = await stack.gateway.fetch('http://gateway.test/graphql', {
      method: 'POST',
      headers: { 'x-graphql-yoga-csrf': '1' },
      body: form,
    });
    expect(calls(stack, IAM_ROUTE)).toBe(0);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(await res.text()).not.toContain('createIamToken');
  });
});

describe('CORS', () => {
  let open: Stack;
  let allowlisted: Stack;
  beforeAll(async () => {
    open = await startStack();
    allowlisted = await startStack(() => ({ corsOrigins: ['https://app.example'] }));
  });
  afterAll(async () => {
    await open.close();
    await allowlisted.close();
  });

  const preflight = (stack: Stack, origin: string) =>
    stack.gateway.fetch('http://gateway.test/graphql', {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,authorization' },
    });

  it('an allowlisted origin gets its origin echoed in Access-Control-Allow-Origin', async () => {
    const res = await preflight(allowlisted, 'https://app.example');
    expect(res.status).toBeLessThan(300);
    expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(res.headers.get('access-control-allow-methods')).toMatch(/POST/);
  });

  // A browser only lets the page read the answer when the header names the page's own origin
  // (or is `*`); that is what must never happen for an origin outside the allowlist.
  it('another origin is not allowed (preflight and actual request)', async () => {
    const pre = await preflight(allowlisted, 'https://evil.example');
    expect([null, 'null', 'https://app.example']).toContain(pre.headers.get('access-control-allow-origin'));
    const res = await allowlisted.gateway.fetch('http://gateway.test/graphql', {
      method: 'POST',
      headers: { ...JSON_HEADERS, origin: 'https://evil.example' },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    expect([null, 'null', 'https://app.example']).toContain(res.headers.get('access-control-allow-origin'));
  });

  it('with two allowlisted origins, each gets itself echoed and a third gets no grant', async () => {
    const two = await startStack(() => ({ corsOrigins: ['https://app.example', 'https://admin.example'] }));
    try {
      expect((await preflight(two, 'https://admin.example')).headers.get('access-control-allow-origin')).toBe('https://admin.example');
      expect((await preflight(two, 'https://app.example')).headers.get('access-control-allow-origin')).toBe('https://app.example');
      expect([null, 'null']).toContain((await preflight(two, 'https://evil.example')).headers.get('access-control-allow-origin'));
    } finally {
      await two.close();
    }
  });

  it('with the default (empty) allowlist no origin gets Access-Control-Allow-Origin', async () => {
    for (const origin of ['https://app.example', 'https://evil.example']) {
      const pre = await preflight(open, origin);
      expect(pre.headers.get('access-control-allow-origin')).toBeNull();
      const res = await open.gateway.fetch('http://gateway.test/graphql', {
        method: 'POST',
        headers: { ...JSON_HEADERS, origin },
        body: JSON.stringify({ query: '{ __typename }' }),
      });
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
    }
  });
});

// ------------------------------------------------------------------ introspection

describe('introspection', () => {
  it('is on by default: __schema answers and a typo gets a "Did you mean" suggestion', async () => {
    const stack = await startStack();
    try {
      const r = await stack.gql('{ __schema { queryType { name } } }');
      accepted(r);
      expect(r.data.__schema.queryType.name).toBe('Query');
      expect((await stack.gql('{ instanc(instanceId: "x") { id } }')).errors?.[0]?.message).toMatch(/Did you mean/);
    } finally {
      await stack.close();
    }
  });

  it('with introspection false: __schema and __type are refused and no error message suggests field names', async () => {
    const stack = await startStack(() => ({ introspection: false }));
    try {
      for (const doc of ['{ __schema { queryType { name } } }', '{ __type(name: "Query") { fields { name } } }']) {
        const r = await stack.gql(doc);
        expect(r.errors?.length).toBeGreaterThan(0);
        expect(r.errors![0]!.extensions.code).toBe('BAD_USER_INPUT');
        expect(r.errors![0]!.message).toMatch(/introspection/i);
        expect(r.data ?? null).toBeNull();
      }
      for (const doc of [
        '{ instanc(instanceId: "x") { id } }',
        '{ instance(instanceId: "x") { instanceI } }',
        'mutation { createIamTokn(input: {}) { value } }',
        '{ instance(instanceId: "x") { authenticationTokens(consumerI: "a", credentialProviderIdentifier: "b") { totalCount } } }',
      ]) {
        const r = await stack.gql(doc);
        expect(r.errors?.length).toBeGreaterThan(0);
        for (const e of r.errors!) {
          expect(e.extensions.code).toBe('BAD_USER_INPUT');
          expect(e.message).not.toMatch(/did you mean/i);
        }
      }
      accepted(await stack.gql('{ __typename iamEndpoints { name } }'));
    } finally {
      await stack.close();
    }
  });
});

// ------------------------------------------------------------------ rate limit

// The buckets' refill, caps and keys on their own: test/http/rate-limit.test.ts.
describe('per-client rate limit (60 a minute, bursts of 3)', () => {
  const limited = (c: GatewayConfig): Partial<GatewayConfig> => ({ rateLimit: { ...c.rateLimit, perMinute: 60, burst: 3 } });
  let stack: Stack;
  let clock: ReturnType<typeof movableClock>;
  beforeEach(async () => {
    clock = movableClock();
    stack = await startStack(limited);
  });
  afterEach(async () => {
    await stack.close();
    clock.restore();
  });

  it('the 4th request with one bearer token gets 429 RATE_LIMITED with Retry-After and reaches no upstream; another token is unaffected', async () => {
    for (let i = 0; i < 3; i++) accepted(await stack.gql(TOKENS, { consumerId: SMALL }));
    expect(calls(stack, LIST_ROUTE)).toBe(3);

    const r = await stack.gql(TOKENS, { consumerId: SMALL });
    expect(r.status).toBe(429);
    const retryAfter = Number(r.headers.get('retry-after'));
    expect(Number.isInteger(retryAfter) && retryAfter >= 1).toBe(true);
    expect(r.errors).toHaveLength(1);
    expect(r.errors![0]!.extensions.code).toBe('RATE_LIMITED');
    expect(r.errors![0]!.extensions.retryAfterSeconds).toBe(retryAfter);
    expect(calls(stack, LIST_ROUTE)).toBe(3);

    accepted(await stack.gql(TOKENS, { consumerId: SMALL }, READ_ONLY));
    expect(calls(stack, LIST_ROUTE)).toBe(4);
    expect(await stack.gql('{ __typename }')).toMatchObject({ status: 429 });
  });

  it('the bucket refills: one more request is allowed a second later (60 a minute), and only one', async () => {
    for (let i = 0; i < 3; i++) accepted(await stack.gql('{ __typename }'));
    expect((await stack.gql('{ __typename }')).status).toBe(429);
    clock.advance(1_000);
    accepted(await stack.gql('{ __typename }'));
    expect((await stack.gql('{ __typename }')).status).toBe(429);
  });

  it('rotating made-up tokens from one address hits the address ceiling (5 × the burst), over a real socket', async () => {
    const http = await listen(stack.gateway);
    try {
      const post = (i: number) =>
        fetch(http.url, {
          method: 'POST',
          headers: { ...JSON_HEADERS, authorization: `Bearer made-up-${i}` },
          body: JSON.stringify({ query: '{ iamEndpoints { name } }' }),
        });
      for (let i = 0; i < 15; i++) expect((await post(i)).status).toBe(200);
      const res = await post(15);
      expect(res.status).toBe(429);
      expect((await refusal(res, 'RATE_LIMITED')).message).toMatch(/from this address/);
    } finally {
      await http.close();
    }
  });

  it('requests without Authorization are keyed by IP, over a real socket', async () => {
    const http = await listen(stack.gateway);
    try {
      const post = (headers: Record<string, string> = {}) =>
        fetch(http.url, {
          method: 'POST',
          headers: { ...JSON_HEADERS, ...headers },
          body: JSON.stringify({ query: '{ iamEndpoints { name } }' }),
        });
      for (let i = 0; i < 3; i++) expect((await post()).status).toBe(200);
      const res = await post();
      expect(res.status).toBe(429);
      expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
      expect((await refusal(res, 'RATE_LIMITED')).message).toMatch(/Too many requests/);
      // Same IP, but a bearer token: its own bucket.
      expect((await post(FULL)).status).toBe(200);
    } finally {
      await http.close();
    }
  });
});

// ------------------------------------------------------------------ response headers

describe('Cache-Control: no-store and X-Request-Id', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack((c) => ({ rateLimit: { ...c.rateLimit, perMinute: 60, burst: 1 } }));
  });
  afterAll(async () => {
    await stack.close();
  });

  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

  it('a GraphQL answer carries no-store and a generated request id', async () => {
    const r = await stack.gql(TOKENS, { consumerId: SMALL });
    accepted(r);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.headers.get('x-request-id')).toMatch(UUID);
  });

  it('a valid incoming X-Request-Id is echoed', async () => {
    const r = await stack.gql('{ __typename }', {}, { ...READ_ONLY, 'x-request-id': 'client-req_42:a.b' });
    expect(r.headers.get('x-request-id')).toBe('client-req_42:a.b');
  });

  it.each([
    ['with spaces', 'abc def'],
    ['200 characters', 'a'.repeat(200)],
    ['with a newline-like escape', 'id%0d%0aset-cookie:x'],
    ['empty', ''],
  ])('an invalid incoming X-Request-Id (%s) is replaced by a generated one', async (_what, given) => {
    const r = await stack.gql('{ __typename }', {}, { authorization: `Bearer req-id-${_what}`, 'x-request-id': given });
    expect(r.headers.get('x-request-id')).toMatch(UUID);
  });

  it('refusals carry them too: a 400 invalid document, a 403 CSRF refusal, a 405 GET mutation', async () => {
    const invalid = await stack.gql('{ nope }', {}, { authorization: 'Bearer headers-1' });
    const csrf = await stack.gateway.fetch(`http://gateway.test/graphql?query=${encodeURIComponent('{ __typename }')}`);
    const getMutation = await stack.gateway.fetch(`http://gateway.test/graphql?query=${encodeURIComponent('mutation { __typename }')}`, {
      headers: { 'x-graphql-yoga-csrf': '1', authorization: 'Bearer headers-2' },
    });
    for (const [status, headers] of [
      [400, invalid.headers],
      [403, csrf.headers],
      [405, getMutation.headers],
    ] as const) {
      expect(headers.get('cache-control'), String(status)).toBe('no-store');
      expect(headers.get('x-request-id'), String(status)).toMatch(UUID);
    }
  });

  it('the gateway’s own early refusals carry them too: 429 rate limited and 413 body too large', async () => {
    await stack.gql('{ __typename }', {}, { authorization: 'Bearer early-1' });
    const limitedRes = await stack.gql('{ __typename }', {}, { authorization: 'Bearer early-1', 'x-request-id': 'early-429' });
    expect(limitedRes.status).toBe(429);
    expect(limitedRes.headers.get('cache-control')).toBe('no-store');

    const body = JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(200_000) } });
    const tooLarge = await stack.gateway.fetch('http://gateway.test/graphql', {
      method: 'POST',
      headers: { ...JSON_HEADERS, authorization: 'Bearer early-2', 'content-length': String(body.length), 'x-request-id': 'early-413' },
      body,
    });
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.headers.get('cache-control')).toBe('no-store');

    // An operator correlating a client's complaint with the logs needs the id on these too.
    expect(limitedRes.headers.get('x-request-id')).toBe('early-429');
    expect(tooLarge.headers.get('x-request-id')).toBe('early-413');
  });
});
