// What an operator sees: liveness and readiness, Prometheus metrics with bounded labels, one
// request id on every log line of a request (and the upstream's own request ids), no secret in
// logs or metrics after every operation, and OpenTelemetry spans exported over OTLP/HTTP.
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTracing, type Tracing } from '../../src/observability/tracing.ts';
import { DEMO_AUTHENTICATION_TOKENS, DEMO_CONSUMERS, DEMO_IAM_USERS } from '../../src/emulator/fixtures.ts';
import { FULL, startStack, unlimitedRetryBudget, useStack, type Stack } from '../helpers.ts';
import {
  CREATE_IAM_TOKEN,
  I,
  LIST_ROUTE,
  OBTAIN_JWT,
  PROVIDER,
  SMALL,
  TOKENS,
  leaked,
  metricValue,
  metricsText,
  runEveryOperation,
} from './support.ts';

const USER = DEMO_IAM_USERS.password;
const REVOKED = DEMO_AUTHENTICATION_TOKENS.find((t) => t.consumerId === DEMO_CONSUMERS.large && t.revoked)!;
const UPSTREAM_ID = /^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/;

const parsed = (lines: string[]) => lines.map((l) => JSON.parse(l) as Record<string, any>);

// ------------------------------------------------------------------ health and readiness

describe('/health and /ready', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack.close();
  });

  it('GET /health → 200', async () => {
    expect((await stack.gateway.fetch('http://gateway.test/health')).status).toBe(200);
  });

  it('GET /ready → 200 {status: "ready", redis: "off"} (no REDIS_URL; with it: test/cluster/), not cacheable', async () => {
    const res = await stack.gateway.fetch('http://gateway.test/ready');
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toMatchObject({ status: 'ready', redis: 'off' });
  });

  it('while draining /ready is 503 {status: "draining"} and /health stays 200', async () => {
    stack.gateway.lifecycle.draining = true;
    try {
      const res = await stack.gateway.fetch('http://gateway.test/ready');
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ status: 'draining' });
      expect((await stack.gateway.fetch('http://gateway.test/health')).status).toBe(200);
    } finally {
      stack.gateway.lifecycle.draining = false;
    }
    expect((await stack.gateway.fetch('http://gateway.test/ready')).status).toBe(200);
  });
});

// ------------------------------------------------------------------ metrics

describe('/metrics', () => {
  let stack: Stack;
  let text: string;
  const longName = `Op${'x'.repeat(70)}`;
  beforeAll(async () => {
    stack = await startStack();
    await stack.gql('query OkOp { iamEndpoints { name } }');
    await stack.gql('query OkOp { iamEndpoints { name } }');
    // No bearer token: the listing fails, its sibling `instance` is there → partial.
    await stack.gql(`query PartialOp { instance(instanceId: "${I}") { instanceId authenticationTokens(consumerId: "${SMALL}", credentialProviderIdentifier: "${PROVIDER}") { totalCount } } }`, {}, {});
    // A rejected password: the only field is null → error.
    await stack.gql(CREATE_IAM_TOKEN.replace('mutation CreateIamToken', 'mutation ErrOp'), { input: { password: { userName: USER.name, domainName: USER.domain.name, password: 'nope-nope' } } }, {});
    // A retried 503, then success.
    stack.emulator.inject({ route: LIST_ROUTE, status: 503, times: 1 });
    await stack.gql(TOKENS, { consumerId: SMALL, first: 5 });
    await stack.gql(`query ${longName} { __typename }`);
    // Operation names a client may try to inject through: all refused before execution.
    for (const operationName of ['x"} 1\ninjected_metric{a="', 'a b', '']) {
      await stack.gateway.fetch('http://gateway.test/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: 'query A { __typename }', operationName }),
      });
    }
    text = await metricsText(stack.gateway);
  });
  afterAll(async () => {
    await stack.close();
  });

  it('is Prometheus text, not cacheable', async () => {
    const res = await stack.gateway.fetch('http://gateway.test/metrics');
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(text).toMatch(/^# HELP graphql_operations_total /m);
  });

  it('graphql_operations_total by operation name, type and outcome (ok, partial, error)', () => {
    expect(metricValue(text, 'graphql_operations_total', { operation: 'OkOp', type: 'query', outcome: 'ok' })).toBe(2);
    expect(metricValue(text, 'graphql_operations_total', { operation: 'PartialOp', type: 'query', outcome: 'partial' })).toBe(1);
    expect(metricValue(text, 'graphql_operations_total', { operation: 'ErrOp', type: 'mutation', outcome: 'error' })).toBe(1);
    expect(metricValue(text, 'graphql_operations_total', { operation: 'Tokens', type: 'query', outcome: 'ok' })).toBe(1);
    expect(metricValue(text, 'graphql_errors_total', { code: 'UNAUTHENTICATED' })).toBe(2);
  });

  it('graphql_operation_duration_seconds per operation', () => {
    expect(metricValue(text, 'graphql_operation_duration_seconds_count', { operation: 'OkOp', type: 'query' })).toBe(2);
    expect(metricValue(text, 'graphql_operation_duration_seconds_sum', { operation: 'ErrOp', type: 'mutation' })).toBeGreaterThan(0);
  });

  it('upstream_request_duration_seconds by upstream, operation and status', () => {
    const list = { upstream: 'idaas', operation: 'listAuthenticationTokens' };
    expect(metricValue(text, 'upstream_request_duration_seconds_count', { ...list, status: '503' })).toBe(1);
    expect(metricValue(text, 'upstream_request_duration_seconds_count', { ...list, status: '200' })).toBe(1);
    expect(metricValue(text, 'upstream_request_duration_seconds_count', { upstream: 'iam', operation: 'createToken', status: '401' })).toBe(1);
  });

  it('upstream_retries_total counts the retried 503', () => {
    expect(metricValue(text, 'upstream_retries_total', { upstream: 'idaas', operation: 'listAuthenticationTokens' })).toBe(1);
  });

  it('upstream_circuit_state per upstream origin (0: closed)', () => {
    expect(metricValue(text, 'upstream_circuit_state', { origin: stack.emulator.url })).toBe(0);
  });

  it('labels stay bounded: a name that is not a short identifier is "invalid", and nothing is injected', () => {
    expect(metricValue(text, 'graphql_operations_total', { operation: 'invalid', outcome: 'ok' })).toBe(1);
    expect(text).not.toContain(longName);
    expect(text).not.toContain('injected_metric');
    for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) {
      expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_]\w*="(?:[^"\\\n]|\\.)*",?)*\})? (?:-?[0-9.e+-]+|NaN|[+-]Inf)$/);
    }
  });

  it('after 200 distinct operation names, new ones are counted as "other"', async () => {
    const many = await startStack();
    try {
      for (let i = 0; i < 201; i++) await many.gql(`query Name${i} { __typename }`);
      const t = await metricsText(many.gateway);
      expect(metricValue(t, 'graphql_operations_total', { operation: 'Name199' })).toBe(1);
      expect(metricValue(t, 'graphql_operations_total', { operation: 'Name200' })).toBeUndefined();
      expect(metricValue(t, 'graphql_operations_total', { operation: 'other' })).toBe(1);
    } finally {
      await many.close();
    }
  });
});

// ------------------------------------------------------------------ logs

describe('logs', () => {
  const stack = useStack(unlimitedRetryBudget);

  it('every line written during a request carries its X-Request-Id (upstream calls, retries, the operation line)', async () => {
    stack.emulator.inject({ route: LIST_ROUTE, status: 503, times: 1 });
    const from = stack.logs.length;
    const r = await stack.gql(TOKENS, { consumerId: SMALL, first: 5 }, { ...FULL, 'x-request-id': 'test-req-1' });
    expect(r.errors).toBeUndefined();
    const lines = parsed(stack.logs.slice(from));
    expect(lines.length).toBeGreaterThanOrEqual(4);
    for (const l of lines) expect(l.requestId, JSON.stringify(l)).toBe('test-req-1');
    expect(lines.filter((l) => l.msg === 'upstream call')).toHaveLength(2);
    expect(lines.filter((l) => l.msg === 'upstream retry')).toHaveLength(1);
    const op = lines.filter((l) => l.msg === 'graphql operation');
    expect(op).toHaveLength(1);
    expect(op[0]).toMatchObject({ operation: 'Tokens', type: 'query', outcome: 'ok' });
    for (const call of lines.filter((l) => l.msg === 'upstream call')) {
      expect(call).toMatchObject({ upstream: 'idaas', operation: 'listAuthenticationTokens', method: 'GET' });
      expect(call.upstreamRequestId).toMatch(UPSTREAM_ID);
    }
    // The operation line (info level, unlike successful call lines) lists every call and its id.
    expect(op[0]!.upstreamCalls.map((c: { status: number }) => c.status)).toEqual([503, 200]);
    for (const c of op[0]!.upstreamCalls) expect(c.upstreamRequestId).toMatch(UPSTREAM_ID);
  });

  it('concurrent requests keep their own ids', async () => {
    const from = stack.logs.length;
    await Promise.all(
      ['req-a', 'req-b', 'req-c'].map((id, i) =>
        stack.gql(TOKENS, { consumerId: [SMALL, DEMO_CONSUMERS.medium, DEMO_CONSUMERS.large][i], first: 5 }, { ...FULL, 'x-request-id': id }),
      ),
    );
    const lines = parsed(stack.logs.slice(from));
    for (const id of ['req-a', 'req-b', 'req-c']) {
      expect(lines.filter((l) => l.requestId === id && l.msg === 'graphql operation')).toHaveLength(1);
      expect(lines.filter((l) => l.requestId === id && l.msg === 'upstream call')).toHaveLength(1);
    }
    expect(lines.every((l) => ['req-a', 'req-b', 'req-c'].includes(l.requestId))).toBe(true);
  });

  it('the upstream request id in the log is the one the client gets in extensions.upstream.requestId', async () => {
    const from = stack.logs.length;
    const r = await stack.gql(
      OBTAIN_JWT,
      { input: { instanceId: REVOKED.instanceId, consumerId: REVOKED.consumerId, authenticationTokenId: REVOKED.authenticationTokenId } },
      { ...FULL, 'x-request-id': 'test-req-2' },
    );
    const err = r.errors?.[0];
    expect(err?.extensions.upstream?.requestId).toMatch(UPSTREAM_ID);
    const calls = parsed(stack.logs.slice(from)).filter((l) => l.msg === 'upstream call');
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ requestId: 'test-req-2', upstream: 'idaas', operation: 'obtainJwt', upstreamRequestId: err!.extensions.upstream.requestId });
  });

  it('no secret appears in the logs or in /metrics after every operation (successes and failures)', async () => {
    const secrets = await runEveryOperation(stack);
    expect(secrets.length).toBeGreaterThan(15);
    expect(leaked(stack.logs.join(''), secrets)).toEqual([]);
    expect(leaked(await metricsText(stack.gateway), secrets)).toEqual([]);
  });
});

// ------------------------------------------------------------------ OpenTelemetry

interface Collected {
  spans: { name: string; traceId: string; spanId: string; parentSpanId?: string; attributes: { key: string; value: Record<string, unknown> }[] }[];
  resources: Record<string, unknown>[];
  raw: string;
}

/** A tiny OTLP/HTTP collector on loopback: records every POST /v1/traces body. */
async function startCollector() {
  const bodies: { contentType: string; body: string }[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/traces') {
        const buf = Buffer.concat(chunks);
        const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(buf) : buf;
        bodies.push({ contentType: String(req.headers['content-type']), body: body.toString('utf8') });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    bodies,
    collected(): Collected {
      const out: Collected = { spans: [], resources: [], raw: bodies.map((b) => b.body).join('\n') };
      for (const { body } of bodies) {
        for (const rs of JSON.parse(body).resourceSpans ?? []) {
          out.resources.push(Object.fromEntries((rs.resource?.attributes ?? []).map((a: any) => [a.key, Object.values(a.value)[0]])));
          for (const ss of rs.scopeSpans ?? []) out.spans.push(...ss.spans);
        }
      }
      return out;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

describe('OpenTelemetry traces (OTLP/HTTP)', () => {
  let collector: Awaited<ReturnType<typeof startCollector>>;
  let tracing: Tracing;
  let stack: Stack;
  let secrets: string[];
  let got: Collected;
  beforeAll(async () => {
    collector = await startCollector();
    tracing = startTracing({ endpoint: collector.url, serviceName: 'token-gateway-test' });
    stack = await startStack();
    await stack.gql(TOKENS, { consumerId: SMALL, first: 5 }, { ...FULL, 'x-request-id': 'trace-req-1' });
    secrets = await runEveryOperation(stack);
    await tracing.forceFlush();
    got = collector.collected();
  });
  afterAll(async () => {
    await stack?.close();
    await tracing?.shutdown();
    await collector?.close();
  });

  it('spans arrive at the collector as OTLP JSON, with the service name', () => {
    expect(collector.bodies.length).toBeGreaterThan(0);
    expect(collector.bodies[0]!.contentType).toMatch(/json/);
    expect(got.resources.some((r) => r['service.name'] === 'token-gateway-test')).toBe(true);
  });

  it('one span per operation and per upstream call, the upstream call nested under its operation', () => {
    const names = got.spans.map((s) => s.name);
    for (const n of ['graphql query Tokens', 'idaas listAuthenticationTokens', 'graphql mutation ObtainJwt', 'idaas obtainJwt', 'graphql mutation CreateIamToken', 'iam createToken']) {
      expect(names).toContain(n);
    }
    const op = got.spans.find(
      (s) => s.name === 'graphql query Tokens' && s.attributes.some((a) => a.key === 'gateway.request_id' && a.value.stringValue === 'trace-req-1'),
    )!;
    expect(op).toBeDefined();
    const call = got.spans.find((s) => s.name === 'idaas listAuthenticationTokens' && s.traceId === op.traceId);
    expect(call?.parentSpanId).toBe(op.spanId);
  });

  it('no secret in any exported span', () => {
    expect(secrets.length).toBeGreaterThan(15);
    expect(leaked(got.raw, secrets)).toEqual([]);
  });
});
