// The broker's Cedar policy engine, on the committed demo policy and on broken policy files an
// operator might write.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { PolicyEngine, PolicyError, type AccessRequest, type CedarAction } from '../../src/broker/policy.ts';
import {
  DEMO_CLOUD_ACCOUNT_ROLES,
  DEMO_CONSUMERS as CONSUMERS,
  DEMO_INSTANCE_ID as DEMO_INSTANCE,
  DEMO_OTHER_INSTANCE_ID as OTHER_INSTANCE,
} from '../../src/emulator/fixtures.ts';

const DEMO_POLICY = fileURLToPath(new URL('../../policies/demo.cedar', import.meta.url));
// The demo callers of the emulator's OIDC issuer.
const CALLERS = {
  admin: { subject: 'alice', groups: ['platform-admins'] },
  reader: { subject: 'bob', groups: ['readers'] },
};
const ROLES = {
  readonly: DEMO_CLOUD_ACCOUNT_ROLES.alibaba.cloudAccountRoleExternalId,
  admin: DEMO_CLOUD_ACCOUNT_ROLES.aws.cloudAccountRoleExternalId,
};
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

const list = (consumer: string, instanceId = DEMO_INSTANCE): AccessRequest => ({
  action: 'listAuthenticationTokens',
  resource: { type: 'Consumer', id: consumer, instanceId },
});
const mintJwt = (consumer: string): AccessRequest => ({
  action: 'obtainJwtAuthenticationToken',
  resource: { type: 'Consumer', id: consumer, instanceId: DEMO_INSTANCE },
});
const role = (id: string, durationSeconds: number): AccessRequest => ({
  action: 'obtainCloudAccountRoleAccessCredential',
  resource: { type: 'CloudAccountRole', id, instanceId: DEMO_INSTANCE },
  context: { durationSeconds },
});
const iam = (action: CedarAction, endpoint: string): AccessRequest => ({
  action,
  resource: { type: 'IamEndpoint', id: endpoint },
});

describe('the demo policy', () => {
  const engine = PolicyEngine.load(DEMO_POLICY);

  it('lets platform admins do everything', () => {
    const requests = [
      ...Object.values(CONSUMERS).flatMap((c) => [list(c), list(c, OTHER_INSTANCE), mintJwt(c)]),
      ...Object.values(ROLES).flatMap((r) => [role(r, 900), role(r, 14_400)]),
      iam('createIamToken', 'emulator'),
      iam('createScopedIamToken', 'emulator'),
      iam('createIamToken', 'another-endpoint'),
    ];
    for (const request of requests) expect(engine.isAllowed(CALLERS.admin, request), JSON.stringify(request)).toBe(true);
  });

  it('lets readers list one consumer on the demo instance, and mint nothing for it', () => {
    expect(engine.isAllowed(CALLERS.reader, list(CONSUMERS.medium))).toBe(true);
    expect(engine.isAllowed(CALLERS.reader, list(CONSUMERS.large))).toBe(false);
    expect(engine.isAllowed(CALLERS.reader, list(CONSUMERS.medium, OTHER_INSTANCE))).toBe(false);
    expect(engine.isAllowed(CALLERS.reader, mintJwt(CONSUMERS.medium))).toBe(false);
  });

  it('lets readers obtain the read-only role for at most one hour, and never the admin role', () => {
    expect(engine.isAllowed(CALLERS.reader, role(ROLES.readonly, 3600))).toBe(true);
    expect(engine.isAllowed(CALLERS.reader, role(ROLES.readonly, 3601))).toBe(false);
    expect(engine.isAllowed(CALLERS.reader, role(ROLES.admin, 900))).toBe(false);
  });

  it('lets a forbid win over the admins’ permit: no role credential beyond 4 hours', () => {
    expect(engine.isAllowed(CALLERS.admin, role(ROLES.admin, 14_400))).toBe(true);
    expect(engine.isAllowed(CALLERS.admin, role(ROLES.admin, 14_401))).toBe(false);
    expect(engine.isAllowed(CALLERS.admin, role(ROLES.readonly, 43_200))).toBe(false);
  });

  it('denies by default: an unknown group gets only what everybody gets', () => {
    const stranger = { subject: 'carol', groups: ['contractors'] };
    expect(engine.isAllowed(stranger, list(CONSUMERS.medium))).toBe(false);
    expect(engine.isAllowed(stranger, role(ROLES.readonly, 900))).toBe(false);
    expect(engine.isAllowed(stranger, iam('createScopedIamToken', 'emulator'))).toBe(true);
    expect(engine.isAllowed(stranger, iam('createIamToken', 'another-endpoint'))).toBe(false);
  });

  it('takes authority from the groups claim, not from the subject', () => {
    expect(engine.isAllowed({ subject: 'alice', groups: [] }, mintJwt(CONSUMERS.large))).toBe(false);
    expect(engine.isAllowed({ subject: 'dave', groups: ['readers', 'platform-admins'] }, mintJwt(CONSUMERS.large))).toBe(true);
  });

  it('denies when a policy cannot be evaluated (a role request without durationSeconds)', () => {
    const noDuration: AccessRequest = { ...role(ROLES.admin, 0), context: {} };
    expect(engine.isAllowed(CALLERS.admin, noDuration)).toBe(false);
  });

  it('answers a repeated request from its cache with the same decision, keyed on every input', () => {
    for (let i = 0; i < 3; i++) {
      expect(engine.isAllowed(CALLERS.reader, role(ROLES.readonly, 3600))).toBe(true);
      expect(engine.isAllowed(CALLERS.reader, role(ROLES.readonly, 3601))).toBe(false);
      // Same subject, other groups; same ids spread differently across fields.
      expect(engine.isAllowed({ subject: 'bob', groups: [] }, role(ROLES.readonly, 3600))).toBe(false);
      expect(engine.isAllowed({ subject: 'bob', groups: ['readers', ''] }, role(ROLES.readonly, 3600))).toBe(true);
      expect(engine.isAllowed({ subject: 'bob","readers', groups: [] }, role(ROLES.readonly, 3600))).toBe(false);
    }
  });
});

describe('loading a policy file', () => {
  it.each([
    ['syntax-error.cedar', 7, 31, /unexpected token `}`/],
    ['entity-type-typo.cedar', 4, 22, /unrecognized entity type `Usr`; did you mean `User`\?/],
    ['unknown-action.cedar', 5, 13, /unrecognized action `Action::"listTokens"`/],
  ])('rejects %s with one line naming the file, line and column', (name, line, col, problem) => {
    const file = fixture(name);
    let error: unknown;
    try {
      PolicyEngine.load(file);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(PolicyError);
    const message = (error as PolicyError).message;
    expect(message.startsWith(`${file}:${line}:${col}: `), message).toBe(true);
    expect(message).toMatch(problem);
    expect(message).not.toContain('\n');
  });

  it('rejects a missing file with its path', () => {
    expect(() => PolicyEngine.load('/nonexistent/policy.cedar')).toThrow(
      /^\/nonexistent\/policy\.cedar: cannot be read \(ENOENT\)$/,
    );
  });
});

describe('reloading', () => {
  const dir = mkdtempSync(join(tmpdir(), 'policy-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const READERS_LIST = `permit (principal in Group::"readers", action == Action::"listAuthenticationTokens", resource);\n`;
  const ADMINS_ONLY = `permit (principal in Group::"platform-admins", action, resource);\n`;

  it('switches to the new policy and forgets cached decisions', () => {
    const file = join(dir, 'switch.cedar');
    writeFileSync(file, ADMINS_ONLY);
    const engine = PolicyEngine.load(file);
    expect(engine.isAllowed(CALLERS.reader, list(CONSUMERS.large))).toBe(false);

    writeFileSync(file, READERS_LIST);
    // Not re-read until reload().
    expect(engine.isAllowed(CALLERS.reader, list(CONSUMERS.large))).toBe(false);
    expect(engine.reload()).toEqual({ ok: true });
    expect(engine.isAllowed(CALLERS.reader, list(CONSUMERS.large))).toBe(true);
    expect(engine.isAllowed(CALLERS.admin, list(CONSUMERS.large))).toBe(false);

    // And back, through the other preparsed slot.
    writeFileSync(file, ADMINS_ONLY);
    expect(engine.reload()).toEqual({ ok: true });
    expect(engine.isAllowed(CALLERS.reader, list(CONSUMERS.large))).toBe(false);
    expect(engine.isAllowed(CALLERS.admin, list(CONSUMERS.large))).toBe(true);
  });

  it('keeps the old policy when the new one is broken, and says why in one line', () => {
    const file = join(dir, 'broken.cedar');
    writeFileSync(file, READERS_LIST);
    const engine = PolicyEngine.load(file);
    expect(engine.isAllowed(CALLERS.reader, list(CONSUMERS.large))).toBe(true);

    writeFileSync(file, `${READERS_LIST}\npermit (principal, action == Action::"listTokens", resource);\n`);
    const result = engine.reload();
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error).toMatch(new RegExp(`^${file}:3:30: unrecognized action`));
    expect(engine.isAllowed(CALLERS.reader, list(CONSUMERS.large))).toBe(true);
    expect(engine.isAllowed(CALLERS.reader, list(CONSUMERS.small))).toBe(true);

    rmSync(file);
    expect(engine.reload()).toEqual({ ok: false, error: `${file}: cannot be read (ENOENT)` });
    expect(engine.isAllowed(CALLERS.reader, list(CONSUMERS.medium))).toBe(true);
  });

  it('keeps engines apart: each has its own preparsed policies', () => {
    const a = join(dir, 'a.cedar');
    const b = join(dir, 'b.cedar');
    writeFileSync(a, ADMINS_ONLY);
    writeFileSync(b, READERS_LIST);
    const first = PolicyEngine.load(a);
    const second = PolicyEngine.load(b);
    expect(first.reload()).toEqual({ ok: true });
    expect(first.isAllowed(CALLERS.reader, list(CONSUMERS.large))).toBe(false);
    expect(second.isAllowed(CALLERS.reader, list(CONSUMERS.large))).toBe(true);
  });
});
