// Credential leases over WebSocket (graphql-ws's client on the `ws` package, subprotocol
// graphql-transport-ws), on the gateway's own port and path.
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Client } from 'graphql-ws';
import { DEMO_INSTANCE_ID } from '../../src/emulator/fixtures.ts';
import { LEASE, ROLE, eventually, leaseOf, mintCalls, sleep, startLeaseStack, wsClient, wsLease, wsUrl, type LeaseStack } from './helpers.ts';

const APP_ORIGIN = 'https://app.example.com';
let s: LeaseStack;
const clients: Client[] = [];
const client = (options?: Parameters<typeof wsClient>[1]) => {
  const c = wsClient(s.url, options);
  clients.push(c);
  return c;
};

beforeAll(async () => {
  s = await startLeaseStack(() => ({ corsOrigins: [APP_ORIGIN] }));
});
afterAll(async () => {
  await s?.close();
});
beforeEach(async () => {
  for (const c of clients.splice(0)) await c.dispose();
  await eventually(() => s.stack.gateway.services.leases.size === 0, 2_000, 'the previous test’s leases ending');
  s.stack.emulator.reset();
});

/** The upgrade's outcome for these headers: 101 (open) or the refusal's status. */
function upgrade(headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(s.url), 'graphql-transport-ws', { headers });
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('error', (e) => reject(e));
  });
}

describe('over WebSocket', () => {
  it('a lease with the token in connection_init renews, and `complete` stops it at once', async () => {
    const sub = wsLease(client(), { role: ROLE, duration: 900 });
    const first = leaseOf(await sub.nth(1));
    expect(first.sequence).toBe(1);
    const second = await sub.nth(2);
    expect(leaseOf(second).sequence).toBe(2);
    expect(second.at).toBeLessThan(Date.parse(first.accessCredential.expiresAt));
    sub.dispose();
    await eventually(() => s.stack.gateway.services.leases.size === 0, 1_000, 'the lease ending');
    const calls = mintCalls(s.stack);
    await sleep(2_500);
    expect(mintCalls(s.stack)).toBe(calls);
  });

  it('takes the token from the upgrade request’s Authorization header too', async () => {
    const sub = wsLease(client({ viaHeader: true }), { role: ROLE, duration: 900 });
    expect(leaseOf(await sub.nth(1)).sequence).toBe(1);
  });

  it('without a token: UNAUTHENTICATED, then complete, and no upstream call', async () => {
    const sub = wsLease(client({ authorization: '' }), { role: ROLE });
    const r = await sub.nth(1);
    expect(r.errors?.map((e) => e.extensions.code)).toEqual(['UNAUTHENTICATED']);
    expect(await sub.ended).toBeUndefined();
    expect(mintCalls(s.stack)).toBe(0);
  });

  it('an authorization that cannot be a header value closes the connection (4403)', async () => {
    const sub = wsLease(client({ authorization: 'Bearer a\nb' }), { role: ROLE });
    const ended = (await sub.ended) as { code?: number };
    expect(ended?.code).toBe(4403);
    expect(mintCalls(s.stack)).toBe(0);
  });

  it('a persistent 403 ends the lease with FORBIDDEN', async () => {
    const sub = wsLease(client(), { role: ROLE, duration: 900 });
    await sub.nth(1);
    s.stack.emulator.inject({ route: 'idaas.obtainAccessCredential', status: 403 });
    const last = await sub.nth(2);
    expect(last.errors?.map((e) => e.extensions.code)).toEqual(['FORBIDDEN']);
    expect(await sub.ended).toBeUndefined();
  });

  it('closing the connection ends its leases', async () => {
    const c = client();
    const subs = [wsLease(c, { role: ROLE, duration: 900 }), wsLease(c, { role: ROLE, duration: 900 })];
    await Promise.all(subs.map((sub) => sub.nth(1)));
    expect(s.stack.gateway.services.leases.size).toBe(2);
    await c.dispose();
    await eventually(() => s.stack.gateway.services.leases.size === 0, 1_000, 'the leases ending');
  });

  it('serves subscriptions only: a query is BAD_USER_INPUT', async () => {
    const errors = await new Promise<any>((resolve) => {
      client().subscribe({ query: `{ iamEndpoints { name } }` }, { next: () => {}, error: resolve, complete: () => resolve(undefined) });
    });
    expect(errors?.map((e: any) => e.extensions.code)).toEqual(['BAD_USER_INPUT']);
  });

  it('a document that does not validate is BAD_USER_INPUT', async () => {
    const errors = await new Promise<any>((resolve) => {
      client().subscribe(
        { query: `subscription { cloudAccountRoleCredentialLease(input: { instanceId: "${DEMO_INSTANCE_ID}", cloudAccountRoleExternalId: "${ROLE}" }) { nope } }` },
        { next: () => {}, error: resolve, complete: () => resolve(undefined) },
      );
    });
    expect(errors?.map((e: any) => e.extensions.code)).toEqual(['BAD_USER_INPUT']);
  });
});

describe('the upgrade’s Origin', () => {
  it('none (not a browser), the gateway’s own and a CORS_ORIGINS one are accepted; any other is refused (403) without a CSRF header', async () => {
    expect(await upgrade({})).toBe(101);
    expect(await upgrade({ origin: s.origin })).toBe(101);
    expect(await upgrade({ origin: APP_ORIGIN })).toBe(101);
    expect(await upgrade({ origin: 'https://evil.example.com' })).toBe(403);
    expect(await upgrade({ origin: 'null' })).toBe(403);
  });

  it('a lease from a foreign page never starts', async () => {
    const sub = wsLease(client({ origin: 'https://evil.example.com' }), { role: ROLE });
    const ended = (await sub.ended) as { code?: number; message?: string } | undefined;
    expect(ended).toBeDefined();
    expect(sub.received).toHaveLength(0);
    expect(mintCalls(s.stack)).toBe(0);
  });

  it('another path is not upgraded', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`${wsUrl(s.origin)}/elsewhere`, 'graphql-transport-ws');
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.once('open', () => resolve(101));
      ws.once('error', reject);
    });
    expect(status).toBe(404);
  });
});

describe('PERSISTED_OPERATIONS=only over WebSocket', () => {
  const hash = createHash('sha256').update(LEASE).digest('hex');
  let only: LeaseStack;
  beforeAll(async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'lease-persisted-')), 'manifest.json');
    writeFileSync(file, JSON.stringify({ [hash]: LEASE }));
    only = await startLeaseStack(() => ({ persistedOperations: { mode: 'only', file } }));
  });
  afterAll(async () => only?.close());

  it('runs a trusted document by its hash, and refuses any other (PERSISTED_ONLY)', async () => {
    const c = wsClient(only.url);
    try {
      const refused = await new Promise<any>((resolve) => {
        c.subscribe({ query: LEASE, variables: { role: ROLE } }, { next: () => {}, error: resolve, complete: () => resolve(undefined) });
      });
      expect(refused?.map((e: any) => [e.extensions.code, e.extensions.reason])).toEqual([['BAD_USER_INPUT', 'PERSISTED_ONLY']]);
      const first = await new Promise<any>((resolve, reject) => {
        const stop = c.subscribe(
          { query: '', variables: { role: ROLE, duration: 900 }, extensions: { persistedQuery: { version: 1, sha256Hash: hash } } },
          { next: (v) => (stop(), resolve(v)), error: reject, complete: () => {} },
        );
      });
      expect(first.data.cloudAccountRoleCredentialLease.sequence).toBe(1);
    } finally {
      await c.dispose();
    }
  });
});
