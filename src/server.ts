// `npm start`: loadConfig() → embedded emulator for unconfigured upstreams → createGateway()
// → listen. The only file that listens.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError, loadConfig, type GatewayConfig } from './config.ts';
import { createGateway, type Gateway } from './gateway.ts';
import { createLogger } from './logger.ts';
import { installProcessHandlers } from './process-handlers.ts';
import type { Emulator } from './emulator/index.ts';
import { attachWebSocket } from './leases/websocket.ts';
// The emulator, the OpenTelemetry SDK and broker mode's services are imported below only when
// used: each costs start-up time and memory that most starts do not need.

let config: GatewayConfig;
try {
  config = loadConfig();
} catch (e) {
  if (e instanceof ConfigError) {
    console.error(`token-gateway: ${e.message}`);
    process.exit(2);
  }
  throw e;
}

const logger = createLogger(config.logLevel);
installProcessHandlers(logger);

const tracing = config.otel.endpoint
  ? (await import('./observability/tracing.ts')).startTracing({ endpoint: config.otel.endpoint, serviceName: config.otel.serviceName })
  : undefined;

let emulator: Emulator | undefined;
const banner: string[] = [];
const needsIdaas = !config.idaas.endpoint;
const needsIam = config.iam.endpoints.length === 0;
if (config.emulator.enabled && (needsIdaas || needsIam)) {
  const { startEmulator } = await import('./emulator/index.ts');
  emulator = await startEmulator({ port: 0, latencyMs: config.emulator.latencyMs, stsTtlSeconds: config.emulator.stsTtlSeconds });
  if (needsIdaas) {
    config.idaas.endpoint = emulator.url;
    // GraphiQL pre-fills the demo data and a demo Authorization header (a caller's JWT in broker mode).
    const demo = config.auth.mode === 'broker' ? await (await import('./broker/demo.ts')).fillDemoBroker(config, emulator) : undefined;
    if (demo) banner.push(...demo.lines);
    config.graphiqlDemo = (await import('./emulator/demo-examples.ts')).graphiqlDemo(demo?.graphiqlCallerJwt);
  }
  if (needsIam) config.iam.endpoints = [{ name: 'emulator', url: emulator.url }];
}

let gateway: Gateway;
try {
  // Broker mode's services (Cedar's WebAssembly among them) are loaded only in broker mode.
  const broker = config.auth.mode === 'broker' ? (await import('./broker/index.ts')).startBroker(config) : undefined;
  // REDIS_URL: state shared by the replicas (ioredis and rate-limiter-flexible load only then).
  const shared = config.redisUrl ? await (await import('./shared/index.ts')).connectShared({ redisUrl: config.redisUrl, cursorSecret: config.cursorSecret }, logger) : undefined;
  gateway = createGateway(config, { logger, defaultMetrics: true, broker, shared });
} catch (e) {
  // A policy that does not validate, an audit log that cannot be opened, a missing setting.
  console.error(`token-gateway: ${(e as Error).message}`);
  await emulator?.close();
  process.exit(2);
}
const server = createServer(gateway);
server.keepAliveTimeout = 65_000;
// GraphQL over WebSocket (graphql-transport-ws) on the same port and path, for subscriptions.
const websocket = attachWebSocket(server, gateway);
await new Promise<void>((resolve, reject) => {
  server.once('error', reject);
  server.listen(config.port, config.host, resolve);
});
const { port } = server.address() as AddressInfo;
const host = config.host.includes(':') ? `[${config.host}]` : config.host;
const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}/graphql`;

const lines = [`token-gateway listening on ${url}${config.graphiql ? '  (open it in a browser for GraphiQL)' : ''}`];
if (emulator) {
  lines.push(`embedded upstream emulator on ${emulator.url} for: ${[needsIdaas && 'IDaaS PAM', needsIam && 'IAM'].filter(Boolean).join(', ')}`);
  lines.push((await import('./emulator/describe.ts')).describeDemoData(), ...banner);
  if (needsIdaas && config.emulator.stsTtlSeconds) lines.push(`  STS credentials live at most ${config.emulator.stsTtlSeconds} s (EMULATOR_STS_TTL_SECONDS)`);
}
console.log(lines.join('\n'));
logger.info({ url, emulator: emulator?.url }, 'listening');

let stopping = false;
/** Stops accepting, lets in-flight requests finish within the grace period, then exits. */
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  gateway.lifecycle.draining = true;
  logger.info({ signal, graceMs: config.shutdownGraceMs }, 'draining');
  const force = setTimeout(() => {
    logger.warn('grace period over: closing the remaining connections');
    server.closeAllConnections();
  }, config.shutdownGraceMs);
  force.unref();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // Answers sent while draining say `Connection: close`; connections that were idle already,
  // or that go idle without a request, are closed here until the server has closed.
  const sweep = setInterval(() => server.closeIdleConnections(), 100);
  server.closeIdleConnections();
  // Open credential leases (subscriptions) end now, each with a final error event and the end of
  // its stream; then the WebSocket connections close (1001), and SSE ones go idle and are swept.
  const leases = gateway.services.leases.size;
  await gateway.services.leases.endAll(config.shutdownGraceMs / 2);
  await websocket.close(config.shutdownGraceMs / 2);
  if (leases) logger.info({ leases }, 'credential leases ended');
  await closed;
  clearInterval(sweep);
  clearTimeout(force);
  await gateway.close();
  await emulator?.close();
  await tracing?.shutdown().catch(() => {});
  logger.info('stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
// Broker mode: `kill -HUP` re-reads POLICY_FILE; a policy that fails keeps the one in force.
process.on('SIGHUP', () => {
  const policy = gateway.services.broker?.policy;
  if (!policy) return logger.info('SIGHUP: nothing to reload (forward mode)');
  const result = policy.reload();
  if (result.ok) logger.info({ policyFile: gateway.services.broker!.config.policyFile }, 'policy reloaded');
  else logger.error({ reason: result.error }, 'policy reload failed: the previous policy stays in force');
});
process.on('SIGINT', () => void shutdown('SIGINT'));
