// SIGTERM with open leases, on the real `npm start` process (node --import tsx src/server.ts):
// each lease gets a final error event (UPSTREAM_UNAVAILABLE, reason SHUTTING_DOWN) and the end of
// its stream, the connections close, and the process exits 0 within the grace period.
import { describe, expect, it } from 'vitest';
import { start, urlOf, within } from '../spawn-gateway.ts';
import { ROLE, leaseOf, sseLease, wsClient, wsLease } from './helpers.ts';

describe('SIGTERM', () => {
  it('ends open leases (SSE and WebSocket) cleanly within the grace period, then exits 0', async () => {
    const r = start({ PORT: '0', EMULATOR_STS_TTL_SECONDS: '3', SHUTDOWN_GRACE_MS: '5000' });
    const url = await urlOf(r);
    const sse = sseLease(url, { role: ROLE, duration: 900 });
    const ws = wsClient(url);
    let closeCode: number | undefined;
    ws.on('closed', (e) => (closeCode = (e as { code?: number }).code));
    const overWs = wsLease(ws, { role: ROLE, duration: 900 });
    leaseOf(await sse.nth(1));
    leaseOf(await overWs.nth(1));

    const signalled = performance.now();
    r.proc.kill('SIGTERM');
    for (const sub of [sse, overWs]) {
      const last = await within(5_000, 'the final event', sub.nth(2));
      expect(last.data).toBeNull();
      expect(last.errors?.map((e) => [e.extensions.code, e.extensions.reason])).toEqual([['UPSTREAM_UNAVAILABLE', 'SHUTTING_DOWN']]);
      expect(await within(5_000, 'the end of the stream', sub.ended)).toBeUndefined();
    }
    expect(await within(6_000, 'exit after SIGTERM', r.exited)).toEqual({ code: 0, signal: null });
    expect(performance.now() - signalled).toBeLessThan(5_000);
    expect(closeCode).toBe(1001);
    expect(r.stdout() + r.stderr()).toContain('credential leases ended');
    await ws.dispose();
    sse.dispose();
  });
});
