// createGateway(config, deps?) → the yoga instance (a fetch handler; it does not listen).
import { createYoga, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import { useDisableIntrospection } from '@graphql-yoga/plugin-disable-introspection';
import type { Logger } from 'pino';
import type { GraphQLError, ValidationContext } from 'graphql';
import { randomUUID } from 'node:crypto';
import type { GatewayConfig } from './config.ts';
import type { BrokerServices } from './broker/index.ts';
import { createContext, RequestDeadline, type Context, type GatewayServices } from './context.ts';
import { CursorCodec } from './schema/cursor.ts';
import { schema } from './schema/index.ts';
import { UpstreamHttp } from './upstreams/http.ts';
import { LocalSignInGuard } from './upstreams/iam/guard.ts';
import type { SharedState } from './shared/index.ts';
import { createLogger, operationLogger } from './logger.ts';
import { useContractErrorCodes } from './errors.ts';
import { useCompiledExecution } from './compiled-execution.ts';
import { GatewayMetrics } from './observability/metrics.ts';
import { LeaseRegistry } from './leases/lease.ts';
import { useOperationTelemetry } from './observability/plugin.ts';
import { useBodyLimit } from './http/body-limit.ts';
import { useRateLimit } from './http/rate-limit.ts';
import { useOperationalEndpoints, type Lifecycle } from './http/endpoints.ts';
import { withOneOnRequest } from './http/on-request.ts';
import { graphiqlOptions, useGraphiqlAssets } from './graphiql.ts';
import { loadManifest, usePersistedDocuments, type TrustedDocuments } from './http/persisted-operations.ts';

export interface GatewayDeps {
  logger?: Logger;
  /** Process-level metrics (CPU, memory, event loop); off when several gateways share a process. */
  defaultMetrics?: boolean;
  /**
   * Required with AUTH_MODE=broker: `await startBroker(config)` (src/broker/index.ts). Made by the
   * caller so that forward mode never loads Cedar's WebAssembly.
   */
  broker?: BrokerServices;
  /**
   * With REDIS_URL: `await connectShared(config, logger)` (src/shared/index.ts): rate limits, the
   * sign-in guard and the cursor key shared by every replica. Closed by `close()`.
   */
  shared?: SharedState;
}

export type Gateway = YogaServerInstance<Record<string, unknown>, Context> & {
  services: GatewayServices;
  lifecycle: Lifecycle;
  /** Ends open credential leases, closes upstream connection pools (and, in broker mode, the audit log; with REDIS_URL, the Redis connections). */
  close(): Promise<void>;
};

const GRAPHQL_ENDPOINT = '/graphql';

/** Armor's refusals reported as validation errors: HTTP 400 like any other invalid document. */
const asValidationError = {
  propagateOnRejection: false,
  onReject: [(ctx: ValidationContext | null, error: GraphQLError) => ctx?.reportError(error)],
};
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

function missingBroker(): never {
  throw new Error('AUTH_MODE=broker: pass createGateway the services of startBroker(config)');
}

export function createGateway(config: GatewayConfig, deps: GatewayDeps = {}): Gateway {
  const logger = deps.logger ?? createLogger(config.logLevel);
  // Trusted documents: a manifest that does not check out stops start-up, before anything is made.
  const persisted = config.persistedOperations;
  let trusted: TrustedDocuments = new Map();
  if (persisted.mode !== 'off') {
    if (!persisted.file) throw new Error(`PERSISTED_OPERATIONS_FILE: required when PERSISTED_OPERATIONS=${persisted.mode}`);
    trusted = loadManifest(persisted.file, schema);
    logger.info({ mode: persisted.mode, documents: trusted.size }, 'trusted documents');
  }
  const compiledExecution = useCompiledExecution({
    onCompileError: (errors) => logger.warn({ errors: errors.length }, 'graphql-jit cannot compile a document; using the default executor'),
  });
  for (const document of trusted.values()) compiledExecution.precompile(schema, document);
  const metrics = new GatewayMetrics(deps.defaultMetrics ?? false);
  const services: GatewayServices = {
    config,
    http: new UpstreamHttp(config.upstream, metrics),
    cursors: new CursorCodec(config.cursorSecret ?? deps.shared?.cursorKey),
    logger,
    operationLogger: operationLogger(logger),
    metrics,
    signInGuard:
      deps.shared?.signInGuard(config.iamGuard.maxFailures, config.iamGuard.windowMs) ??
      new LocalSignInGuard(config.iamGuard.maxFailures, config.iamGuard.windowMs),
    broker: config.auth.mode === 'broker' ? (deps.broker ?? missingBroker()) : undefined,
    leases: new LeaseRegistry(config.maxLeasesPerCaller, metrics),
  };
  deps.shared?.bind(metrics, services.cursors);
  const lifecycle: Lifecycle = { draining: false };
  const requestIds = new WeakMap<Request, string>();
  /** Per request: its deadline, released once its response is out. */
  const deadlines = new WeakMap<Request, RequestDeadline>();
  const { limits } = config;

  const plugins: Plugin<any>[] = [
    // One onRequest hook for the plugins below, in this order (src/http/on-request.ts).
    ...withOneOnRequest([
      // First, so that even the early refusals (413, 429) carry the request id.
      {
        onRequest({ request }) {
          const given = request.headers.get('x-request-id');
          requestIds.set(request, given && REQUEST_ID.test(given) ? given : randomUUID());
        },
        onResponse({ request, response }) {
          deadlines.get(request)?.dispose();
          // GraphQL answers may carry credentials: never stored by browsers or proxies.
          response.headers.set('cache-control', 'no-store');
          const id = requestIds.get(request);
          if (id) response.headers.set('x-request-id', id);
          // While draining, keep-alive connections are closed after their answer.
          if (lifecycle.draining) response.headers.set('connection', 'close');
        },
      },
      useOperationalEndpoints(lifecycle, services.http, config.metrics ? metrics : undefined, () => deps.shared?.status ?? 'off'),
      useBodyLimit(limits.maxBodyBytes),
      useRateLimit({ ...config.rateLimit, graphqlEndpoint: GRAPHQL_ENDPOINT }, metrics, undefined, deps.shared?.rateLimitBuckets),
      // GraphiQL's files (/graphql/assets/…); after the first plugin, so that its onResponse
      // keeps them cacheable (src/graphiql.ts).
      useGraphiqlAssets(config),
    ]),
    // Browsers cannot send a JSON POST cross-site without a preflight; anything simpler
    // (GET, forms) must carry a header a page cannot set without CORS.
    useCSRFPrevention({ requestHeaders: ['x-graphql-yoga-csrf'] }),
    // PERSISTED_OPERATIONS: known hashes become the manifest's parsed documents (src/http/persisted-operations.ts).
    ...usePersistedDocuments(persisted.mode, trusted),
    EnvelopArmorPlugin({
      maxDepth: { n: limits.maxDepth, ignoreIntrospection: true, ...asValidationError },
      maxAliases: { n: limits.maxAliases, ...asValidationError },
      maxTokens: { n: limits.maxTokens },
      maxDirectives: { n: limits.maxDirectives, ...asValidationError },
      costLimit: { maxCost: limits.maxCost, ignoreIntrospection: true, ...asValidationError },
      blockFieldSuggestion: { enabled: !config.introspection },
    }) as Plugin,
    ...(config.introspection ? [] : [useDisableIntrospection()]),
    // Before the telemetry plugin, so that its span wraps the compiled query's execution.
    // (Compile errors are not logged verbatim: they may quote the document's literals.)
    compiledExecution,
    useOperationTelemetry(metrics) as Plugin,
    useContractErrorCodes(logger),
  ];

  const yoga = createYoga<Record<string, unknown>, Context>({
    schema,
    graphqlEndpoint: GRAPHQL_ENDPOINT,
    landingPage: false,
    ...graphiqlOptions(config), // graphiql + renderGraphiQL: the page, its files served by useGraphiqlAssets
    batching: limits.batchingLimit > 0 ? { limit: limits.batchingLimit } : false,
    cors: config.corsOrigins.length
      ? { origin: config.corsOrigins, methods: ['GET', 'POST'], credentials: false, maxAge: 600 }
      : false,
    logging: {
      debug: () => {},
      info: () => {},
      warn: (...a: unknown[]) => logger.warn({ detail: a.map((x) => (x instanceof Error ? x.message : String(x))) }, 'yoga'),
      error: (...a: unknown[]) => logger.error({ err: a.find((x) => x instanceof Error) ?? String(a[0]) }, 'unexpected error'),
    },
    maskedErrors: true,
    // useBodyLimit (above) already enforces MAX_BODY_BYTES, for declared and chunked bodies alike,
    // and Node's HTTP parser rejects malformed Content-Length. Yoga's own 25 MB limit would
    // re-wrap every body in a TransformStream + stream.pipeline.
    maxRequestBodySize: false,
    // No file uploads in this schema: a multipart body is refused like any other unsupported one.
    multipart: false,
    plugins,
    context: (initial) => {
      const deadline = new RequestDeadline(initial.request.signal, config.requestDeadlineMs);
      deadlines.set(initial.request, deadline);
      return createContext(services, initial, requestIds.get(initial.request) ?? randomUUID(), deadline);
    },
  });
  return Object.assign(yoga, {
    services,
    lifecycle,
    close: async () => {
      // Open credential leases end first (src/server.ts ends them earlier, within the grace period).
      await services.leases.endAll(0);
      await services.http.close();
      await services.broker?.close();
      await deps.shared?.close();
    },
  }) as Gateway;
}
