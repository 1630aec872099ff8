// Credential leases in broker mode: every renewal is a mint, authorized by the Cedar policy and
// audited (decision line, then outcome line), each with its own request id `<lease request id>:<n>`;
// a policy reload that denies ends the lease at its next renewal; the limit counts the caller's subject.
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DEMO_CALLERS } from '../../src/emulator/fixtures.ts';
import { auditFingerprint, brokerAuth, readAuditLines } from '../helpers.ts';
import { ROLE, endLeases, eventually, leaseOf, mintCalls, sseLease, startLeaseStack, wsClient, wsLease, type LeaseStack, type Subscription } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'lease-broker-'));
const auditFile = join(dir, 'audit.log');
const policyFile = join(dir, 'policy.cedar');
copyFileSync('policies/demo.cedar', policyFile);
const demoPolicy = readFileSync(policyFile, 'utf8');

let s: LeaseStack;
const open: Subscription[] = [];

beforeAll(async () => {
  s = await startLeaseStack((_c, emulator) => ({ auth: brokerAuth(emulator, { auditLog: auditFile, policyFile }), maxLeasesPerCaller: 2 }));
});
afterAll(async () => {
  await s?.close();
});
beforeEach(async () => {
  await endLeases(s, open);
  writeFileSync(policyFile, demoPolicy);
  expect(s.stack.gateway.services.broker!.policy.reload()).toEqual({ ok: true });
});

const { reader } = DEMO_CALLERS;
let nonce = 0;
const bearer = async (c: { subject: string; groups: string[] }) => `Bearer ${await s.stack.emulator.oidc.sign({ sub: c.subject, groups: c.groups, nonce: ++nonce })}`;
const lease = async (c = reader, variables: Record<string, unknown> = { role: ROLE, duration: 3600 }) => {
  const sub = sseLease(s.url, variables, { authorization: await bearer(c) });
  open.push(sub);
  return sub;
};

const auditLines = () => readAuditLines(auditFile);
const fingerprint = auditFingerprint;

describe('broker mode', () => {
  it('audits every renewal like a mint: a decision, then the outcome with the fingerprint of the credential handed out', async () => {
    const before = auditLines().length;
    const sub = await lease();
    const events = [leaseOf(await sub.nth(1)), leaseOf(await sub.nth(2)), leaseOf(await sub.nth(3))];
    sub.dispose();
    await eventually(() => s.stack.gateway.services.leases.size === 0, 1_000, 'the lease ending');
    const lines = auditLines().slice(before);
    expect(lines).toHaveLength(6);
    const leaseId = lines[0]!.requestId.replace(/:1$/, '');
    events.forEach((event, i) => {
      const [decision, outcome] = lines.slice(2 * i, 2 * i + 2);
      expect(decision).toMatchObject({
        event: 'decision',
        requestId: `${leaseId}:${i + 1}`,
        caller: { subject: 'bob' },
        action: 'obtainCloudAccountRoleAccessCredential',
        decision: 'allow',
        outcome: 'pending',
      });
      expect(outcome).toMatchObject({ event: 'outcome', requestId: `${leaseId}:${i + 1}`, outcome: 'issued' });
      expect(outcome!.credentialFingerprint).toBe(fingerprint(event.accessCredential.alibabaCloudStsToken!.accessKeySecret));
    });
    expect(readFileSync(auditFile, 'utf8')).not.toContain(events[0]!.accessCredential.alibabaCloudStsToken!.accessKeySecret);
  });

  it('a policy reload that denies ends the lease at its next renewal: FORBIDDEN (POLICY), audited, no upstream call', async () => {
    const sub = await lease();
    const first = await sub.nth(1);
    leaseOf(first);
    const calls = mintCalls(s.stack);
    // The readers' permit for the role goes.
    writeFileSync(policyFile, demoPolicy.replace(/permit \(\s*principal in Group::"readers",\s*action == Action::"obtainCloudAccountRoleAccessCredential"[\s\S]*?\};/, ''));
    expect(s.stack.gateway.services.broker!.policy.reload()).toEqual({ ok: true });
    const last = await sub.nth(2);
    expect(last.errors?.map((e) => [e.extensions.code, e.extensions.reason])).toEqual([['FORBIDDEN', 'POLICY']]);
    expect(await sub.ended).toBeUndefined();
    expect(mintCalls(s.stack)).toBe(calls);
    expect(auditLines().at(-1)).toMatchObject({ event: 'decision', decision: 'deny', outcome: 'denied', caller: { subject: 'bob' } });
  });

  it('asks the policy about the lease’s own duration: one the policy does not allow never starts', async () => {
    const sub = await lease(reader, { role: ROLE, duration: 7200 });
    const r = await sub.nth(1);
    expect(r.errors?.map((e) => [e.extensions.code, e.extensions.reason])).toEqual([['FORBIDDEN', 'POLICY']]);
    expect(mintCalls(s.stack)).toBe(0);
  });

  it('counts leases per subject (2 here), whatever token carries it, over SSE and WebSocket alike', async () => {
    const a = await lease();
    await a.nth(1);
    const ws = wsClient(s.url, { authorization: await bearer(reader) });
    try {
      const b = wsLease(ws, { role: ROLE, duration: 3600 });
      await b.nth(1);
      const third = await lease();
      expect((await third.nth(1)).errors?.map((e) => e.extensions.code)).toEqual(['RATE_LIMITED']);
      // Another subject is not counted with bob.
      const admin = await lease(DEMO_CALLERS.admin);
      expect(leaseOf(await admin.nth(1)).sequence).toBe(1);
    } finally {
      await ws.dispose();
    }
  });

  it('an invalid caller token ends the lease with UNAUTHENTICATED and calls nothing', async () => {
    const sub = sseLease(s.url, { role: ROLE, duration: 3600 }, { authorization: 'Bearer not-a-jwt' });
    open.push(sub);
    expect((await sub.nth(1)).errors?.map((e) => e.extensions.code)).toEqual(['UNAUTHENTICATED']);
    expect(mintCalls(s.stack)).toBe(0);
  });
});
