// How upstream failures reach the client: status → extensions.code, the upstream's own
// error fields in every dialect, retries of the (idempotent) listing, timeouts, unreadable
// answers, partial data, and masking of the unexpected.
import { describe, expect, it } from 'vitest';
import {
  DEMO_AUTHENTICATION_TOKENS,
  DEMO_CONSUMERS,
  DEMO_CREDENTIAL_PROVIDERS,
  DEMO_INSTANCE_ID,
} from '../../src/emulator/fixtures.ts';
import type { Fault } from '../../src/emulator/index.ts';
import { onlyError, startStack, unlimitedRetryBudget, useStack, type GqlResult, type Stack } from '../helpers.ts';

const I = DEMO_INSTANCE_ID;
const PROVIDER = DEMO_CREDENTIAL_PROVIDERS.jwt.identifier;
const LIST_ROUTE = 'idaas.listAuthenticationTokens';
const REQUEST_ID = /^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/;

const SMALL_IDS = DEMO_AUTHENTICATION_TOKENS.filter((t) => t.instanceId === I && t.consumerId === DEMO_CONSUMERS.small).map(
  (t) => t.authenticationTokenId,
);

const TOKENS = /* GraphQL */ `
  query Tokens($consumerId: String!, $first: Int, $after: String) {
    instance(instanceId: "${I}") {
      instanceId
      authenticationTokens(consumerId: $consumerId, credentialProviderIdentifier: "${PROVIDER}", first: $first, after: $after) {
        totalCount
        pageInfo { endCursor }
        nodes { authenticationTokenId createdAt type }
      }
    }
  }
`;

// This file makes the listing retry again and again.
const stack = useStack(unlimitedRetryBudget);

// ------------------------------------------------------------------ helpers

const listCalls = (s: Stack = stack) => s.emulator.counters()[LIST_ROUTE]?.requests ?? 0;
const attempts = () => stack.gateway.services.config.upstream.retry.attempts;

function listSmall(s: Stack = stack, variables: Record<string, unknown> = {}) {
  return s.gql(TOKENS, { consumerId: DEMO_CONSUMERS.small, first: 5, ...variables });
}

function withFault(fault: Omit<Fault, 'route'>) {
  stack.emulator.inject({ route: LIST_ROUTE, ...fault });
}

function expectSmallList(r: GqlResult<any>) {
  expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
  expect(r.data.instance.authenticationTokens.nodes.map((n: any) => n.authenticationTokenId)).toEqual(SMALL_IDS);
}

/** The field failed alone: its sibling is still there and the error points at it. */
function fieldError(r: GqlResult<any>) {
  const err = onlyError(r);
  expect(err.path).toEqual(['instance', 'authenticationTokens']);
  expect(r.data.instance).toEqual({ instanceId: I, authenticationTokens: null });
  return err;
}

// ------------------------------------------------------------------ statuses

describe('upstream status → extensions.code', () => {
  it.each([
    [400, 'BAD_USER_INPUT', 'injected', false],
    [401, 'UNAUTHENTICATED', 'injected', false],
    [403, 'FORBIDDEN', 'injected', false],
    [404, 'NOT_FOUND', 'injected', false],
    [409, 'BAD_USER_INPUT', 'injected', false],
    [429, 'RATE_LIMITED', 'throttling', true],
    [500, 'UPSTREAM_ERROR', 'internal_error', false],
    [502, 'UPSTREAM_UNAVAILABLE', 'internal_error', true],
    [503, 'UPSTREAM_UNAVAILABLE', 'service_unavailable', true],
    [504, 'UPSTREAM_TIMEOUT', 'internal_error', true],
  ])('%i → %s, with the upstream details', async (status, code, upstreamCode, retried) => {
    withFault({ status });
    const r = await listSmall();
    const err = fieldError(r);
    expect(err.extensions.code).toBe(code);
    expect(err.extensions.upstream).toEqual({ service: 'idaas', status, code: upstreamCode, requestId: expect.stringMatching(REQUEST_ID) });
    // The listing is idempotent: 429/502/503/504 are retried until the attempts run out.
    expect(listCalls()).toBe(retried ? attempts() : 1);
  });

  it('keeps the HTTP status of the GraphQL response at 200 (the failure is in `errors`)', async () => {
    withFault({ status: 503 });
    expect((await listSmall()).status).toBe(200);
  });
});

// ------------------------------------------------------------------ dialects

describe('upstream error dialects', () => {
  it.each<[string, number, unknown, Record<string, string> | undefined, { code?: string; requestId: string | RegExp; message: string }]>([
    [
      'IDaaS {error, error_description, request_id}',
      400,
      { error: 'invalid_parameter', error_description: 'The consumer id is not valid.', request_id: 'IDAAS-REQ-0001' },
      undefined,
      { code: 'invalid_parameter', requestId: 'IDAAS-REQ-0001', message: 'The consumer id is not valid.' },
    ],
    [
      'older Alibaba {Code, Message, RequestId}',
      400,
      { Code: 'InvalidParameter.ConsumerId', Message: 'The specified consumer is invalid.', RequestId: 'B8E2A5C4-0000-4000-8000-OLDDIALECT01' },
      undefined,
      { code: 'InvalidParameter.ConsumerId', requestId: 'B8E2A5C4-0000-4000-8000-OLDDIALECT01', message: 'The specified consumer is invalid.' },
    ],
    [
      'Huawei API gateway {error_code, error_msg, request_id}',
      404,
      { error_code: 'APIGW.0101', error_msg: 'The API does not exist or has not been published.', request_id: 'hw-5c1e9f7a0b2d4e6f' },
      undefined,
      { code: 'APIGW.0101', requestId: 'hw-5c1e9f7a0b2d4e6f', message: 'The API does not exist or has not been published.' },
    ],
    [
      'Huawei {error_code, error_msg} without an id: the x-acs-request-id header',
      403,
      { error_code: 'IAM.0002', error_msg: 'You do not have permission.' },
      undefined,
      { code: 'IAM.0002', requestId: REQUEST_ID, message: 'You do not have permission.' },
    ],
    [
      'a body without an id and an X-Request-Id header',
      400,
      { error_code: 'PAM.0400', error_msg: 'Bad request.' },
      { 'x-request-id': 'HDR-REQ-7' },
      { code: 'PAM.0400', requestId: 'HDR-REQ-7', message: 'Bad request.' },
    ],
    [
      'Keystone-style {error: {code, title, message}}',
      400,
      { error: { code: 400, title: 'Bad Request', message: 'Malformed request.' } },
      undefined,
      { code: 'Bad Request', requestId: REQUEST_ID, message: 'Malformed request.' },
    ],
  ])('reads %s', async (_name, status, body, headers, want) => {
    withFault({ status, body, ...(headers ? { headers } : {}) });
    const err = fieldError(await listSmall());
    expect(err.extensions.upstream).toEqual({
      service: 'idaas',
      status,
      code: want.code,
      requestId: typeof want.requestId === 'string' ? want.requestId : expect.stringMatching(want.requestId),
    });
    expect(err.message).toContain(want.message);
  });

  it('maps an error page that is not JSON by its status, keeping the header request id', async () => {
    withFault({ status: 502, body: '<html><body><h1>502 Bad Gateway</h1></body></html>', headers: { 'content-type': 'text/html' } });
    const err = fieldError(await listSmall());
    expect(err.extensions.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(err.extensions.upstream).toEqual({ service: 'idaas', status: 502, requestId: expect.stringMatching(REQUEST_ID) });
    expect(err.message).not.toContain('<html>');
  });
});

// ------------------------------------------------------------------ retries

describe('retries of the listing', () => {
  it('503 twice, then success: data, after three requests', async () => {
    withFault({ status: 503, times: 2 });
    expectSmallList(await listSmall());
    expect(listCalls()).toBe(3);
  });

  it.each([502, 504, 429])('%i once, then success', async (status) => {
    withFault({ status, times: 1 });
    expectSmallList(await listSmall());
    expect(listCalls()).toBe(2);
  });

  it('429 with Retry-After: 1, then success: waits the second the upstream asked for', async () => {
    withFault({ status: 429, headers: { 'retry-after': '1' }, times: 1 });
    const started = performance.now();
    const r = await listSmall();
    const elapsed = performance.now() - started;
    expectSmallList(r);
    expect(listCalls()).toBe(2);
    expect(elapsed).toBeGreaterThanOrEqual(990);
  });

  it('a connection reset, then success', async () => {
    withFault({ reset: true, times: 1 });
    expectSmallList(await listSmall());
    expect(listCalls()).toBe(2);
  });

  it('connection resets on every attempt: UPSTREAM_UNAVAILABLE after all attempts', async () => {
    withFault({ reset: true });
    const err = fieldError(await listSmall());
    expect(err.extensions.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(err.extensions.upstream).toMatchObject({ service: 'idaas' });
    expect(listCalls()).toBe(attempts());
  });

  it('a 500 is not retried', async () => {
    withFault({ status: 500, times: 1 });
    expect(fieldError(await listSmall()).extensions.code).toBe('UPSTREAM_ERROR');
    expect(listCalls()).toBe(1);
  });

  it('each page of a multi-page connection is retried on its own', async () => {
    // first: 150 → two upstream pages; the first answer fails once.
    withFault({ status: 503, times: 1 });
    const r = await stack.gql(TOKENS, { consumerId: DEMO_CONSUMERS.large, first: 150 });
    expect(r.errors).toBeUndefined();
    expect(r.data.instance.authenticationTokens.nodes).toHaveLength(150);
    expect(listCalls()).toBe(3);
  });
});

// ------------------------------------------------------------------ unreadable answers and timeouts

describe('answers the gateway cannot use', () => {
  it('malformed JSON: UPSTREAM_ERROR with the upstream request id, not retried', async () => {
    withFault({ malformed: true });
    const err = fieldError(await listSmall());
    expect(err.extensions.code).toBe('UPSTREAM_ERROR');
    expect(err.extensions.upstream).toEqual({ service: 'idaas', status: 200, requestId: expect.stringMatching(REQUEST_ID) });
    expect(listCalls()).toBe(1);
  });

  it('a body that breaks off after the headers: UPSTREAM_UNAVAILABLE, not retried', async () => {
    withFault({ truncated: true, times: 1 });
    const err = fieldError(await listSmall());
    expect(err.extensions.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(listCalls()).toBe(1);
    expectSmallList(await listSmall()); // the next request gets a fresh connection
  });

  it('an answer larger than UPSTREAM_MAX_RESPONSE_BYTES: UPSTREAM_ERROR with the request id, not retried', async () => {
    const small = await startStack((c) => ({ ...unlimitedRetryBudget(c), upstream: { ...unlimitedRetryBudget(c).upstream!, maxResponseBytes: 2_000 } }));
    try {
      const r = await small.gql(TOKENS, { consumerId: DEMO_CONSUMERS.large, first: 20 });
      const err = onlyError(r);
      expect(err.path).toEqual(['instance', 'authenticationTokens']);
      expect(err.extensions.code).toBe('UPSTREAM_ERROR');
      expect(err.message).toBe('IDaaS PAM sent a response the gateway cannot read (response larger than 2000 bytes)');
      expect(err.extensions.upstream).toEqual({ service: 'idaas', status: 200, requestId: expect.stringMatching(REQUEST_ID) });
      expect(listCalls(small)).toBe(1);
      // A page that fits is read as usual.
      const ok = await small.gql(TOKENS, { consumerId: DEMO_CONSUMERS.small, first: 2 });
      expect(ok.errors).toBeUndefined();
      expect(ok.data.instance.authenticationTokens.nodes).toHaveLength(2);
    } finally {
      await small.close();
    }
  });

  it('a 200 whose body has the wrong shape: UPSTREAM_ERROR', async () => {
    withFault({ status: 200, body: { entities: 'nope', totalCount: -1 } });
    const err = fieldError(await listSmall());
    expect(err.extensions.code).toBe('UPSTREAM_ERROR');
    expect(err.extensions.upstream).toMatchObject({ service: 'idaas', status: 200, requestId: expect.stringMatching(REQUEST_ID) });
  });

  // The list page is read by hand (src/upstreams/idaas/schemas.ts): every documented field is
  // checked, and the error names the first one that is wrong.
  const GOOD = DEMO_AUTHENTICATION_TOKENS.find((t) => t.consumerId === DEMO_CONSUMERS.small)!;
  const { createTime: _omitted, ...withoutCreateTime } = GOOD;
  it.each<[string, unknown, string]>([
    ['not an object', [GOOD], 'body'],
    ['entities not a list', { entities: 'nope', totalCount: 1 }, 'entities'],
    ['a negative totalCount', { entities: [GOOD], totalCount: -1 }, 'totalCount'],
    ['no totalCount', { entities: [GOOD] }, 'totalCount'],
    ['a null token', { entities: [GOOD, null], totalCount: 2 }, 'entities.1'],
    ['a token without createTime', { entities: [withoutCreateTime], totalCount: 1 }, 'entities.0.createTime'],
    ['a fractional expirationTime', { entities: [{ ...GOOD, expirationTime: 1.5 }], totalCount: 1 }, 'entities.0.expirationTime'],
    ['revoked as a string', { entities: [GOOD, { ...GOOD, revoked: 'false' }], totalCount: 2 }, 'entities.1.revoked'],
    ['a numeric consumerId', { entities: [{ ...GOOD, consumerId: 42 }], totalCount: 1 }, 'entities.0.consumerId'],
    ['an empty nextToken', { entities: [GOOD], totalCount: 9, nextToken: '' }, 'nextToken'],
    ['a numeric nextToken', { entities: [GOOD], totalCount: 9, nextToken: 7 }, 'nextToken'],
    ['a fractional maxResults', { entities: [GOOD], totalCount: 1, maxResults: 2.5 }, 'maxResults'],
  ])('a page with %s: UPSTREAM_ERROR naming %s', async (_name, body, where) => {
    withFault({ status: 200, body });
    const err = fieldError(await listSmall());
    expect(err.extensions.code).toBe('UPSTREAM_ERROR');
    expect(err.message).toBe(`IDaaS PAM sent a response the gateway cannot read (unexpected shape at ${where})`);
  });

  it('a page with unknown extra fields, a null nextToken and no maxResults is read as usual', async () => {
    withFault({ status: 200, body: { entities: [{ ...GOOD, somethingNew: { x: 1 } }], totalCount: 1, nextToken: null, extra: true }, times: 1 });
    const r = await stack.gql(/* GraphQL */ `
      query {
        instance(instanceId: "${I}") {
          authenticationTokens(consumerId: "${DEMO_CONSUMERS.small}", credentialProviderIdentifier: "${PROVIDER}") {
            totalCount
            pageInfo { hasNextPage }
            nodes { id authenticationTokenId type revoked createdAt updatedAt expiresAt consumerId }
          }
        }
      }
    `);
    expect(r.errors).toBeUndefined();
    const conn = r.data.instance.authenticationTokens;
    expect(conn).toMatchObject({ totalCount: 1, pageInfo: { hasNextPage: false } });
    expect(conn.nodes).toEqual([
      {
        id: expect.any(String),
        authenticationTokenId: GOOD.authenticationTokenId,
        type: 'JWT',
        revoked: GOOD.revoked,
        createdAt: new Date(GOOD.createTime).toISOString(),
        updatedAt: new Date(GOOD.updateTime).toISOString(),
        expiresAt: new Date(GOOD.expirationTime).toISOString(),
        consumerId: GOOD.consumerId,
      },
    ]);
  });

  it('a token type the gateway does not know: UPSTREAM_ERROR on that token', async () => {
    const token = DEMO_AUTHENTICATION_TOKENS.find((t) => t.consumerId === DEMO_CONSUMERS.small)!;
    withFault({ status: 200, body: { entities: [{ ...token, authenticationTokenType: 'opaque' }], totalCount: 1 }, times: 1 });
    const r = await listSmall();
    const err = onlyError(r);
    expect(err.extensions.code).toBe('UPSTREAM_ERROR');
    expect(err.path).toEqual(['instance', 'authenticationTokens', 'nodes', 0, 'type']);
    expect(err.message).toMatch(/^IDaaS PAM sent an answer the gateway cannot use \(unknown token type /);
    expect(err.extensions.upstream).toEqual({ service: 'idaas' }); // no made-up status
    expect(r.data.instance.instanceId).toBe(I);
  });

  it('a nextToken that loops back: UPSTREAM_ERROR instead of an endless walk', async () => {
    const token = DEMO_AUTHENTICATION_TOKENS.find((t) => t.consumerId === DEMO_CONSUMERS.small)!;
    withFault({ status: 200, body: { entities: [token], totalCount: 50, nextToken: 'NT-loop' } });
    const err = fieldError(await listSmall(stack, { first: 20 }));
    expect(err.extensions.code).toBe('UPSTREAM_ERROR');
    expect(err.message).toBe('IDaaS PAM sent an answer the gateway cannot use (nextToken loops back to an earlier page)');
    expect(err.extensions.upstream).toEqual({ service: 'idaas' });
    expect(listCalls()).toBeLessThanOrEqual(3);
  });

  it('an upstream slower than the timeout: UPSTREAM_TIMEOUT', async () => {
    const slow = await startStack((c) => ({
      ...unlimitedRetryBudget(c),
      upstream: { ...unlimitedRetryBudget(c).upstream!, timeoutMs: 200, retry: { ...c.upstream.retry, attempts: 1 } },
    }));
    try {
      slow.emulator.inject({ route: LIST_ROUTE, latencyMs: 1000 });
      const r = await listSmall(slow);
      const err = fieldError(r);
      expect(err.extensions.code).toBe('UPSTREAM_TIMEOUT');
      expect(err.extensions.upstream).toMatchObject({ service: 'idaas' });
      expect(listCalls(slow)).toBe(1);
    } finally {
      await slow.close();
    }
  });
});

// ------------------------------------------------------------------ partial data and masking

describe('partial data', () => {
  const TWO = /* GraphQL */ `
    query Two($good: String!, $bad: String!, $after: String) {
      instance(instanceId: "${I}") {
        good: authenticationTokens(consumerId: $good, credentialProviderIdentifier: "${PROVIDER}", first: 5) { nodes { authenticationTokenId } }
        bad: authenticationTokens(consumerId: $bad, credentialProviderIdentifier: "${PROVIDER}", first: 5, after: $after) { nodes { authenticationTokenId } }
      }
    }
  `;

  it('a field failing on its input nulls only itself: data for the good alias, an error with the bad one’s path', async () => {
    const other = await stack.gql(TOKENS, { consumerId: DEMO_CONSUMERS.medium, first: 2 });
    const foreignCursor = other.data.instance.authenticationTokens.pageInfo.endCursor;
    const r = await stack.gql(TWO, { good: DEMO_CONSUMERS.small, bad: DEMO_CONSUMERS.large, after: foreignCursor });
    expect(r.data.instance.good.nodes.map((n: any) => n.authenticationTokenId)).toEqual(SMALL_IDS);
    expect(r.data.instance.bad).toBeNull();
    const err = onlyError(r);
    expect(err.path).toEqual(['instance', 'bad']);
    expect(err.extensions.code).toBe('BAD_USER_INPUT');
  });

  it('a field whose upstream call fails nulls only itself', async () => {
    // One of the two concurrent calls gets the 400; which one is up to the scheduler.
    withFault({ status: 400, times: 1 });
    const r = await stack.gql(TWO, { good: DEMO_CONSUMERS.small, bad: DEMO_CONSUMERS.medium });
    const err = onlyError(r);
    expect(err.extensions.code).toBe('BAD_USER_INPUT');
    const failed = err.path!.at(-1) as 'good' | 'bad';
    const succeeded = failed === 'good' ? 'bad' : 'good';
    expect(err.path).toEqual(['instance', failed]);
    expect(r.data.instance[failed]).toBeNull();
    expect(r.data.instance[succeeded].nodes.length).toBeGreaterThan(0);
    expect(listCalls()).toBe(2);
  });
});

describe('unexpected exceptions', () => {
  it('are masked: INTERNAL_SERVER_ERROR, a generic message, no stack or internals', async () => {
    // An upstream time outside what a JavaScript Date can hold makes the DateTime scalar throw
    // something the gateway did not anticipate.
    const token = DEMO_AUTHENTICATION_TOKENS.find((t) => t.consumerId === DEMO_CONSUMERS.small)!;
    withFault({ status: 200, body: { entities: [{ ...token, createTime: 9e15 }], totalCount: 1 }, times: 1 });
    const r = await listSmall();
    const err = onlyError(r);
    expect(err.extensions.code).toBe('INTERNAL_SERVER_ERROR');
    expect(err.message).toBe('Unexpected error.');
    expect(Object.keys(err.extensions).sort()).toEqual(['code']);
    expect(JSON.stringify(r)).not.toMatch(/\bat \S+ \(|\.ts:\d+|stack|originalError/);
    expect(r.data.instance.instanceId).toBe(I);
  });
});

describe('an upstream with no endpoint configured', () => {
  it('is UPSTREAM_UNAVAILABLE for IDaaS and for IAM alike (the operator’s problem, one code)', async () => {
    const bare = await startStack(() => ({ idaas: { endpoint: undefined, instanceEndpoints: new Map() }, iam: { endpoints: [] } }));
    try {
      const list = await listSmall(bare);
      expect(fieldError(list).extensions).toEqual({ code: 'UPSTREAM_UNAVAILABLE', upstream: { service: 'idaas' } });
      const iam = await bare.gql(
        'mutation { createIamToken(input: { password: { userName: "u", domainName: "d", password: "p" } }) { value } }',
      );
      expect(onlyError(iam).extensions).toEqual({ code: 'UPSTREAM_UNAVAILABLE', upstream: { service: 'iam' } });
      expect(onlyError(iam).message).toBe('No IAM endpoint is configured.');
      expect(bare.emulator.counters()['iam.createToken']?.requests ?? 0).toBe(0);
    } finally {
      await bare.close();
    }
  });
});
