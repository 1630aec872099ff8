/**
 * Sanity check of the real Keystone started by test/keystone/global-setup.ts,
 * over raw HTTP (no gateway code): proves the server, the seed and MFA work.
 */
import { authenticator } from 'otplib';
import { describe, expect, inject, it } from 'vitest';
import type { KeystoneInfo } from './keystone-info.ts';

const ks: KeystoneInfo = inject('keystone');
if (!ks?.url) {
  throw new Error("no Keystone provided: add 'test/keystone/global-setup.ts' to test.globalSetup in the vitest config");
}

interface TokenBody {
  token: {
    methods: string[];
    user: { id: string; name: string; domain: { id: string; name: string } };
    project?: { id: string; name: string; domain: { id: string; name: string } };
    domain?: { id: string; name: string };
    roles?: { id: string; name: string }[];
    catalog?: { type: string; endpoints: { interface: string; url: string; region: string }[] }[];
    expires_at: string;
    issued_at: string;
  };
}

interface ReceiptBody {
  receipt: {
    methods: string[];
    user: { id: string; name: string };
    expires_at: string;
    issued_at: string;
  };
  required_auth_methods: string[][];
}

async function authTokens(body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${ks.url}/v3/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  return { res, body: (await res.json()) as unknown };
}

const passwordOf = (name: string, password: string) => ({
  user: { name, password, domain: { name: ks.domain.name } },
});

describe('real Keystone (raw HTTP)', () => {
  it('answers GET /v3', async () => {
    const res = await fetch(`${ks.url}/v3`, { signal: AbortSignal.timeout(5_000) });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { version: { id: string; status: string } };
    expect(body.version.id).toMatch(/^v3\./);
  });

  it('issues an unscoped password token (201 + X-Subject-Token)', async () => {
    const u = ks.users.password;
    const { res, body } = await authTokens({
      auth: { identity: { methods: ['password'], password: passwordOf(u.name, u.password) } },
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('x-subject-token')).toMatch(/^gAAAAA/); // Fernet
    const { token } = body as TokenBody;
    expect(token.methods).toEqual(['password']);
    expect(token.user).toMatchObject({ id: u.id, name: u.name, domain: { id: ks.domain.id } });
    const ttl = (Date.parse(token.expires_at) - Date.parse(token.issued_at)) / 1000;
    expect(ttl).toBe(ks.tokenTtlSeconds);
  });

  it('issues a project-scoped token by project and domain name', async () => {
    const u = ks.users.password;
    const { res, body } = await authTokens({
      auth: {
        identity: { methods: ['password'], password: passwordOf(u.name, u.password) },
        scope: { project: { name: ks.project.name, domain: { name: ks.domain.name } } },
      },
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('x-subject-token')).toBeTruthy();
    const { token } = body as TokenBody;
    expect(token.project).toMatchObject({ id: ks.project.id, name: ks.project.name, domain: { id: ks.domain.id } });
    expect(token.roles?.map((r) => r.name)).toContain(ks.role.name);
    const identity = token.catalog?.find((s) => s.type === 'identity');
    expect(identity?.endpoints.find((e) => e.interface === 'public')?.url).toBe(`${ks.authUrl}/`);
  });

  it('issues a domain-scoped token', async () => {
    const u = ks.users.password;
    const { res, body } = await authTokens({
      auth: {
        identity: { methods: ['password'], password: { user: { id: u.id, password: u.password } } },
        scope: { domain: { id: ks.domain.id } },
      },
    });
    expect(res.status).toBe(201);
    expect((body as TokenBody).token.domain).toEqual({ id: ks.domain.id, name: ks.domain.name });
  });

  it('rejects a wrong password with 401', async () => {
    const u = ks.users.password;
    const { res } = await authTokens({
      auth: { identity: { methods: ['password'], password: passwordOf(u.name, `${u.password}x`) } },
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('x-subject-token')).toBeNull();
  });

  it('answers the MFA user without a passcode with 401 + Openstack-Auth-Receipt', async () => {
    const u = ks.users.mfa;
    const { res, body } = await authTokens({
      auth: { identity: { methods: ['password'], password: passwordOf(u.name, u.password) } },
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('openstack-auth-receipt')).toBeTruthy();
    expect(res.headers.get('x-subject-token')).toBeNull();
    const receipt = body as ReceiptBody;
    expect(receipt.receipt.methods).toEqual(['password']);
    expect(receipt.receipt.user.id).toBe(u.id);
    expect(receipt.required_auth_methods).toHaveLength(1);
    expect([...(receipt.required_auth_methods[0] ?? [])].sort()).toEqual(['password', 'totp']);
  });

  it('issues a project-scoped token to the MFA user with password + totp', async () => {
    const u = ks.users.mfa;
    const { res, body } = await authTokens({
      auth: {
        identity: {
          methods: ['password', 'totp'],
          password: passwordOf(u.name, u.password),
          totp: { user: { id: u.id, passcode: authenticator.generate(u.totpSecret) } },
        },
        scope: { project: { id: ks.project.id } },
      },
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('x-subject-token')).toBeTruthy();
    const { token } = body as TokenBody;
    expect([...token.methods].sort()).toEqual(['password', 'totp']); // a set: any order
    expect(token.user.id).toBe(u.id);
    expect(token.project?.id).toBe(ks.project.id);
  });

  it('completes MFA with a receipt: password first, then totp + Openstack-Auth-Receipt', async () => {
    const u = ks.users.mfa;
    const first = await authTokens({
      auth: { identity: { methods: ['password'], password: passwordOf(u.name, u.password) } },
    });
    expect(first.res.status).toBe(401);
    const receipt = first.res.headers.get('openstack-auth-receipt');
    expect(receipt).toBeTruthy();
    const second = await authTokens(
      {
        auth: {
          identity: {
            methods: ['totp'],
            totp: { user: { id: u.id, passcode: authenticator.generate(u.totpSecret) } },
          },
        },
      },
      { 'openstack-auth-receipt': receipt ?? '' },
    );
    expect(second.res.status).toBe(201);
    expect([...(second.body as TokenBody).token.methods].sort()).toEqual(['password', 'totp']);
  });

  it('rejects the MFA user with a wrong passcode', async () => {
    const u = ks.users.mfa;
    const good = authenticator.generate(u.totpSecret);
    const bad = String((Number(good) + 500_000) % 1_000_000).padStart(6, '0');
    const { res } = await authTokens({
      auth: {
        identity: {
          methods: ['password', 'totp'],
          password: passwordOf(u.name, u.password),
          totp: { user: { id: u.id, passcode: bad } },
        },
      },
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('x-subject-token')).toBeNull();
  });

  it('validates a token (GET /v3/auth/tokens) and 404s a garbage one', async () => {
    const u = ks.users.password;
    const issued = await authTokens({
      auth: { identity: { methods: ['password'], password: passwordOf(u.name, u.password) } },
    });
    const token = issued.res.headers.get('x-subject-token') ?? '';
    const ok = await fetch(`${ks.url}/v3/auth/tokens`, {
      headers: { 'x-auth-token': token, 'x-subject-token': token },
      signal: AbortSignal.timeout(15_000),
    });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as TokenBody).token.user.id).toBe(u.id);
    const garbage = await fetch(`${ks.url}/v3/auth/tokens`, {
      headers: { 'x-auth-token': token, 'x-subject-token': 'gAAAAABnot-a-real-token' },
      signal: AbortSignal.timeout(15_000),
    });
    expect(garbage.status).toBe(404);
  });
});
