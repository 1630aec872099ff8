// The per-client rate limit on its own (its yoga plugin in a bare yoga, on a clock the test
// moves): bursts, refill, the announced wait, and which bucket a request spends from. The limit
// inside the gateway, over a real socket too: test/hardening/limits.test.ts.
import { createSchema, createYoga } from 'graphql-yoga';
import { describe, expect, it } from 'vitest';
import { useRateLimit, type BucketKind, type BucketsFactory, type RateLimitOptions } from '../../src/http/rate-limit.ts';
import { GatewayMetrics } from '../../src/observability/metrics.ts';

const schema = createSchema({ typeDefs: 'type Query { ok: Boolean }', resolvers: { Query: { ok: () => true } } });

/** A yoga with only the rate limit, on a clock that moves only when told. */
function limited(options: Partial<RateLimitOptions> = {}, buckets?: BucketsFactory) {
  let t = 1_000_000;
  const metrics = new GatewayMetrics(false);
  const yoga = createYoga({
    schema,
    logging: false,
    plugins: [
      useRateLimit({ perMinute: 60, burst: 3, ipMultiplier: 5, trustProxy: false, graphqlEndpoint: '/graphql', ...options }, metrics, () => t, buckets),
    ],
  });
  const post = async (headers: Record<string, string> = {}, path = '/graphql') => {
    const res = await yoga.fetch(`http://gateway.test${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ query: '{ ok }' }),
    });
    const text = await res.text(); // empty for a 404 off the endpoint
    const body = (text ? JSON.parse(text) : {}) as { data?: unknown; errors?: { message: string; extensions: Record<string, unknown> }[] };
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body };
  };
  const statuses = async (n: number, headers?: Record<string, string>) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push((await post(headers)).status);
    return out;
  };
  const refusals = async () => Object.fromEntries((await metrics.rateLimited.get()).values.map((v) => [v.labels.kind, v.value]));
  return { post, statuses, refusals, advance: (ms: number) => void (t += ms) };
}

const A = { authorization: 'Bearer token-a' };
const B = { authorization: 'Bearer token-b' };

describe('useRateLimit', () => {
  it('a burst of 3 passes, the 4th is refused: 429 RATE_LIMITED with Retry-After, the GraphQL shape, nothing executed', async () => {
    const l = limited();
    expect(await l.statuses(3, A)).toEqual([200, 200, 200]);
    const r = await l.post(A);
    expect(r.status).toBe(429);
    expect(r.retryAfter).toBe('1');
    expect(r.body.data).toBeUndefined();
    expect(r.body.errors).toHaveLength(1);
    expect(r.body.errors![0]!.extensions).toEqual({ code: 'RATE_LIMITED', retryAfterSeconds: 1 });
    expect(r.body.errors![0]!.message).toBe('Too many requests from this client: at most 60 a minute. Retry in 1 s.');
    expect(await l.refusals()).toEqual({ client: 1 });
  });

  it('refills at its rate (60 a minute: one a second): refused at 999 ms, one more at 1000 ms, and only one', async () => {
    const l = limited();
    await l.statuses(3, A);
    l.advance(999);
    expect((await l.post(A)).status).toBe(429);
    l.advance(1);
    expect(await l.statuses(2, A)).toEqual([200, 429]);
  });

  it('never holds more than the burst, however long the client was idle', async () => {
    const l = limited();
    await l.statuses(3, A);
    l.advance(60 * 60_000);
    expect(await l.statuses(4, A)).toEqual([200, 200, 200, 429]);
  });

  it('announces the wait for the next token, in whole seconds rounded up', async () => {
    const l = limited({ perMinute: 6, burst: 1 }); // one every 10 s
    expect((await l.post(A)).status).toBe(200);
    expect((await l.post(A)).retryAfter).toBe('10');
    l.advance(4_000);
    const r = await l.post(A);
    expect(r.retryAfter).toBe('6');
    expect(r.body.errors![0]!.extensions.retryAfterSeconds).toBe(6);
    l.advance(5_500);
    expect((await l.post(A)).retryAfter).toBe('1');
    l.advance(500);
    expect((await l.post(A)).status).toBe(200);
  });

  it('each bearer token has its own bucket', async () => {
    const l = limited();
    expect(await l.statuses(4, A)).toEqual([200, 200, 200, 429]);
    expect(await l.statuses(4, B)).toEqual([200, 200, 200, 429]);
  });

  it('without Authorization, requests are keyed by address (X-Forwarded-For only when trusted)', async () => {
    const trusted = limited({ trustProxy: true });
    const from = (ip: string) => ({ 'x-forwarded-for': `${ip}, 10.0.0.1` });
    expect(await trusted.statuses(4, from('203.0.113.1'))).toEqual([200, 200, 200, 429]);
    const refused = await trusted.post(from('203.0.113.1'));
    expect(refused.body.errors![0]!.message).toBe('Too many requests from this address: at most 60 a minute. Retry in 1 s.');
    expect(await trusted.statuses(3, from('203.0.113.2'))).toEqual([200, 200, 200]);
    expect(await trusted.refusals()).toEqual({ ip: 2 });

    // Untrusted, the header is ignored: every request comes from the same (unknown) address.
    const untrusted = limited();
    expect(await untrusted.statuses(3, from('203.0.113.1'))).toEqual([200, 200, 200]);
    expect((await untrusted.post(from('203.0.113.2'))).status).toBe(429);
  });

  it('rotating made-up tokens from one address spends the address ceiling (5 × the burst and rate)', async () => {
    const l = limited({ trustProxy: true });
    const ip = { 'x-forwarded-for': '203.0.113.7' };
    for (let i = 0; i < 15; i++) expect((await l.post({ ...ip, authorization: `Bearer made-up-${i}` })).status).toBe(200);
    const r = await l.post({ ...ip, authorization: 'Bearer made-up-15' });
    expect(r.status).toBe(429);
    expect(r.body.errors![0]!.message).toMatch(/from this address: at most 300 a minute/);
    // The ceiling refills 5 times as fast: one more request 200 ms later.
    l.advance(200);
    expect((await l.post({ ...ip, authorization: 'Bearer made-up-16' })).status).toBe(200);
    // A token from another address is not held back by this one's ceiling.
    expect((await l.post({ 'x-forwarded-for': '203.0.113.8', authorization: 'Bearer made-up-17' })).status).toBe(200);
  });

  it('buckets kept elsewhere (REDIS_URL: src/shared/rate-limit.ts) may answer later: the request waits for the answer, and a refusal is the same 429', async () => {
    const asked: BucketKind[] = [];
    const l = limited({}, (kind, perMinute) => ({
      perMinute,
      take: (key) => {
        asked.push(kind);
        // The client's bucket answers at once; the address ceiling later, and refuses a made-up token.
        if (kind === 'client') return 0;
        return new Promise((resolve) => setTimeout(() => resolve(key === 'unknown' && asked.length > 2 ? 7 : 0), 5));
      },
    }));
    expect((await l.post(A)).status).toBe(200);
    const r = await l.post(A);
    expect(r.status).toBe(429);
    expect(r.retryAfter).toBe('7');
    expect(r.body.errors![0]!.message).toBe('Too many requests from this address: at most 300 a minute. Retry in 7 s.');
    expect(asked).toEqual(['client', 'ceiling', 'client', 'ceiling']);
  });

  it('perMinute 0 turns it off', async () => {
    const l = limited({ perMinute: 0 });
    expect(new Set(await l.statuses(50, A))).toEqual(new Set([200]));
  });

  it('only the GraphQL endpoint is limited', async () => {
    const l = limited();
    for (let i = 0; i < 10; i++) expect((await l.post(A, '/elsewhere')).status).not.toBe(429);
    expect(await l.statuses(3, A)).toEqual([200, 200, 200]);
  });
});
