// Starts the emulator and a gateway on it, captures every log line, and sends GraphQL
// through yoga.fetch (no socket) exactly as a client would.
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import type { AuditRecord } from '../src/broker/audit.ts';
import { afterAll, beforeAll, beforeEach, expect, vi } from 'vitest';
import { defaultConfig, type GatewayConfig } from '../src/config.ts';
import { createGateway, type Gateway } from '../src/gateway.ts';
import { createLogger } from '../src/logger.ts';
import { startEmulator, type Emulator, type EmulatorOptions } from '../src/emulator/index.ts';
import { DEMO_ACCESS_TOKENS } from '../src/emulator/fixtures.ts';
import { startBroker } from '../src/broker/index.ts';
import type { AuthConfig, BrokerConfig } from '../src/config.ts';
import { DEMO_CALLER_AUDIENCE, DEMO_M2M_CLIENT } from '../src/emulator/fixtures.ts';
import { IDAAS_TOKEN_PATH } from '../src/emulator/oauth.ts';

export interface Stack {
  emulator: Emulator;
  gateway: Gateway;
  /** Every log line the gateway wrote, raw. */
  logs: string[];
  gql<T = any>(query: string, variables?: Record<string, unknown>, headers?: Record<string, string>): Promise<GqlResult<T>>;
  close(): Promise<void>;
}

export interface GqlResult<T> {
  status: number;
  headers: Headers;
  data: T;
  errors?: { message: string; path?: (string | number)[]; extensions: Record<string, any> }[];
}

export const FULL = { authorization: `Bearer ${DEMO_ACCESS_TOKENS.full.token}` };

export async function startStack(
  overrides: (c: GatewayConfig, emulator: Emulator) => Partial<GatewayConfig> = () => ({}),
  emulatorOptions: EmulatorOptions = {},
): Promise<Stack> {
  const emulator = await startEmulator({ port: 0, ...emulatorOptions });
  const base = defaultConfig();
  const config: GatewayConfig = {
    ...base,
    logLevel: 'debug',
    idaas: { endpoint: emulator.url, instanceEndpoints: new Map() },
    iam: { endpoints: [{ name: 'emulator', url: emulator.url }] },
    // Tests that are not about them keep the breaker and the rate limit out of the way.
    upstream: {
      ...base.upstream,
      retry: { ...base.upstream.retry, baseMs: 5 },
      circuit: { ...base.upstream.circuit, failureThreshold: 1_000 },
    },
    rateLimit: { ...base.rateLimit, perMinute: 0 },
    iamGuard: { ...base.iamGuard, maxFailures: 0 },
  };
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  const final = { ...config, ...overrides(config, emulator) };
  const broker = final.auth.mode === 'broker' ? startBroker(final) : undefined;
  const gateway = createGateway(final, { logger: createLogger('trace', sink), broker });
  return {
    emulator,
    gateway,
    logs,
    gql: (query, variables, headers = FULL) => gql(gateway, query, variables, headers),
    close: async () => {
      await gateway.close();
      await emulator.close();
    },
  };
}

/**
 * For tests that make upstream calls retry again and again: a retry budget (tested on its own)
 * that never runs dry, so every request gets all the attempts it expects.
 */
export const unlimitedRetryBudget = (c: GatewayConfig): Partial<GatewayConfig> => ({
  upstream: { ...c.upstream, retry: { ...c.upstream.retry, budgetRatio: 1 } },
});

/**
 * A test file's emulator: started before its tests, closed after them, reset before each test.
 * Returns a stand-in that forwards to the running emulator.
 */
export function useEmulator(options: EmulatorOptions = {}): Emulator {
  let running: Emulator | undefined;
  beforeAll(async () => {
    running = await startEmulator({ port: 0, ...options });
  });
  afterAll(async () => {
    await running?.close();
  });
  beforeEach(() => running!.reset());
  return new Proxy({} as Emulator, {
    get(_target, key) {
      if (!running) throw new Error('the emulator starts in beforeAll: use it in a test or a hook');
      const value = running[key as keyof Emulator];
      return typeof value === 'function' ? value.bind(running) : value;
    },
  });
}

/**
 * A test file's usual stack: started before its tests, closed after them, the emulator reset
 * before each test. Returns a stand-in that forwards to the running stack.
 */
export function useStack(overrides?: (c: GatewayConfig, emulator: Emulator) => Partial<GatewayConfig>): Stack {
  let running: Stack | undefined;
  beforeAll(async () => {
    running = await startStack(overrides);
  });
  afterAll(async () => {
    await running?.close();
  });
  beforeEach(() => running!.emulator.reset());
  return new Proxy({} as Stack, {
    get(_target, key) {
      if (!running) throw new Error('the stack starts in beforeAll: use it in a test or a hook');
      return running[key as keyof Stack];
    },
  });
}

export async function gql<T = any>(
  gateway: Gateway,
  query: string,
  variables: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<GqlResult<T>> {
  const res = await gateway.fetch('http://gateway.test/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data: T; errors?: GqlResult<T>['errors'] };
  return { status: res.status, headers: res.headers, data: body.data, errors: body.errors };
}

/** The one error of a result, asserting there is exactly one. */
export function onlyError<T>(r: GqlResult<T>) {
  if (r.errors?.length !== 1) throw new Error(`expected one error, got ${JSON.stringify(r.errors)}`);
  return r.errors[0]!;
}

/** A field that succeeded: HTTP 200, no errors, a value; returns the value. */
export function fieldValue(r: GqlResult<any>, field: string) {
  expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
  expect(r.status).toBe(200);
  const value = r.data?.[field];
  expect(value).toBeTruthy();
  return value;
}

/** A field that failed: null, with exactly one error, of this code, at its path; returns the error. */
export function fieldFailure(r: GqlResult<any>, code: string, field: string) {
  const err = onlyError(r);
  expect(err.extensions.code, err.message).toBe(code);
  expect(err.path).toEqual([field]);
  expect(r.data?.[field]).toBeNull();
  return err;
}

/**
 * Date.now() moved forward by hand, for whole-gateway tests of the circuit breaker, the rate
 * limit and the sign-in guard. Each takes a `now` (driven directly in test/upstreams and
 * test/http) that defaults to Date.now, and createGateway gives them none: start this before
 * the stack (they read Date.now when they are made), advance() where a test would have slept,
 * restore() once the stack is closed. Real time still runs underneath.
 */
export function movableClock(): { advance(ms: number): void; restore(): void } {
  const realNow = Date.now;
  let offset = 0;
  const spy = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + offset);
  return {
    advance: (ms) => void (offset += ms),
    restore: () => spy.mockRestore(),
  };
}

/** An audit HMAC key for tests (the contract's minimum is 32 characters). */
export const TEST_AUDIT_KEY = 'test-audit-hmac-key-0123456789abcdef';

/** Every line of an audit log file, parsed. */
export const readAuditLines = (file: string): AuditRecord[] =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditRecord);

/** The fingerprint an audit line carries for `secret`, computed independently of src/broker/audit.ts. */
export const auditFingerprint = (secret: string) => `hmac-sha256:${createHmac('sha256', TEST_AUDIT_KEY).update(secret).digest('hex')}`;

/**
 * Broker mode on the emulator: its token endpoint and demo M2M client, its OIDC issuer for
 * callers, the repo's demo policy. `auditLog` is required: each suite reads its own.
 */
export function brokerAuth(emulator: Emulator, settings: Partial<BrokerConfig> & { auditLog: string }): AuthConfig {
  return {
    mode: 'broker',
    tokenEndpoint: `${emulator.url}${IDAAS_TOKEN_PATH}`,
    clientId: DEMO_M2M_CLIENT.clientId,
    clientSecret: DEMO_M2M_CLIENT.clientSecret,
    clientAuth: 'client_secret_basic',
    privateKeyFile: undefined,
    scope: 'urn:cloud:idaas:pam|.all',
    caller: { issuer: emulator.oidc.issuer, audience: DEMO_CALLER_AUDIENCE, jwksUrl: undefined, groupsClaim: 'groups' },
    policyFile: 'policies/demo.cedar',
    auditHmacKey: TEST_AUDIT_KEY,
    ...settings,
  };
}
