// Credential lease tests: a stack on a real socket (SSE and WebSocket on one port), a short
// upstream STS TTL, and clients of both transports built from the libraries (graphql-sse,
// graphql-ws + ws), each collecting what the gateway sent.
import { expect } from 'vitest';
import { createClient as createSseClient } from 'graphql-sse';
import { createClient as createWsClient, type Client as WsClient } from 'graphql-ws';
import WebSocket from 'ws';
import { DEMO_ACCESS_TOKENS, DEMO_CLOUD_ACCOUNT_ROLES, DEMO_INSTANCE_ID } from '../../src/emulator/fixtures.ts';
import type { GatewayConfig } from '../../src/config.ts';
import type { EmulatorOptions } from '../../src/emulator/index.ts';
import type { Stack } from '../helpers.ts';
import { startHttpGateway, type HttpGateway } from '../http-gateway.ts';

export const ROLE = DEMO_CLOUD_ACCOUNT_ROLES.alibaba.cloudAccountRoleExternalId;
export const AWS_ROLE = DEMO_CLOUD_ACCOUNT_ROLES.aws.cloudAccountRoleExternalId;
export const BEARER = `Bearer ${DEMO_ACCESS_TOKENS.full.token}`;

export const LEASE = `subscription Lease($role: String!, $duration: Int) {
  cloudAccountRoleCredentialLease(input: { instanceId: "${DEMO_INSTANCE_ID}", cloudAccountRoleExternalId: $role, durationSeconds: $duration }) {
    sequence
    renewsAt
    cloudAccountRole { externalId vendorType }
    accessCredential {
      expiresAt
      expiresIn
      alibabaCloudStsToken { accessKeyId accessKeySecret securityToken expiration }
      awsStsToken { accessKeyId secretAccessKey sessionToken expiration }
    }
  }
}`;

export interface LeaseEventData {
  sequence: number;
  renewsAt: string;
  cloudAccountRole: { externalId: string; vendorType: string };
  accessCredential: {
    expiresAt: string;
    expiresIn: number;
    alibabaCloudStsToken: { accessKeyId: string; accessKeySecret: string; securityToken: string; expiration: string } | null;
    awsStsToken: { accessKeyId: string; secretAccessKey: string; sessionToken: string; expiration: string } | null;
  };
}

export interface Received {
  /** Date.now() when the client received it. */
  at: number;
  data: { cloudAccountRoleCredentialLease: LeaseEventData } | null | undefined;
  errors?: { message: string; path?: string[]; extensions: Record<string, any> }[];
}

/** One subscription as a client sees it. */
export interface Subscription {
  received: Received[];
  /** Resolves when the server completes the stream (or the transport errors: then with the error). */
  ended: Promise<unknown>;
  /** Resolves with the n-th (from 1) message, within `ms`. */
  nth(n: number, ms?: number): Promise<Received>;
  /** The client leaves. */
  dispose(): void;
}

function collector(): { sink: { next(v: any): void; error(e: unknown): void; complete(): void }; sub: Omit<Subscription, 'dispose'> } {
  const received: Received[] = [];
  const waiters: (() => void)[] = [];
  let end!: (e?: unknown) => void;
  const ended = new Promise<unknown>((resolve) => (end = resolve));
  const notify = () => waiters.splice(0).forEach((w) => w());
  return {
    sink: {
      next: (v) => {
        received.push({ at: Date.now(), data: v.data, errors: v.errors });
        notify();
      },
      error: (e) => {
        end(e ?? new Error('error'));
        notify();
      },
      complete: () => {
        end();
        notify();
      },
    },
    sub: {
      received,
      ended,
      nth: (n, ms = 10_000) =>
        new Promise<Received>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`message ${n} not within ${ms} ms (got ${received.length})`)), ms);
          const check = () => {
            if (received.length >= n) {
              clearTimeout(timer);
              resolve(received[n - 1]!);
            } else waiters.push(check);
          };
          check();
        }),
    },
  };
}

/** A lease over GraphQL over SSE (graphql-sse's client, distinct connections mode, as a browser would). */
export function sseLease(url: string, variables: Record<string, unknown>, headers: Record<string, string> = { authorization: BEARER }): Subscription {
  const client = createSseClient({ url, headers, retryAttempts: 0, singleConnection: false });
  const { sink, sub } = collector();
  const dispose = client.subscribe({ query: LEASE, variables }, sink);
  return {
    ...sub,
    dispose: () => {
      dispose();
      client.dispose();
    },
  };
}

export function wsUrl(httpUrl: string): string {
  return httpUrl.replace(/^http/, 'ws');
}

/** A graphql-ws client; `authorization` in connection_init's payload unless `viaHeader`. */
export function wsClient(url: string, options: { authorization?: string; viaHeader?: boolean; origin?: string } = {}): WsClient {
  const { authorization = BEARER, viaHeader = false, origin } = options;
  const headers: Record<string, string> = { ...(viaHeader ? { authorization } : {}), ...(origin ? { origin } : {}) };
  class HeaderWebSocket extends WebSocket {
    constructor(address: string, protocols?: string | string[]) {
      super(address, protocols, { headers });
    }
  }
  return createWsClient({
    url: wsUrl(url),
    webSocketImpl: HeaderWebSocket,
    connectionParams: viaHeader ? undefined : { authorization },
    retryAttempts: 0,
    lazy: true,
  });
}

/** A lease over WebSocket; `dispose` sends `complete` for it. */
export function wsLease(client: WsClient, variables: Record<string, unknown>): Subscription {
  const { sink, sub } = collector();
  const dispose = client.subscribe({ query: LEASE, variables }, sink);
  return { ...sub, dispose };
}

export type LeaseStack = HttpGateway;

/** Emulator + gateway on a socket; the emulator's STS credentials live `stsTtlSeconds`. */
export const startLeaseStack = (
  overrides: (c: GatewayConfig, emulator: Stack['emulator']) => Partial<GatewayConfig> = () => ({}),
  emulatorOptions: EmulatorOptions = { stsTtlSeconds: 3 },
): Promise<LeaseStack> => startHttpGateway(overrides, emulatorOptions);

/** Between tests: closes the subscriptions a test left open, waits for their leases to end, and resets the emulator. */
export async function endLeases(s: LeaseStack, open: Subscription[]): Promise<void> {
  for (const sub of open.splice(0)) sub.dispose();
  await eventually(() => s.stack.gateway.services.leases.size === 0, 2_000, 'the previous test’s leases ending');
  s.stack.emulator.reset();
}

export const mintCalls = (stack: Stack) => stack.emulator.counters()['idaas.obtainAccessCredential']?.requests ?? 0;

/** A metric's value (summed over label sets matching `labels`). */
export async function metric(stack: Stack, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = await stack.gateway.services.metrics.registry.getSingleMetric(name)?.get();
  if (!m) return 0;
  return (m.values as { value: number; labels: object; metricName?: string }[])
    .filter((v) => v.metricName === undefined || v.metricName === name || v.metricName === `${name}_count`)
    .filter((v) => Object.entries(labels).every(([k, x]) => (v.labels as Record<string, unknown>)[k] === x))
    .reduce((sum, v) => sum + v.value, 0);
}

/** Polls `check` until it holds, within `ms`. */
export async function eventually(check: () => boolean | Promise<boolean>, ms = 5_000, what = 'condition'): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(25);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The event's lease payload, asserting it has no error. */
export function leaseOf(r: Received): LeaseEventData {
  expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
  return r.data!.cloudAccountRoleCredentialLease;
}
