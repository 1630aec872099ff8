// The broker's audit log: what lands in AUDIT_LOG, and what happens when it cannot.
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { AuditLog, type AuditRecord } from '../../src/broker/audit.ts';

const KEY = 'audit-test-hmac-key-0123456789abcdef';
const dir = mkdtempSync(join(tmpdir(), 'audit-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const decision: Omit<AuditRecord, 'time'> = {
  event: 'decision',
  requestId: 'req-1',
  caller: { issuer: 'https://issuer.example/oidc', subject: 'bob', groups: ['readers'] },
  action: 'obtainCloudAccountRoleAccessCredential',
  resource: { type: 'CloudAccountRole', id: 'acs:ram::1234567890123456:role/demo-readonly', instanceId: 'idaas_demo' },
  decision: 'allow',
  outcome: 'pending',
};

const lines = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '');

describe('AuditLog on a file', () => {
  it('appends one JSON object a line with the contract fields, to a file only its owner reads', async () => {
    const file = join(dir, 'audit.log');
    writeFileSync(file, '{"earlier":"line"}\n', { mode: 0o600 });
    const log = AuditLog.open(file, KEY);
    const secret = 'STS.AccessKeySecret/with+chars==';
    await log.write(decision);
    await log.write({
      ...decision,
      event: 'outcome',
      outcome: 'issued',
      upstreamRequestId: 'upstream-req-9',
      expiresAt: '2026-01-01T09:00:00.000Z',
      credentialFingerprint: log.fingerprint(secret),
    });
    await log.write({ ...decision, event: 'outcome', outcome: 'failed', errorCode: 'UPSTREAM_TIMEOUT' });
    await log.close();

    const [earlier, ...records] = lines(file).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(earlier).toEqual({ earlier: 'line' });
    expect(records).toHaveLength(3);
    for (const r of records) {
      expect(new Date(r.time as string).toISOString()).toBe(r.time);
      expect(r).toMatchObject({ requestId: 'req-1', caller: decision.caller, resource: decision.resource, decision: 'allow' });
    }
    expect(Object.keys(records[0]!)).toEqual(['time', 'event', 'requestId', 'caller', 'action', 'resource', 'decision', 'outcome']);
    expect(records[1]).toMatchObject({
      event: 'outcome',
      outcome: 'issued',
      upstreamRequestId: 'upstream-req-9',
      expiresAt: '2026-01-01T09:00:00.000Z',
      credentialFingerprint: `hmac-sha256:${createHmac('sha256', KEY).update(secret).digest('hex')}`,
    });
    expect(records[2]).toMatchObject({ outcome: 'failed', errorCode: 'UPSTREAM_TIMEOUT' });
    expect(readFileSync(file, 'utf8')).not.toContain(secret);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('writes only the listed fields, whatever else the record object carries', async () => {
    const file = join(dir, 'extra.log');
    const log = AuditLog.open(file, KEY);
    const wider = { ...decision, accessKeySecret: 'leak-me-not', caller: { ...decision.caller, token: 'eyJleak' } };
    await log.write(wider);
    await log.close();
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain('leak-me-not');
    expect(text).not.toContain('eyJleak');
  });

  it('computes fingerprints as HMAC-SHA256 under the key', () => {
    const log = AuditLog.open(join(dir, 'fp.log'), KEY);
    const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2lnbmF0dXJl';
    expect(log.fingerprint(jwt)).toBe(`hmac-sha256:${createHmac('sha256', KEY).update(jwt, 'utf8').digest('hex')}`);
    expect(AuditLog.open(join(dir, 'fp.log'), `${KEY}-other`).fingerprint(jwt)).not.toBe(log.fingerprint(jwt));
  });

  it('keeps concurrent lines whole', async () => {
    const file = join(dir, 'concurrent.log');
    const log = AuditLog.open(file, KEY);
    // Long lines (~20 KB) so that a write split anywhere would show.
    const groups = Array.from({ length: 1000 }, (_, i) => `group-${i}-${'x'.repeat(10)}`);
    await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        log.write({ ...decision, requestId: `req-${i}`, caller: { ...decision.caller, groups } }),
      ),
    );
    await log.close();
    const records = lines(file).map((l) => JSON.parse(l) as AuditRecord);
    expect(records.map((r) => r.requestId).sort()).toEqual(Array.from({ length: 200 }, (_, i) => `req-${i}`).sort());
    expect(records.every((r) => r.caller.groups.length === 1000)).toBe(true);
  });

  it('rejects write() when the sink cannot take the line, and keeps trying later lines', async () => {
    const log = AuditLog.open('/dev/full', KEY);
    await expect(log.write(decision)).rejects.toMatchObject({ code: 'ENOSPC' });
    await expect(log.write(decision)).rejects.toMatchObject({ code: 'ENOSPC' });
    await log.close();
    await expect(log.write(decision)).rejects.toThrow('audit log is closed');
  });

  it('refuses to open a path whose directory does not exist, naming the path', () => {
    const path = join(dir, 'missing', 'audit.log');
    expect(() => AuditLog.open(path, KEY)).toThrow(
      `AUDIT_LOG ${path} cannot be opened for appending: no such file or directory (ENOENT)`,
    );
  });

  it('refuses a short HMAC key without echoing it', () => {
    expect(() => AuditLog.open(join(dir, 'short.log'), 'short-key')).toThrow(/^AUDIT_HMAC_KEY must be at least 32 characters$/);
  });
});

describe('AuditLog on stdout', () => {
  afterEach(() => vi.restoreAllMocks());

  it('writes each line to stdout and waits for it', async () => {
    const written: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: Uint8Array, cb: (err?: Error | null) => void) => {
      written.push(Buffer.from(chunk).toString('utf8'));
      setImmediate(() => cb(null));
      return true;
    }) as never);
    const log = AuditLog.open('-', KEY);
    await log.write(decision);
    expect(written).toHaveLength(1);
    expect(written[0]!.endsWith('\n')).toBe(true);
    expect(JSON.parse(written[0]!)).toMatchObject({ event: 'decision', requestId: 'req-1' });
    await log.close();
  });

  it('rejects when stdout reports a failed write', async () => {
    vi.spyOn(process.stdout, 'write').mockImplementation(((_chunk: Uint8Array, cb: (err?: Error | null) => void) => {
      setImmediate(() => cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })));
      return false;
    }) as never);
    const log = AuditLog.open('-', KEY);
    await expect(log.write(decision)).rejects.toMatchObject({ code: 'EPIPE' });
  });
});
