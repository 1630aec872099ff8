// One zod schema for the environment, parsed once at start-up. Bad configuration fails
// fast with one clear line per problem, before anything listens.
import { z } from 'zod';

const onOff = (def: 'on' | 'off') =>
  z
    .enum(['on', 'off', 'true', 'false', '1', '0'])
    .default(def)
    .transform((v) => v === 'on' || v === 'true' || v === '1');

const int = (def: number, min: number, max: number) => z.coerce.number().int().min(min).max(max).default(def);

const baseUrl = z
  .string()
  .trim()
  .url()
  .refine((u) => /^https?:$/.test(new URL(u).protocol), 'must be an http(s) URL')
  .refine((u) => !new URL(u).search && !new URL(u).hash, 'must not carry a query or a fragment')
  .transform((u) => u.replace(/\/+$/, ''));

/** `name=url,name=url` → ordered list; names are what clients choose by. */
const namedUrls = (what: string, namePattern: RegExp) =>
  z
    .string()
    .trim()
    .transform((raw, ctx) => {
      const out: { name: string; url: string }[] = [];
      for (const part of raw.split(',').map((p) => p.trim()).filter(Boolean)) {
        const eq = part.indexOf('=');
        const name = eq > 0 ? part.slice(0, eq).trim() : '';
        const url = baseUrl.safeParse(eq > 0 ? part.slice(eq + 1) : '');
        if (!namePattern.test(name) || !url.success) {
          ctx.addIssue({ code: 'custom', message: `"${part}" is not a ${what}=baseUrl pair` });
          continue;
        }
        if (out.some((o) => o.name === name)) ctx.addIssue({ code: 'custom', message: `${what} "${name}" is listed twice` });
        out.push({ name, url: url.data });
      }
      return out;
    });

export const INSTANCE_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
export const ENDPOINT_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

const envSchema = z.object({
  PORT: int(4000, 0, 65_535),
  HOST: z.string().trim().min(1).default('127.0.0.1'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

  IDAAS_ENDPOINT: baseUrl.optional(),
  IDAAS_INSTANCE_ENDPOINTS: namedUrls('instanceId', INSTANCE_ID_PATTERN).optional(),
  IAM_ENDPOINTS: namedUrls('name', ENDPOINT_NAME_PATTERN).optional(),
  EMULATOR: onOff('on'),
  EMULATOR_LATENCY_MS: int(0, 0, 60_000),
  GRAPHIQL: onOff('on'),

  /** HMAC key for pagination cursors; generated at start when absent (cursors then die with the process). */
  CURSOR_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),

  UPSTREAM_CONNECT_TIMEOUT_MS: int(5_000, 1, 600_000),
  UPSTREAM_TIMEOUT_MS: int(10_000, 1, 600_000),
  UPSTREAM_MAX_RESPONSE_BYTES: int(5 * 1024 * 1024, 1024, 512 * 1024 * 1024),
  UPSTREAM_CONNECTIONS: int(64, 1, 10_000),
  UPSTREAM_RETRY_ATTEMPTS: int(3, 1, 10),
  UPSTREAM_RETRY_BASE_MS: int(100, 1, 60_000),
  UPSTREAM_RETRY_DEADLINE_MS: int(15_000, 1, 600_000),
});

export type Env = z.infer<typeof envSchema>;

export interface GatewayConfig {
  port: number;
  host: string;
  logLevel: Env['LOG_LEVEL'];
  idaas: {
    endpoint: string | undefined;
    instanceEndpoints: Map<string, string>;
  };
  iam: { endpoints: { name: string; url: string }[] };
  emulator: { enabled: boolean; latencyMs: number };
  graphiql: boolean;
  cursorSecret: string | undefined;
  upstream: {
    connectTimeoutMs: number;
    timeoutMs: number;
    maxResponseBytes: number;
    connections: number;
    retry: { attempts: number; baseMs: number; deadlineMs: number };
  };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/** Parses the environment (empty strings count as unset). Throws ConfigError. */
export function loadConfig(env: Record<string, string | undefined> = process.env): GatewayConfig {
  const cleaned = Object.fromEntries(
    Object.keys(envSchema.shape).map((k) => [k, env[k] === '' ? undefined : env[k]]),
  );
  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.') || 'environment'}: ${i.message}`));
  }
  const e = parsed.data;
  const problems: string[] = [];
  if (!e.EMULATOR) {
    if (!e.IDAAS_ENDPOINT) problems.push('IDAAS_ENDPOINT: required when EMULATOR=off');
    if (!e.IAM_ENDPOINTS?.length) problems.push('IAM_ENDPOINTS: required when EMULATOR=off');
  }
  if (problems.length) throw new ConfigError(problems);

  return {
    port: e.PORT,
    host: e.HOST,
    logLevel: e.LOG_LEVEL,
    idaas: {
      endpoint: e.IDAAS_ENDPOINT,
      instanceEndpoints: new Map((e.IDAAS_INSTANCE_ENDPOINTS ?? []).map((p) => [p.name, p.url])),
    },
    iam: { endpoints: e.IAM_ENDPOINTS ?? [] },
    emulator: { enabled: e.EMULATOR, latencyMs: e.EMULATOR_LATENCY_MS },
    graphiql: e.GRAPHIQL,
    cursorSecret: e.CURSOR_SECRET,
    upstream: {
      connectTimeoutMs: e.UPSTREAM_CONNECT_TIMEOUT_MS,
      timeoutMs: e.UPSTREAM_TIMEOUT_MS,
      maxResponseBytes: e.UPSTREAM_MAX_RESPONSE_BYTES,
      connections: e.UPSTREAM_CONNECTIONS,
      retry: {
        attempts: e.UPSTREAM_RETRY_ATTEMPTS,
        baseMs: e.UPSTREAM_RETRY_BASE_MS,
        deadlineMs: e.UPSTREAM_RETRY_DEADLINE_MS,
      },
    },
  };
}

/** A complete config for tests and embedding: defaults plus overrides. */
export function defaultConfig(overrides: Partial<GatewayConfig> = {}): GatewayConfig {
  return { ...loadConfig({}), ...overrides };
}
