// A short mixed load over a real loopback socket (1500 requests, 20 at a time) while the
// upstreams misbehave for part of the time: every answer is 2xx/4xx with typed errors, no
// rejection goes unhandled, and the heap does not grow with the number of requests.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEMO_AUTHENTICATION_TOKENS,
  DEMO_CLOUD_ACCOUNT_ROLES,
  DEMO_CONSUMERS,
  DEMO_IAM_USERS,
} from '../../src/emulator/fixtures.ts';
import type { Fault } from '../../src/emulator/index.ts';
import { FULL, startStack, type Stack } from '../helpers.ts';
import { CONTRACT_CODES, CREATE_IAM_TOKEN, IAM_ROUTE, JWT_ROUTE, LIST_ROUTE, OBTAIN_JWT, ROLE_ROUTE, TOKENS, contractErrors } from './support.ts';
import { listen, type Listening } from '../http-gateway.ts';

const TOTAL = 1_500;
const CONCURRENCY = 20;
const WARM_UP = 200;
/** Heap growth allowed across the load, after a full GC on both sides. */
const HEAP_BOUND_MB = 40;

const USER = DEMO_IAM_USERS.password;
const USABLE = DEMO_AUTHENTICATION_TOKENS.filter((t) => t.consumerId === DEMO_CONSUMERS.large && !t.revoked);
const ROLE = DEMO_CLOUD_ACCOUNT_ROLES.alibaba;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

interface Sent {
  body: Record<string, unknown>;
  headers: Record<string, string>;
}

/** The request mix: listings of every size, minting, sign-ins, bad input and missing auth. */
function request(i: number): Sent {
  const json = (query: string, variables: Record<string, unknown> = {}, headers: Record<string, string> = FULL): Sent => ({
    body: { query, variables },
    headers,
  });
  switch (i % 10) {
    case 0:
    case 1:
    case 2:
      return json(TOKENS, { consumerId: [DEMO_CONSUMERS.small, DEMO_CONSUMERS.medium, DEMO_CONSUMERS.large][i % 3], first: [5, 20, 120][i % 3] });
    case 3: {
      const t = USABLE[i % USABLE.length]!;
      return json(OBTAIN_JWT, { input: { instanceId: t.instanceId, consumerId: t.consumerId, authenticationTokenId: t.authenticationTokenId } });
    }
    case 4:
      return json(
        'mutation Role($input: ObtainCloudAccountRoleAccessCredentialInput!) { obtainCloudAccountRoleAccessCredential(input: $input) { accessCredential { expiresIn } } }',
        { input: { instanceId: ROLE.instanceId, cloudAccountRoleExternalId: ROLE.cloudAccountRoleExternalId } },
      );
    case 5:
      return json(CREATE_IAM_TOKEN, { input: { password: { userName: USER.name, domainName: USER.domain.name, password: USER.password } } }, {});
    case 6:
      // An unknown user: rejected, and nobody gets locked out.
      return json(CREATE_IAM_TOKEN, { input: { password: { userName: `nobody-${i}`, domainName: USER.domain.name, password: 'wrong-password' } } }, {});
    case 7:
      return json(TOKENS, { consumerId: DEMO_CONSUMERS.small }, {});
    case 8:
      return json('query Broken { instance(instanceId: "x") { nope } }');
    default:
      return json('query Endpoints { iamEndpoints { name isDefault } }');
  }
}

/** Faults switched on for stretches of the run (by request index), each with a bounded count. */
const PHASES: { at: number; faults: Fault[] }[] = [
  { at: 300, faults: [{ route: LIST_ROUTE, status: 503, times: 60 }, { route: JWT_ROUTE, status: 503, times: 10 }] },
  { at: 600, faults: [{ route: LIST_ROUTE, latencyMs: 1_500, times: 20 }, { route: IAM_ROUTE, latencyMs: 400, times: 20 }] },
  { at: 800, faults: [{ route: LIST_ROUTE, malformed: true, times: 40 }, { route: ROLE_ROUTE, reset: true, times: 10 }] },
  { at: 1_000, faults: [{ route: LIST_ROUTE, reset: true, times: 40 }, { route: IAM_ROUTE, status: 502, times: 10 }, { route: JWT_ROUTE, status: 429, times: 10 }] },
];

let stack: Stack;
let http: Listening;
const unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => void unhandled.push(e);

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  // A short upstream timeout so that the latency faults bite in a short run. The circuit
  // breaker stays out of the way (tested on its own): every fault is met in order.
  stack = await startStack((c) => ({ upstream: { ...c.upstream, timeoutMs: 1_000 } }));
  http = await listen(stack.gateway);
});
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await http?.close();
  await stack?.close();
});

/** Sends requests [from, to) with CONCURRENCY workers; returns status and error-code counts. */
async function run(from: number, to: number, onIndex: (i: number) => void = () => {}) {
  const statuses = new Map<number, number>();
  const codes = new Map<string, number>();
  const problems: string[] = [];
  let next = from;
  const worker = async () => {
    for (let i = next++; i < to; i = next++) {
      onIndex(i);
      const sent = request(i);
      const res = await fetch(http.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...sent.headers },
        body: JSON.stringify(sent.body),
      });
      const text = await res.text();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      try {
        for (const e of contractErrors(JSON.parse(text))) codes.set(e.extensions.code, (codes.get(e.extensions.code) ?? 0) + 1);
        if (res.status >= 500) problems.push(`HTTP ${res.status}: ${text.slice(0, 200)}`);
      } catch (e) {
        problems.push(`HTTP ${res.status} ${(e as Error).message}: ${text.slice(0, 200)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return { statuses, codes, problems };
}

const heapMb = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
};

describe(`mixed load: ${TOTAL} requests, ${CONCURRENCY} concurrent, with upstream faults`, () => {
  let result: Awaited<ReturnType<typeof run>>;
  let heapBefore: number;
  let heapAfter: number;

  beforeAll(async () => {
    await run(0, WARM_UP);
    heapBefore = heapMb();
    const pending = [...PHASES];
    result = await run(WARM_UP, WARM_UP + TOTAL, (i) => {
      while (pending.length && i - WARM_UP >= pending[0]!.at) for (const f of pending.shift()!.faults) stack.emulator.inject({ ...f });
    });
    heapAfter = heapMb();
  }, 120_000);

  it('no 5xx: every answer is 200 or 4xx, JSON, with contract error codes only', () => {
    expect(result.problems.slice(0, 5)).toEqual([]);
    for (const status of result.statuses.keys()) expect([200, 400]).toContain(status);
    expect([...result.statuses.values()].reduce((a, b) => a + b, 0)).toBe(TOTAL);
    for (const code of result.codes.keys()) expect(CONTRACT_CODES).toContain(code);
  });

  it('the faults were felt and typed: unavailable, timeout and unreadable upstreams all showed up', () => {
    expect(stack.emulator.state.faults).toEqual([]); // every injected fault met a request
    expect(result.codes.get('UPSTREAM_UNAVAILABLE') ?? 0).toBeGreaterThan(0);
    expect(result.codes.get('UPSTREAM_TIMEOUT') ?? 0).toBeGreaterThan(0);
    expect(result.codes.get('UPSTREAM_ERROR') ?? 0).toBeGreaterThan(0);
    expect(result.codes.get('INTERNAL_SERVER_ERROR') ?? 0).toBe(0);
  });

  it('no unhandled rejection during the run, and no masked unexpected error in the logs', () => {
    expect(unhandled).toEqual([]);
    expect(stack.logs.filter((l) => l.includes('"unexpected error"')).slice(0, 3)).toEqual([]);
  });

  it(`heap growth across the run stays under ${HEAP_BOUND_MB} MB (after a full GC, measured after a warm-up)`, () => {
    expect(heapAfter - heapBefore).toBeLessThan(HEAP_BOUND_MB);
  });

  it('afterwards, with the faults used up, the gateway serves normally', async () => {
    stack.emulator.reset();
    const r = await stack.gql(TOKENS, { consumerId: DEMO_CONSUMERS.small, first: 5 });
    expect(r.errors).toBeUndefined();
    expect(r.data.instance.authenticationTokens.totalCount).toBe(3);
  });
});
