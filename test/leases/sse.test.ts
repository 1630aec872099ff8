// Credential leases over GraphQL over SSE (graphql-sse's client, distinct connections mode),
// against the emulator with STS credentials that live 3 s: renewals every ~2 s.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DEMO_ACCESS_TOKENS, DEMO_CLOUD_ACCOUNT_ROLES } from '../../src/emulator/fixtures.ts';
import {
  AWS_ROLE,
  BEARER,
  ROLE,
  endLeases,
  eventually,
  leaseOf,
  metric,
  mintCalls,
  sleep,
  sseLease,
  startLeaseStack,
  type LeaseStack,
  type Subscription,
} from './helpers.ts';

let s: LeaseStack;
const open: Subscription[] = [];
const lease = (variables: Record<string, unknown>, headers?: Record<string, string>) => {
  const sub = sseLease(s.url, variables, headers);
  open.push(sub);
  return sub;
};

beforeAll(async () => {
  // A short request deadline: it bounds each renewal call, never the subscription.
  s = await startLeaseStack(() => ({ maxLeasesPerCaller: 3, requestDeadlineMs: 1_000 }));
});
afterAll(async () => {
  await s?.close();
});
beforeEach(async () => {
  await endLeases(s, open);
});

describe('a lease', () => {
  it('starts with a credential obtained at once, then renews it before it expires, at about 2/3 of its real lifetime', async () => {
    const started = Date.now();
    const sub = lease({ role: ROLE, duration: 900 });
    const first = leaseOf(await sub.nth(1));
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(first.sequence).toBe(1);
    expect(first.cloudAccountRole).toEqual({ externalId: ROLE, vendorType: 'ALIBABA_CLOUD' });
    // 900 s asked, 3 s given: the upstream's own expiration wins.
    const expiresAt = Date.parse(first.accessCredential.expiresAt);
    expect(expiresAt - started).toBeLessThanOrEqual(3_100);
    expect(first.accessCredential.expiresIn).toBeLessThanOrEqual(3);
    const lifetime = expiresAt - sub.received[0]!.at;
    const renewIn = Date.parse(first.renewsAt) - sub.received[0]!.at;
    expect(renewIn / lifetime).toBeGreaterThan(0.5);
    expect(renewIn / lifetime).toBeLessThan(0.72);

    const received = [first];
    for (const n of [2, 3]) {
      const r = await sub.nth(n);
      const event = leaseOf(r);
      const previous = received.at(-1)!;
      expect(event.sequence).toBe(n);
      // Delivered before the credential it replaces expired, not before it was planned.
      expect(r.at).toBeLessThan(Date.parse(previous.accessCredential.expiresAt));
      expect(r.at).toBeGreaterThanOrEqual(Date.parse(previous.renewsAt) - 50);
      expect(event.accessCredential.alibabaCloudStsToken!.accessKeyId).not.toBe(previous.accessCredential.alibabaCloudStsToken!.accessKeyId);
      received.push(event);
    }
    expect(mintCalls(s.stack)).toBe(3);
    expect(await metric(s.stack, 'credential_lease_renewals_total', { outcome: 'renewed' })).toBeGreaterThanOrEqual(2);
    expect(await metric(s.stack, 'credential_lease_renewal_margin_seconds')).toBeGreaterThanOrEqual(2);
    expect(await metric(s.stack, 'credential_leases_active')).toBe(1);
    sub.dispose();
    await eventually(async () => (await metric(s.stack, 'credential_leases_active')) === 0, 2_000, 'the active gauge back to 0');
  });

  it('counts from the earlier of the credential expiry and the STS token expiration', async () => {
    const now = Math.floor(Date.now() / 1000);
    const role = DEMO_CLOUD_ACCOUNT_ROLES.aws;
    const stsExpiration = new Date((now + 4) * 1000).toISOString();
    s.stack.emulator.inject({
      route: 'idaas.obtainAccessCredential',
      status: 200,
      times: 1,
      body: {
        cloudAccountId: role.cloudAccountId,
        cloudAccountRoleId: role.cloudAccountRoleId,
        cloudAccountRoleName: role.cloudAccountRoleName,
        cloudAccountRoleExternalId: role.cloudAccountRoleExternalId,
        cloudAccountVendorType: 'aws',
        cloudAccountRoleAccessCredential: {
          accessCredentialExpiresAt: now + 3600,
          awsStsToken: { accessKeyId: 'ASIAFIRSTFIRSTFIRST1', secretAccessKey: 'first-secret', sessionToken: 'first-session', expiration: stsExpiration },
        },
      },
    });
    const sub = lease({ role: AWS_ROLE, duration: 3600 });
    const first = leaseOf(await sub.nth(1));
    expect(first.accessCredential.expiresAt).toBe(stsExpiration);
    expect(Date.parse(first.renewsAt)).toBeLessThan(Date.parse(stsExpiration));
    const second = await sub.nth(2, 5_000);
    expect(second.at).toBeLessThan(Date.parse(stsExpiration));
    expect(leaseOf(second).accessCredential.awsStsToken!.accessKeyId).toMatch(/^ASIA/);
  });

  it('tries again after 503s, each time a new mint after a backoff, and delivers before the current credential expires', async () => {
    const sub = lease({ role: ROLE, duration: 900 });
    const first = leaseOf(await sub.nth(1));
    const retried = await metric(s.stack, 'credential_lease_renewals_total', { outcome: 'retried' });
    s.stack.emulator.inject({ route: 'idaas.obtainAccessCredential', status: 503, times: 2 });
    const second = await sub.nth(2);
    expect(leaseOf(second).sequence).toBe(2);
    expect(second.at).toBeLessThan(Date.parse(first.accessCredential.expiresAt));
    expect(mintCalls(s.stack)).toBe(4); // first, two 503s, the renewal
    expect(await metric(s.stack, 'credential_lease_renewals_total', { outcome: 'retried' })).toBe(retried + 2);
  });

  it('ends with the last error once the credential cannot be renewed before it expires (503s all along)', async () => {
    const sub = lease({ role: ROLE, duration: 900 });
    const first = leaseOf(await sub.nth(1));
    s.stack.emulator.inject({ route: 'idaas.obtainAccessCredential', status: 503 });
    const last = await sub.nth(2);
    expect(last.data).toBeNull();
    expect(last.errors?.map((e) => [e.extensions.code, e.path])).toEqual([['UPSTREAM_UNAVAILABLE', ['cloudAccountRoleCredentialLease']]]);
    expect(last.at).toBeLessThan(Date.parse(first.accessCredential.expiresAt) + 500);
    expect(await sub.ended).toBeUndefined(); // complete
    expect(mintCalls(s.stack)).toBeGreaterThan(2);
  });

  it('ends at once after a 403, with FORBIDDEN and then complete, and mints no more', async () => {
    const sub = lease({ role: ROLE, duration: 900 });
    await sub.nth(1);
    s.stack.emulator.inject({ route: 'idaas.obtainAccessCredential', status: 403 });
    const last = await sub.nth(2);
    expect(last.errors?.map((e) => e.extensions.code)).toEqual(['FORBIDDEN']);
    expect(last.errors?.[0]?.extensions.upstream).toMatchObject({ service: 'idaas', status: 403 });
    expect(await sub.ended).toBeUndefined();
    expect(mintCalls(s.stack)).toBe(2);
    await sleep(2_500);
    expect(mintCalls(s.stack)).toBe(2);
    expect(sub.received).toHaveLength(2);
  });

  it('gives each renewal call REQUEST_DEADLINE_MS (1 s here), not the subscription: a slow renewal is a timeout, tried again', async () => {
    s.stack.emulator.setStsTtlSeconds(6);
    const sub = lease({ role: ROLE, duration: 900 });
    const first = leaseOf(await sub.nth(1));
    s.stack.emulator.inject({ route: 'idaas.obtainAccessCredential', latencyMs: 1_500, times: 1 });
    const second = await sub.nth(2, 8_000);
    expect(leaseOf(second).sequence).toBe(2);
    expect(second.at).toBeLessThan(Date.parse(first.accessCredential.expiresAt));
    expect(mintCalls(s.stack)).toBe(3);
  });
});

describe('the client leaving', () => {
  it('stops renewal at once: no more upstream calls', async () => {
    const sub = lease({ role: ROLE, duration: 900 });
    await sub.nth(1);
    sub.dispose();
    await eventually(() => s.stack.gateway.services.leases.size === 0, 1_000, 'the lease ending');
    const calls = mintCalls(s.stack);
    await sleep(3_000); // past the renewal it had planned
    expect(mintCalls(s.stack)).toBe(calls);
  });

  it('aborts the renewal call in flight', async () => {
    const sub = lease({ role: ROLE, duration: 900 });
    await sub.nth(1);
    const aborted = await metric(s.stack, 'credential_lease_renewals_total', { outcome: 'aborted' });
    s.stack.emulator.inject({ route: 'idaas.obtainAccessCredential', latencyMs: 5_000, times: 1 });
    await eventually(() => (s.stack.emulator.counters()['idaas.obtainAccessCredential']?.inFlight ?? 0) === 1, 4_000, 'the renewal call in flight');
    const left = Date.now();
    sub.dispose();
    await eventually(async () => (await metric(s.stack, 'credential_lease_renewals_total', { outcome: 'aborted' })) === aborted + 1, 1_000, 'the call aborted');
    expect(Date.now() - left).toBeLessThan(1_000);
    expect(s.stack.gateway.services.leases.size).toBe(0);
  });
});

describe('MAX_LEASES_PER_CALLER (3 here)', () => {
  it('refuses a fourth lease of the same caller with RATE_LIMITED, without an upstream call; another caller and a freed slot are fine', async () => {
    const subs = [1, 2, 3].map(() => lease({ role: ROLE, duration: 900 }));
    await Promise.all(subs.map((sub) => sub.nth(1)));
    const calls = mintCalls(s.stack);

    const fourth = lease({ role: ROLE, duration: 900 });
    const refused = await fourth.nth(1);
    expect(refused.errors?.map((e) => [e.extensions.code, e.extensions.reason])).toEqual([['RATE_LIMITED', 'LEASE_LIMIT']]);
    expect(await fourth.ended).toBeUndefined();
    expect(mintCalls(s.stack)).toBe(calls);

    const other = lease({ role: ROLE, duration: 900 }, { authorization: `Bearer ${DEMO_ACCESS_TOKENS.mint.token}` });
    expect(leaseOf(await other.nth(1)).sequence).toBe(1);

    subs[0]!.dispose();
    await eventually(() => s.stack.gateway.services.leases.countFor(`authorization:${hash(BEARER)}`) === 2, 1_000, 'a slot freed');
    expect(leaseOf(await lease({ role: ROLE, duration: 900 }).nth(1)).sequence).toBe(1);
  });
});

describe('refusals before any upstream call', () => {
  it('without Authorization: UNAUTHENTICATED, then complete', async () => {
    const sub = lease({ role: ROLE }, {});
    const r = await sub.nth(1);
    expect(r.errors?.map((e) => e.extensions.code)).toEqual(['UNAUTHENTICATED']);
    expect(await sub.ended).toBeUndefined();
    expect(mintCalls(s.stack)).toBe(0);
  });

  it('a duration out of range: BAD_USER_INPUT', async () => {
    const sub = lease({ role: ROLE, duration: 60 });
    const r = await sub.nth(1);
    expect(r.errors?.map((e) => e.extensions.code)).toEqual(['BAD_USER_INPUT']);
    expect(mintCalls(s.stack)).toBe(0);
  });
});

describe('secrets', () => {
  it('no bearer token or STS secret appears in any log line', async () => {
    const sub = lease({ role: ROLE, duration: 900 });
    const events = [leaseOf(await sub.nth(1)), leaseOf(await sub.nth(2))];
    s.stack.emulator.inject({ route: 'idaas.obtainAccessCredential', status: 403 });
    await sub.ended;
    const logs = s.stack.logs.join('');
    expect(logs).toContain('credential lease ended');
    expect(logs).not.toContain(DEMO_ACCESS_TOKENS.full.token);
    for (const e of events) {
      const sts = e.accessCredential.alibabaCloudStsToken!;
      expect(logs).not.toContain(sts.accessKeySecret);
      expect(logs).not.toContain(sts.securityToken.slice(0, 40));
    }
  });
});

function hash(authorization: string) {
  return createHash('sha256').update(authorization).digest('base64url');
}
