// One zod schema for the environment, parsed once at start-up. Bad configuration fails
// fast with one clear line per problem, before anything listens.
import { z } from 'zod';
import type { GraphiqlDemo } from './graphiql.ts';

const onOff = (def: 'on' | 'off') =>
  z
    .enum(['on', 'off', 'true', 'false', '1', '0'])
    .default(def)
    .transform((v) => v === 'on' || v === 'true' || v === '1');

/** An on/off setting whose default depends on other settings: undefined when unset. */
const onOffUnset = () =>
  z
    .enum(['on', 'off', 'true', 'false', '1', '0'])
    .optional()
    .transform((v) => (v === undefined ? undefined : v === 'on' || v === 'true' || v === '1'));

const int = (def: number, min: number, max: number) =>
  z.coerce
    .number({ error: `must be a whole number from ${min} to ${max}` })
    .int(`must be a whole number from ${min} to ${max}`)
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`)
    .default(def);

const parseUrl = (u: string): URL | undefined => (URL.canParse(u) ? new URL(u) : undefined);

const baseUrl = z
  .string()
  .trim()
  .refine((u) => /^https?:$/.test(parseUrl(u)?.protocol ?? ''), 'must be an http(s) URL')
  .refine((u) => !parseUrl(u)?.search && !parseUrl(u)?.hash, 'must not carry a query or a fragment')
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

/** An http(s) URL that may carry a path (token endpoints, issuers). */
const absoluteUrl = z
  .string()
  .trim()
  .refine((u) => /^https?:$/.test(parseUrl(u)?.protocol ?? ''), 'must be an http(s) URL')
  .refine((u) => !parseUrl(u)?.hash, 'must not carry a fragment');

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
  /** The embedded emulator's STS credentials live at most this long (demo and tests of lease renewals); 0: as asked. */
  EMULATOR_STS_TTL_SECONDS: int(0, 0, 43_200),
  /** Default: on, except with PERSISTED_OPERATIONS=only. */
  GRAPHIQL: onOffUnset(),
  /** Trusted documents (src/http/persisted-operations.ts). */
  PERSISTED_OPERATIONS: z.enum(['off', 'allow', 'only']).default('off'),
  PERSISTED_OPERATIONS_FILE: z.string().trim().min(1).optional(),

  /** HMAC key for pagination cursors; generated at start when absent (cursors then die with the process). */
  CURSOR_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  /** State shared by replicas (src/shared/): rate-limit buckets, the sign-in guard, the cursor key. */
  REDIS_URL: z
    .string()
    .trim()
    .refine((u) => /^rediss?:$/.test(parseUrl(u)?.protocol ?? ''), 'must be a redis:// or rediss:// URL')
    .optional(),

  UPSTREAM_CONNECT_TIMEOUT_MS: int(5_000, 1, 600_000),
  UPSTREAM_TIMEOUT_MS: int(10_000, 1, 600_000),
  UPSTREAM_MAX_RESPONSE_BYTES: int(5 * 1024 * 1024, 1024, 512 * 1024 * 1024),
  UPSTREAM_CONNECTIONS: int(64, 1, 10_000),
  UPSTREAM_RETRY_ATTEMPTS: int(3, 1, 10),
  UPSTREAM_RETRY_BASE_MS: int(100, 1, 60_000),
  UPSTREAM_RETRY_DEADLINE_MS: int(15_000, 1, 600_000),
  UPSTREAM_MAX_CONCURRENCY: int(256, 1, 100_000),
  UPSTREAM_MAX_QUEUE: int(1024, 0, 1_000_000),
  UPSTREAM_RETRY_BUDGET_RATIO: z.coerce.number().min(0).max(1).default(0.2),
  CIRCUIT_FAILURE_THRESHOLD: int(5, 1, 10_000),
  CIRCUIT_RESET_MS: int(10_000, 100, 3_600_000),
  REQUEST_DEADLINE_MS: int(20_000, 100, 600_000),

  MAX_BODY_BYTES: int(100_000, 1_024, 50 * 1024 * 1024),
  MAX_DEPTH: int(12, 1, 1_000),
  MAX_ALIASES: int(15, 0, 1_000),
  MAX_TOKENS: int(2_000, 10, 1_000_000),
  MAX_DIRECTIVES: int(20, 0, 1_000),
  MAX_COST: int(100_000, 1, 10_000_000),
  BATCHING_LIMIT: int(0, 0, 100),
  INTROSPECTION: onOff('on'),
  CORS_ORIGINS: z
    .string()
    .trim()
    .optional()
    .transform((s) => (s ? s.split(',').map((o) => o.trim()).filter(Boolean) : [])),
  RATE_LIMIT_PER_MINUTE: int(600, 0, 10_000_000),
  RATE_LIMIT_BURST: int(100, 1, 10_000_000),
  RATE_LIMIT_IP_MULTIPLIER: int(5, 1, 10_000),
  TRUST_PROXY: onOff('off'),
  IAM_GUARD_MAX_FAILURES: int(3, 0, 1_000),
  IAM_GUARD_WINDOW_MS: int(15 * 60_000, 1_000, 24 * 3_600_000),
  SHUTDOWN_GRACE_MS: int(10_000, 0, 600_000),
  /** Concurrent credential leases (subscriptions) per caller. */
  MAX_LEASES_PER_CALLER: int(10, 1, 100_000),
  METRICS: onOff('on'),

  AUTH_MODE: z.enum(['forward', 'broker']).default('forward'),
  IDAAS_TOKEN_ENDPOINT: absoluteUrl.optional(),
  IDAAS_CLIENT_ID: z.string().trim().min(1).max(256).optional(),
  IDAAS_CLIENT_SECRET: z.string().min(1).max(4096).optional(),
  IDAAS_CLIENT_AUTH: z.enum(['client_secret_basic', 'client_secret_post', 'private_key_jwt']).default('client_secret_basic'),
  IDAAS_CLIENT_PRIVATE_KEY_FILE: z.string().trim().min(1).optional(),
  IDAAS_TOKEN_SCOPE: z.string().trim().min(1).default('urn:cloud:idaas:pam|.all'),
  CALLER_ISSUER: absoluteUrl.optional(),
  CALLER_AUDIENCE: z.string().trim().min(1).optional(),
  CALLER_JWKS_URL: absoluteUrl.optional(),
  CALLER_GROUPS_CLAIM: z.string().trim().min(1).default('groups'),
  POLICY_FILE: z.string().trim().min(1).optional(),
  AUDIT_LOG: z.string().trim().min(1).optional(),
  AUDIT_HMAC_KEY: z.string().min(32, 'must be at least 32 characters').optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: baseUrl.optional(),
  OTEL_SERVICE_NAME: z.string().trim().min(1).default('token-gateway'),
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
  /** `stsTtlSeconds`: the embedded emulator's STS credentials live at most this long (undefined: as asked). */
  emulator: { enabled: boolean; latencyMs: number; stsTtlSeconds: number | undefined };
  graphiql: boolean;
  /**
   * Trusted documents. `allow`: manifest hashes and arbitrary documents; `only`: manifest documents
   * only. The manifest (`file`, `{ "<sha256 hex>": "<document>" }`) is read and checked by createGateway.
   */
  persistedOperations: { mode: 'off' | 'allow' | 'only'; file: string | undefined };
  /**
   * GraphiQL pre-fills the emulator's demo ids, credentials and `Authorization` header.
   * Not from the environment: `npm start` sets it only while the embedded emulator serves IDaaS.
   */
  graphiqlDemo: GraphiqlDemo | undefined;
  cursorSecret: string | undefined;
  /** REDIS_URL (may carry a password: never logged). */
  redisUrl: string | undefined;
  upstream: {
    connectTimeoutMs: number;
    timeoutMs: number;
    maxResponseBytes: number;
    connections: number;
    retry: { attempts: number; baseMs: number; deadlineMs: number; budgetRatio: number };
    maxConcurrency: number;
    maxQueue: number;
    circuit: { failureThreshold: number; resetMs: number };
  };
  requestDeadlineMs: number;
  limits: {
    maxBodyBytes: number;
    maxDepth: number;
    maxAliases: number;
    maxTokens: number;
    maxDirectives: number;
    maxCost: number;
    /** 0: batched requests are refused. */
    batchingLimit: number;
  };
  introspection: boolean;
  corsOrigins: string[];
  rateLimit: { perMinute: number; burst: number; ipMultiplier: number; trustProxy: boolean };
  iamGuard: { maxFailures: number; windowMs: number };
  shutdownGraceMs: number;
  /** Concurrent credential leases per caller (the Authorization hash; the caller's `sub` in broker mode). */
  maxLeasesPerCaller: number;
  metrics: boolean;
  auth: AuthConfig;
  otel: { endpoint: string | undefined; serviceName: string };
}

export type ClientAuthMethod = Env['IDAAS_CLIENT_AUTH'];

/**
 * `forward`: callers send their own IDaaS access token. `broker`: the gateway is the IDaaS M2M
 * application, signs its callers in with their OIDC JWTs and decides with a Cedar policy. In broker
 * mode every field is required once the gateway starts (`npm start` fills the demo values from the
 * embedded emulator); see `requireBrokerConfig`.
 */
export type AuthConfig = { mode: 'forward' } | ({ mode: 'broker' } & Partial<BrokerConfig>);

export interface BrokerConfig {
  tokenEndpoint: string;
  clientId: string;
  clientSecret: string | undefined;
  clientAuth: ClientAuthMethod;
  privateKeyFile: string | undefined;
  scope: string;
  caller: { issuer: string; audience: string; jwksUrl: string | undefined; groupsClaim: string };
  policyFile: string;
  auditLog: string;
  auditHmacKey: string;
}

/** The broker settings a running gateway needs, one line per missing one. */
export function brokerConfigProblems(a: Partial<BrokerConfig>): string[] {
  const problems: string[] = [];
  if (!a.tokenEndpoint) problems.push('IDAAS_TOKEN_ENDPOINT: required when AUTH_MODE=broker');
  if (!a.clientId) problems.push('IDAAS_CLIENT_ID: required when AUTH_MODE=broker');
  if (a.clientAuth === 'private_key_jwt') {
    if (!a.privateKeyFile) problems.push('IDAAS_CLIENT_PRIVATE_KEY_FILE: required when IDAAS_CLIENT_AUTH=private_key_jwt');
  } else if (!a.clientSecret) problems.push(`IDAAS_CLIENT_SECRET: required when IDAAS_CLIENT_AUTH=${a.clientAuth ?? 'client_secret_basic'}`);
  if (!a.caller?.issuer) problems.push('CALLER_ISSUER: required when AUTH_MODE=broker');
  if (!a.caller?.audience) problems.push('CALLER_AUDIENCE: required when AUTH_MODE=broker');
  if (!a.policyFile) problems.push('POLICY_FILE: required when AUTH_MODE=broker');
  if (!a.auditLog) problems.push('AUDIT_LOG: required when AUTH_MODE=broker');
  if (!a.auditHmacKey) problems.push('AUDIT_HMAC_KEY: required when AUTH_MODE=broker');
  return problems;
}

export function requireBrokerConfig(a: Partial<BrokerConfig>): BrokerConfig {
  const problems = brokerConfigProblems(a);
  if (problems.length) throw new ConfigError(problems);
  return a as BrokerConfig;
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
  const problems = parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.') || 'environment'}: ${i.message}`);
  // Production mode needs every upstream configured; checked on the raw values so that all
  // problems are reported in one go.
  if (['off', 'false', '0'].includes(String(cleaned.EMULATOR ?? '').trim())) {
    if (!cleaned.IDAAS_ENDPOINT) problems.push('IDAAS_ENDPOINT: required when EMULATOR=off');
    if (!cleaned.IAM_ENDPOINTS) problems.push('IAM_ENDPOINTS: required when EMULATOR=off');
  }
  if (parsed.success && parsed.data.PERSISTED_OPERATIONS !== 'off' && !parsed.data.PERSISTED_OPERATIONS_FILE) {
    problems.push(`PERSISTED_OPERATIONS_FILE: required when PERSISTED_OPERATIONS=${parsed.data.PERSISTED_OPERATIONS}`);
  }
  if (problems.length || !parsed.success) throw new ConfigError(problems);
  const e = parsed.data;
  const auth: AuthConfig =
    e.AUTH_MODE === 'forward'
      ? { mode: 'forward' }
      : {
          mode: 'broker',
          tokenEndpoint: e.IDAAS_TOKEN_ENDPOINT,
          clientId: e.IDAAS_CLIENT_ID,
          clientSecret: e.IDAAS_CLIENT_SECRET,
          clientAuth: e.IDAAS_CLIENT_AUTH,
          privateKeyFile: e.IDAAS_CLIENT_PRIVATE_KEY_FILE,
          scope: e.IDAAS_TOKEN_SCOPE,
          caller: e.CALLER_ISSUER || e.CALLER_AUDIENCE
            ? { issuer: e.CALLER_ISSUER!, audience: e.CALLER_AUDIENCE!, jwksUrl: e.CALLER_JWKS_URL, groupsClaim: e.CALLER_GROUPS_CLAIM }
            : undefined,
          policyFile: e.POLICY_FILE,
          auditLog: e.AUDIT_LOG,
          auditHmacKey: e.AUDIT_HMAC_KEY,
        };
  // Unless the embedded emulator will stand in for IDaaS (and fill the demo settings), broker
  // mode needs every setting now.
  const emulatorFills = e.EMULATOR && !e.IDAAS_ENDPOINT;
  if (auth.mode === 'broker' && !emulatorFills) {
    const missing = brokerConfigProblems(auth);
    if (missing.length) throw new ConfigError(missing);
  }

  return {
    port: e.PORT,
    host: e.HOST,
    logLevel: e.LOG_LEVEL,
    idaas: {
      endpoint: e.IDAAS_ENDPOINT,
      instanceEndpoints: new Map((e.IDAAS_INSTANCE_ENDPOINTS ?? []).map((p) => [p.name, p.url])),
    },
    iam: { endpoints: e.IAM_ENDPOINTS ?? [] },
    emulator: { enabled: e.EMULATOR, latencyMs: e.EMULATOR_LATENCY_MS, stsTtlSeconds: e.EMULATOR_STS_TTL_SECONDS || undefined },
    // A gateway that runs only trusted documents has no use for an editor of arbitrary ones,
    // unless GRAPHIQL says otherwise.
    graphiql: e.GRAPHIQL ?? e.PERSISTED_OPERATIONS !== 'only',
    persistedOperations: { mode: e.PERSISTED_OPERATIONS, file: e.PERSISTED_OPERATIONS_FILE },
    graphiqlDemo: undefined,
    cursorSecret: e.CURSOR_SECRET,
    redisUrl: e.REDIS_URL,
    upstream: {
      connectTimeoutMs: e.UPSTREAM_CONNECT_TIMEOUT_MS,
      timeoutMs: e.UPSTREAM_TIMEOUT_MS,
      maxResponseBytes: e.UPSTREAM_MAX_RESPONSE_BYTES,
      connections: e.UPSTREAM_CONNECTIONS,
      retry: {
        attempts: e.UPSTREAM_RETRY_ATTEMPTS,
        baseMs: e.UPSTREAM_RETRY_BASE_MS,
        deadlineMs: e.UPSTREAM_RETRY_DEADLINE_MS,
        budgetRatio: e.UPSTREAM_RETRY_BUDGET_RATIO,
      },
      maxConcurrency: e.UPSTREAM_MAX_CONCURRENCY,
      maxQueue: e.UPSTREAM_MAX_QUEUE,
      circuit: { failureThreshold: e.CIRCUIT_FAILURE_THRESHOLD, resetMs: e.CIRCUIT_RESET_MS },
    },
    requestDeadlineMs: e.REQUEST_DEADLINE_MS,
    limits: {
      maxBodyBytes: e.MAX_BODY_BYTES,
      maxDepth: e.MAX_DEPTH,
      maxAliases: e.MAX_ALIASES,
      maxTokens: e.MAX_TOKENS,
      maxDirectives: e.MAX_DIRECTIVES,
      maxCost: e.MAX_COST,
      batchingLimit: e.BATCHING_LIMIT,
    },
    introspection: e.INTROSPECTION,
    corsOrigins: e.CORS_ORIGINS,
    rateLimit: { perMinute: e.RATE_LIMIT_PER_MINUTE, burst: e.RATE_LIMIT_BURST, ipMultiplier: e.RATE_LIMIT_IP_MULTIPLIER, trustProxy: e.TRUST_PROXY },
    iamGuard: { maxFailures: e.IAM_GUARD_MAX_FAILURES, windowMs: e.IAM_GUARD_WINDOW_MS },
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    maxLeasesPerCaller: e.MAX_LEASES_PER_CALLER,
    metrics: e.METRICS,
    auth,
    otel: { endpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT, serviceName: e.OTEL_SERVICE_NAME },
  };
}

/** A complete config for tests and embedding: defaults plus overrides. */
export function defaultConfig(overrides: Partial<GatewayConfig> = {}): GatewayConfig {
  return { ...loadConfig({}), ...overrides };
}
