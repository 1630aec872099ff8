// `AUTH_MODE=broker npm start` as a real process: the whole demo flow on the embedded emulator,
// SIGHUP reloading the policy (a broken one keeps the old), and start-up refusing what it cannot run.
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { DEMO_CONSUMERS, DEMO_CREDENTIAL_PROVIDERS, DEMO_INSTANCE_ID } from '../../src/emulator/fixtures.ts';
import { start, urlOf, within, type Running } from '../spawn-gateway.ts';

const dir = mkdtempSync(join(tmpdir(), 'broker-process-'));

/** The demo JWT `npm start` printed for a caller. */
function printedToken(r: Running, subject: string): string {
  const m = new RegExp(`  ${subject} \\([^)]*\\):\\n    Authorization: Bearer (\\S+)`).exec(r.stdout());
  if (!m) throw new Error(`no token printed for ${subject}: ${r.stdout()}`);
  return m[1]!;
}

async function gql(url: string, token: string, query: string) {
  const res = await within(10_000, 'a query', fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query }),
  }));
  return (await res.json()) as { data: any; errors?: { extensions: Record<string, unknown> }[] };
}

const list = (consumerId: string) =>
  `{ instance(instanceId: "${DEMO_INSTANCE_ID}") { authenticationTokens(consumerId: "${consumerId}", credentialProviderIdentifier: "${DEMO_CREDENTIAL_PROVIDERS.jwt.identifier}") { totalCount } } }`;

/** Waits until the process has logged a line matching `pattern`. */
const logged = (r: Running, pattern: RegExp) =>
  within(10_000, `a log line ${pattern}`, new Promise<void>((resolve) => {
    const check = () => (pattern.test(r.stdout()) ? resolve() : setTimeout(check, 25));
    check();
  }));

describe('AUTH_MODE=broker npm start', () => {
  it('runs the demo flow on the emulator, and SIGHUP reloads the policy (a broken one keeps the old)', async () => {
    const policyFile = join(dir, 'policy.cedar');
    const auditLog = join(dir, 'audit.log');
    copyFileSync('policies/demo.cedar', policyFile);
    const r = start({ PORT: '0', AUTH_MODE: 'broker', POLICY_FILE: policyFile, AUDIT_LOG: auditLog });
    const url = await urlOf(r);
    expect(r.stdout()).toContain('Broker mode (demo)');
    const alice = printedToken(r, 'alice');
    const bob = printedToken(r, 'bob');

    expect((await gql(url, alice, '{ viewer { mode subject groups } }')).data.viewer).toEqual({ mode: 'BROKER', subject: 'alice', groups: ['platform-admins'] });
    const denied = await gql(url, bob, list(DEMO_CONSUMERS.small));
    expect(denied.errors?.map((e) => e.extensions.reason)).toEqual(['POLICY']);

    const demo = readFileSync(policyFile, 'utf8');
    writeFileSync(policyFile, `${demo}\npermit (principal == User::"bob", action == Action::"listAuthenticationTokens", resource);\n`);
    r.proc.kill('SIGHUP');
    await logged(r, /"msg":"policy reloaded"/);
    expect((await gql(url, bob, list(DEMO_CONSUMERS.small))).data.instance.authenticationTokens.totalCount).toBe(3);

    writeFileSync(policyFile, 'permit (principal, action == Action::"listTokens", resource);\n');
    r.proc.kill('SIGHUP');
    await logged(r, /"msg":"policy reload failed: the previous policy stays in force"/);
    expect(r.stdout()).toMatch(/policy\.cedar:1:\d+: unrecognized action .*listTokens/);
    expect((await gql(url, bob, list(DEMO_CONSUMERS.small))).data.instance.authenticationTokens.totalCount).toBe(3);

    r.proc.kill('SIGTERM');
    expect(await within(10_000, 'exit after SIGTERM', r.exited)).toEqual({ code: 0, signal: null });
    expect(readFileSync(auditLog, 'utf8')).toBe(''); // reads only: nothing minted, nothing audited
  });

  it('a policy that does not validate stops start-up with one line naming the file and the line', async () => {
    const policyFile = join(dir, 'typo.cedar');
    writeFileSync(policyFile, '// admins\npermit (principal in Gruop::"platform-admins", action, resource);\n');
    const r = start({ PORT: '0', AUTH_MODE: 'broker', POLICY_FILE: policyFile, AUDIT_LOG: join(dir, 'a.log') });
    expect(await within(20_000, 'exit', r.exited)).toEqual({ code: 2, signal: null });
    expect(r.stderr().trim().split('\n')).toEqual([expect.stringMatching(/^token-gateway: .*typo\.cedar:2:\d+: .*Gruop/)]);
    expect(r.stdout()).not.toMatch(/listening/);
  });

  it('an audit log that cannot be opened stops start-up', async () => {
    const r = start({ PORT: '0', AUTH_MODE: 'broker', AUDIT_LOG: join(dir, 'missing-dir', 'audit.log') });
    expect(await within(20_000, 'exit', r.exited)).toEqual({ code: 2, signal: null });
    expect(r.stderr()).toMatch(/^token-gateway: AUDIT_LOG.*missing-dir\/audit\.log/);
  });
});

describe('broker configuration', () => {
  const problems = (env: Record<string, string>) => {
    try {
      loadConfig(env);
    } catch (e) {
      if (e instanceof ConfigError) return e.problems;
      throw e;
    }
    return [];
  };

  it('without the emulator, every broker setting is required, one line each', () => {
    expect(problems({ EMULATOR: 'off', IDAAS_ENDPOINT: 'https://idaas.example', IAM_ENDPOINTS: 'a=https://iam.example', AUTH_MODE: 'broker' })).toEqual([
      'IDAAS_TOKEN_ENDPOINT: required when AUTH_MODE=broker',
      'IDAAS_CLIENT_ID: required when AUTH_MODE=broker',
      'IDAAS_CLIENT_SECRET: required when IDAAS_CLIENT_AUTH=client_secret_basic',
      'CALLER_ISSUER: required when AUTH_MODE=broker',
      'CALLER_AUDIENCE: required when AUTH_MODE=broker',
      'POLICY_FILE: required when AUTH_MODE=broker',
      'AUDIT_LOG: required when AUTH_MODE=broker',
      'AUDIT_HMAC_KEY: required when AUTH_MODE=broker',
    ]);
  });

  it('private_key_jwt needs the key file instead of the secret; bad values are named', () => {
    expect(
      problems({
        IDAAS_ENDPOINT: 'https://idaas.example',
        AUTH_MODE: 'broker',
        IDAAS_TOKEN_ENDPOINT: 'https://x.aliyunidaas.com/api/v2/iauths_system/oauth2/token',
        IDAAS_CLIENT_ID: 'app',
        IDAAS_CLIENT_AUTH: 'private_key_jwt',
        CALLER_ISSUER: 'https://login.example',
        CALLER_AUDIENCE: 'gw',
        POLICY_FILE: 'p.cedar',
        AUDIT_LOG: '-',
        AUDIT_HMAC_KEY: 'short',
      }),
    ).toEqual(['AUDIT_HMAC_KEY: must be at least 32 characters']);
    expect(problems({ AUTH_MODE: 'brokered', CALLER_ISSUER: 'not a url' })).toEqual([
      expect.stringMatching(/^AUTH_MODE: /),
      'CALLER_ISSUER: must be an http(s) URL',
    ]);
  });

  it('a complete broker configuration loads; forward stays the default', () => {
    expect(loadConfig({}).auth).toEqual({ mode: 'forward' });
    const c = loadConfig({
      EMULATOR: 'off',
      IDAAS_ENDPOINT: 'https://idaas.example',
      IAM_ENDPOINTS: 'a=https://iam.example',
      AUTH_MODE: 'broker',
      IDAAS_TOKEN_ENDPOINT: 'https://x.aliyunidaas.com/api/v2/iauths_system/oauth2/token',
      IDAAS_CLIENT_ID: 'app',
      IDAAS_CLIENT_SECRET: 's3cret',
      CALLER_ISSUER: 'https://login.example',
      CALLER_AUDIENCE: 'gw',
      POLICY_FILE: 'p.cedar',
      AUDIT_LOG: '-',
      AUDIT_HMAC_KEY: 'k'.repeat(32),
    });
    expect(c.auth).toMatchObject({ mode: 'broker', clientAuth: 'client_secret_basic', scope: 'urn:cloud:idaas:pam|.all', caller: { groupsClaim: 'groups' } });
  });
});
