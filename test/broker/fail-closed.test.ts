// The audit log fails closed: a mint whose decision line cannot be written calls no upstream,
// and a credential whose outcome line cannot be written is not handed out.
import { describe, expect, it } from 'vitest';
import { AuditLog, type AuditRecord } from '../../src/broker/audit.ts';
import { DEMO_CALLERS, DEMO_CLOUD_ACCOUNT_ROLES, DEMO_INSTANCE_ID } from '../../src/emulator/fixtures.ts';
import { brokerAuth, fieldFailure, fieldValue, useStack } from '../helpers.ts';

const ROLE = `mutation {
  obtainCloudAccountRoleAccessCredential(input: { instanceId: "${DEMO_INSTANCE_ID}", cloudAccountRoleExternalId: "${DEMO_CLOUD_ACCOUNT_ROLES.alibaba.cloudAccountRoleExternalId}" }) {
    accessCredential { alibabaCloudStsToken { accessKeySecret } }
  }
}`;

describe('an audit sink that cannot be written (/dev/full: opens, every write fails with ENOSPC)', () => {
  const stack = useStack((_c, emulator) => ({ auth: brokerAuth(emulator, { auditLog: '/dev/full' }) }));

  it('refuses the mint with AUDIT_UNAVAILABLE and calls no upstream to mint', async () => {
    const headers = { authorization: `Bearer ${await stack.emulator.oidc.sign({ sub: DEMO_CALLERS.admin.subject, groups: DEMO_CALLERS.admin.groups })}` };
    const r = await stack.gql(ROLE, {}, headers);
    const err = fieldFailure(r, 'INTERNAL_SERVER_ERROR', 'obtainCloudAccountRoleAccessCredential');
    expect(err.extensions.reason).toBe('AUDIT_UNAVAILABLE');
    expect(stack.emulator.counters()['idaas.obtainAccessCredential']?.requests ?? 0).toBe(0);
    expect(stack.logs.join('')).toMatch(/audit log write failed/);
    const metrics = await stack.gateway.services.metrics.registry.metrics();
    expect(metrics).toMatch(/^audit_write_failures_total 1$/m);
  });
});

/** The sink, except that its outcome lines fail, as a disk that fills up between the two writes would. */
function outcomeFails(real: AuditLog): AuditLog {
  const failing: Pick<AuditLog, 'write' | 'fingerprint' | 'close'> = {
    write: (record: Omit<AuditRecord, 'time'>) =>
      record.event === 'outcome' ? Promise.reject(new Error('ENOSPC: no space left on device')) : real.write(record),
    fingerprint: (secret) => real.fingerprint(secret),
    close: () => real.close(),
  };
  return failing as AuditLog;
}

describe('an outcome line that cannot be written', () => {
  const stack = useStack((_c, emulator) => ({ auth: brokerAuth(emulator, { auditLog: '/dev/null' }) }));

  it('keeps the minted credential from the caller', async () => {
    const broker = stack.gateway.services.broker!;
    broker.audit = outcomeFails(broker.audit);
    const headers = { authorization: `Bearer ${await stack.emulator.oidc.sign({ sub: DEMO_CALLERS.admin.subject, groups: DEMO_CALLERS.admin.groups })}` };
    const r = await stack.gql(ROLE, {}, headers);
    const err = fieldFailure(r, 'INTERNAL_SERVER_ERROR', 'obtainCloudAccountRoleAccessCredential');
    expect(err.extensions.reason).toBe('AUDIT_UNAVAILABLE');
    // The upstream did mint: the credential exists, but it was not handed out.
    expect(stack.emulator.counters()['idaas.obtainAccessCredential']?.requests).toBe(1);
    expect(JSON.stringify(r)).not.toMatch(/accessKeySecret/);
  });

  it('reads still work (they are not audited)', async () => {
    const headers = { authorization: `Bearer ${await stack.emulator.oidc.sign({ sub: DEMO_CALLERS.admin.subject, groups: DEMO_CALLERS.admin.groups })}` };
    const r = await stack.gql('{ viewer { subject } }', {}, headers);
    expect(fieldValue(r, 'viewer')).toEqual({ subject: 'alice' });
  });
});
