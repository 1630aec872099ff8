// examples/lease.ts (typed with gql.tada, streamed with graphql-sse's client) against a gateway on
// the emulator with 3 s STS credentials: it prints each renewal, masks the secrets, and leaving
// its loop ends the lease.
import { afterAll, beforeAll, expect, test } from 'vitest';
import { LeaseEndedError, lease, leaseOptionsFromEnv } from '../../examples/lease.ts';
import { eventually, startLeaseStack, type LeaseStack } from './helpers.ts';

let s: LeaseStack;
beforeAll(async () => {
  s = await startLeaseStack();
});
afterAll(async () => s?.close());

test('prints each credential of the lease as it is renewed, without its secret', async () => {
  const lines: string[] = [];
  const events = await lease({ ...leaseOptionsFromEnv({ GATEWAY_URL: s.url }), events: 2 }, (l) => lines.push(l));
  expect(events.map((e) => e.sequence)).toEqual([1, 2]);
  expect(lines).toHaveLength(2);
  expect(lines[1]).toMatch(/^#2 demo-readonly \(ALIBABA_CLOUD\): STS\.\w+, secret \w{8}… \(44 chars\), expires .+, next renewal .+$/);
  for (const e of events) expect(lines.join('\n')).not.toContain(e.accessCredential.alibabaCloudStsToken!.accessKeySecret);
  await eventually(() => s.stack.gateway.services.leases.size === 0, 1_000, 'the lease ending once the loop is left');
});

test('a lease that ends with an error surfaces its contract code', async () => {
  const err = await lease({ ...leaseOptionsFromEnv({ GATEWAY_URL: s.url }), accessToken: 'not-a-valid-token', events: 1 }, () => {}).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(LeaseEndedError);
  expect((err as LeaseEndedError).code).toBe('UNAUTHENTICATED');
});
