// `npm run bench`: the gateway as production runs it (`node dist/server.mjs`, its own process)
// in front of the upstream emulator (its own process, fixed latency), loaded by autocannon
// from this process. Side by side in one run, per upstream latency (0 and 20 ms):
//   direct REST to the emulator (the baseline), list-20 query, the same list-20 query against a
//   second gateway process in broker mode (AUTH_MODE=broker: caller OIDC JWT, Cedar policy,
//   the gateway's own cached M2M token), five-alias query, JWT mint mutation, IAM token mutation
// → req/s, p50/p99, the gateway's added p50 over the direct call, upstream calls per
// operation (emulator counters), the gateway's peak RSS, and start-up time to the first
// answered query for `node dist/server.mjs` and the `npm start` path, and broker vs forward
// list-20 (throughput and CPU/op ratios).
// At 0 ms only (scenarios.ts says why): list-20 against a gateway with the per-client rate limit
// on in memory, and against one with REDIS_URL (buckets in a redis-server the benchmark starts,
// pinned with the other servers, and stops), limits far above what the benchmark sends → Redis
// vs in-memory rate limit (throughput and CPU/op ratios, Redis commands and CPU per request).
// Prints markdown tables and writes the raw figures to bench-results/latest.json. No assertions:
// it measures; only a server that does not start (or a REDIS_URL gateway that is not using
// Redis) fails the run, with that server's stderr.
//
// Environment knobs (all optional):
//   BENCH_DURATION_S=10  BENCH_WARMUP_S=2.5  BENCH_CONNECTIONS=10  BENCH_LATENCIES=0,20
//   BENCH_SCENARIOS=direct,list20,list20-broker,list20-ratelimit,list20-redis,alias5,jwt,iam
//   (also: instance, list1, for the cost breakdown); the broker-mode, rate-limited and Redis
//   gateways (and redis-server) are started only for the scenarios that use them
//   BENCH_STARTUP_RUNS=5  BENCH_SKIP_STARTUP=1
//   BENCH_SKIP_BUILD=1  BENCH_LOG_LEVEL=info  BENCH_OUT=bench-results/latest.json
//   BENCH_GATEWAY_NODE_OPTIONS="--cpu-prof --cpu-prof-dir=bench-results/prof"  (profiling)
//   BENCH_GATEWAY_ENTRY=dist/server.mjs  (e.g. a saved copy of an earlier build, for before/after)
//   BENCH_CONTAINER_NODE_FLAGS="..."  (default: the node flags of the Dockerfile's CMD, which `node
//   dist/server.mjs` runs with here, as in the container; "" for Node's defaults)
import autocannon, { type AutocannonRequest, type AutocannonResult } from 'autocannon';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { cpus, tmpdir } from 'node:os';
import { DEMO_CALLER_AUDIENCE, DEMO_M2M_CLIENT } from '../../src/emulator/fixtures.ts';
import { IDAAS_TOKEN_PATH } from '../../src/emulator/oauth.ts';
import {
  Latencies,
  containerNodeFlags,
  redisCommand,
  redisCommandCalls,
  redisInfoNumber,
  startRedisServer,
  cpuWatch,
  emulatorCallerToken,
  emulatorRequests,
  freePort,
  killAllChildren,
  median,
  percentile,
  pinLoadGenerator,
  round,
  runToCompletion,
  sampleRss,
  spawnServer,
  timeToFirstAnswer,
  waitForLine,
  type MemoryReading,
  type PostSpec,
  type RedisProcess,
  type Spawned,
} from './lib.ts';
import {
  BROKER_CALLER,
  SCENARIOS,
  STARTUP_PROBE,
  brokerStartupProbe,
  graphqlOk,
  scenarioRequests,
  type Scenario,
  type ScenarioContext,
  type ScenarioId,
} from './scenarios.ts';

const env = process.env;
const settings = {
  durationS: Number(env.BENCH_DURATION_S ?? 10),
  warmupS: Number(env.BENCH_WARMUP_S ?? 2.5),
  connections: Number(env.BENCH_CONNECTIONS ?? 10),
  latenciesMs: (env.BENCH_LATENCIES ?? '0,20').split(',').map(Number),
  scenarios: (env.BENCH_SCENARIOS ?? SCENARIOS.filter((s) => !s.optional).map((s) => s.id).join(',')).split(',') as ScenarioId[],
  startupRuns: Number(env.BENCH_STARTUP_RUNS ?? 5),
  skipStartup: env.BENCH_SKIP_STARTUP === '1',
  skipBuild: env.BENCH_SKIP_BUILD === '1',
  logLevel: env.BENCH_LOG_LEVEL ?? 'info',
  gatewayNodeOptions: (env.BENCH_GATEWAY_NODE_OPTIONS ?? '').split(' ').filter(Boolean),
  gatewayEntry: env.BENCH_GATEWAY_ENTRY ?? 'dist/server.mjs',
  /** The container's node flags (its CMD's, read from the Dockerfile), unless BENCH_CONTAINER_NODE_FLAGS says otherwise. */
  containerNodeFlags: env.BENCH_CONTAINER_NODE_FLAGS !== undefined ? env.BENCH_CONTAINER_NODE_FLAGS.split(' ').filter(Boolean) : containerNodeFlags(),
  out: resolve(env.BENCH_OUT ?? 'bench-results/latest.json'),
};

const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- processes

interface Server extends Spawned {
  url: string;
}

async function startEmulatorProcess(latencyMs: number, pinned: boolean): Promise<Server> {
  const out = { text: '' };
  const sp = spawnServer(process.execPath, ['--import', 'tsx', 'src/emulator/main.ts'], {
    env: { EMULATOR_PORT: '0', HOST: '127.0.0.1', EMULATOR_LATENCY_MS: String(latencyMs), NODE_ENV: 'production' },
    pinned,
    stdout: 'pipe',
    onStdout: (d) => {
      if (out.text.length < 10_000) out.text += d;
    },
  });
  const m = await waitForLine(sp, /listening on (http:\/\/\S+)/, out);
  return { ...sp, url: m[1]! };
}

function gatewayEnv(emulatorUrl: string, port: number): Record<string, string> {
  return {
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    AUTH_MODE: 'forward', // whatever the shell says; the broker-mode gateway overrides it
    EMULATOR: 'off',
    IDAAS_ENDPOINT: emulatorUrl,
    IAM_ENDPOINTS: `emulator=${emulatorUrl}`,
    RATE_LIMIT_PER_MINUTE: '0', // a benchmark is one client far above any per-client limit
    LOG_LEVEL: settings.logLevel,
    SHUTDOWN_GRACE_MS: '2000',
  };
}

/**
 * The broker-mode gateway's settings (on top of gatewayEnv): the emulator is the IDaaS token
 * endpoint (demo M2M client) and the callers' OIDC issuer; policies/demo.cedar decides.
 */
function brokerEnv(emulatorUrl: string, auditLog: string): Record<string, string> {
  return {
    AUTH_MODE: 'broker',
    IDAAS_TOKEN_ENDPOINT: `${emulatorUrl}${IDAAS_TOKEN_PATH}`,
    IDAAS_CLIENT_ID: DEMO_M2M_CLIENT.clientId,
    IDAAS_CLIENT_SECRET: DEMO_M2M_CLIENT.clientSecret,
    CALLER_ISSUER: `${emulatorUrl}/oidc`,
    CALLER_AUDIENCE: DEMO_CALLER_AUDIENCE,
    POLICY_FILE: resolve('policies/demo.cedar'),
    AUDIT_LOG: auditLog, // lists write no audit lines; only mints do
    AUDIT_HMAC_KEY: randomBytes(32).toString('base64url'),
  };
}

/**
 * The rate-limited gateways' limits (list20-ratelimit, list20-redis): the highest the config
 * accepts (10 000 000 a minute, burst 10 000 000), far above the few thousand requests a second
 * the benchmark sends with two tokens, so no request is ever refused (a refusal would count as
 * failed) and the Redis buckets stay on their fast path (src/shared/rate-limit.ts: 10 000 000
 * points per 60 s window, a client waits for Redis only when fewer than 1 000 000 are left).
 */
const RATE_LIMIT_ON = { RATE_LIMIT_PER_MINUTE: '10000000', RATE_LIMIT_BURST: '10000000' };

/**
 * Starts a gateway and resolves once it has answered `probe` (the list-20 query); `startupMs` is
 * spawn → answer. If it exits, times out or answers wrongly, it is stopped and the error names
 * `what` and carries its stderr.
 */
async function startGateway(
  cmd: string,
  args: string[],
  emulatorUrl: string,
  pinned: boolean,
  extraEnv: Record<string, string> = {},
  probe: Omit<PostSpec, 'url'> = STARTUP_PROBE,
  what = 'gateway',
): Promise<Server & { startupMs: number }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const t0 = performance.now();
  // stdout (one JSON log line per operation, at info) goes to /dev/null, as to a log shipper
  // that keeps up; reading it here would cost the load generator's core.
  const sp = spawnServer(cmd, args, { env: { ...gatewayEnv(emulatorUrl, port), ...extraEnv }, pinned, stdout: 'ignore' });
  try {
    const startupMs = await timeToFirstAnswer({ url: `${url}/graphql`, ...probe }, graphqlOk, t0, sp);
    return { ...sp, url, startupMs };
  } catch (e) {
    await sp.stop(1_000);
    const msg = e instanceof Error ? e.message : String(e);
    throw new Error(
      `${what} did not start (${[cmd, ...args].join(' ')}): ${msg}` + (msg.includes('stderr:') ? '' : `\nstderr:\n${sp.stderr() || '(empty)'}`),
    );
  }
}

/** `node dist/server.mjs` runs with the container's node flags (the Dockerfile's CMD). */
const gatewayArgs = () => [...settings.containerNodeFlags, ...settings.gatewayNodeOptions, settings.gatewayEntry];

const STARTUP_COMMANDS: { id: string; label: string; cmd: string; args: string[]; env?: Record<string, string>; runs: () => number }[] = [
  { id: 'node', label: '`node dist/server.mjs` (the container)', cmd: process.execPath, args: [...settings.containerNodeFlags, settings.gatewayEntry], runs: () => settings.startupRuns },
  { id: 'tsx', label: '`tsx src/server.ts` (what `npm run dev` runs)', cmd: 'node_modules/.bin/tsx', args: ['src/server.ts'], runs: () => Math.max(1, Math.ceil(settings.startupRuns / 2)) },
  { id: 'npm-start', label: '`npm start` (npm itself, then scripts/start.mjs: the staleness check and the bundle)', cmd: 'npm', args: ['start', '--silent'], runs: () => Math.max(1, Math.ceil(settings.startupRuns / 2)) },
];

interface StartupResult {
  id: string;
  label: string;
  runsMs: number[];
  medianMs: number;
  minMs: number;
  maxMs: number;
}

async function measureStartup(emulatorUrl: string, pinned: boolean): Promise<StartupResult[]> {
  const results: StartupResult[] = [];
  for (const c of STARTUP_COMMANDS) {
    const runsMs: number[] = [];
    for (let i = 0; i < c.runs(); i++) {
      const gw = await startGateway(c.cmd, c.args, emulatorUrl, pinned, c.env);
      runsMs.push(round(gw.startupMs, 1));
      await gw.stop();
      await sleep(100);
    }
    results.push({ id: c.id, label: c.label, runsMs, medianMs: round(median(runsMs), 1), minMs: Math.min(...runsMs), maxMs: Math.max(...runsMs) });
    log(`start-up ${c.label}: ${runsMs.join(', ')} ms`);
  }
  return results;
}

// ---------------------------------------------------------------- load

interface ScenarioResult {
  id: ScenarioId;
  label: string;
  upstreamLatencyMs: number;
  reqPerSec: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  meanMs: number;
  /** p50 of this scenario − p50 of the direct call at the same upstream latency. */
  addedP50Ms: number | null;
  /** Emulator requests during the measurement ÷ requests sent to the gateway. */
  upstreamCallsPerOp: number | null;
  completed: number;
  sent: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  mismatches: number;
  durationS: number;
  /** Gateway CPU time (user + system) per completed request, ms: robust to other load on the machine. */
  gatewayCpuMsPerOp: number | null;
  /** Emulator CPU time per completed request, ms. */
  emulatorCpuMsPerOp: number;
  /** Cores kept busy by processes outside the benchmark during the measurement (noise). */
  otherCores: number;
  gatewayMemory: MemoryReading | null;
  /** list20-redis only: what Redis did for it. */
  redis: RedisReading | null;
  /** autocannon's own (integer-millisecond) histogram, for reference. */
  autocannonLatency: { p50: number; p99: number; mean: number };
}

interface RedisReading {
  /**
   * Rate-limit consumes (rate-limiter-flexible's Lua script: EVALSHA, one per key and batch)
   * during the measurement ÷ completed requests: the gateway's round trips to Redis per request.
   */
  consumesPerOp: number;
  /** Commands redis-server processed during the measurement (those the script runs included) ÷ completed requests. */
  commandsPerOp: number;
  /** redis-server's CPU time per completed request, ms (it shares core 0 with the gateway). */
  cpuMsPerOp: number;
  /** The gateway's redis_fallbacks_total at the end (decisions taken without Redis): 0 when Redis was used throughout. */
  fallbacks: number;
  /** Keys in Redis at the end (the rate-limit buckets and the cursor key). */
  keys: number;
}

/** EVAL and EVALSHA calls: rate-limiter-flexible's consumes. */
const scriptCalls = (calls: Record<string, number>) => (calls.evalsha ?? 0) + (calls.eval ?? 0);

/** Sum of a counter's samples in the gateway's /metrics (0 when it has none yet). */
async function gatewayCounter(gatewayUrl: string, name: string): Promise<number> {
  const res = await fetch(`${gatewayUrl}/metrics`);
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET ${gatewayUrl}/metrics answered ${res.status}: ${text.slice(0, 300)}`);
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

function load(url: string, requests: AutocannonRequest[], s: Scenario, durationS: number) {
  return autocannon({
    url,
    connections: settings.connections,
    duration: durationS,
    timeout: 30,
    requests,
    verifyBody: s.verify,
  });
}

/**
 * `gateway` is the gateway this scenario loads (for the direct REST baseline, the forward one,
 * whose CPU is then not reported); `redis`, the redis-server behind it (list20-redis).
 */
async function runScenario(
  s: Scenario,
  emulator: Server,
  gateway: Server,
  latencyMs: number,
  ctx: ScenarioContext,
  redis?: RedisProcess,
): Promise<ScenarioResult> {
  const url = s.target === 'emulator' ? emulator.url : gateway.url;
  const requests = scenarioRequests(s, ctx);
  const viaGateway = s.target !== 'emulator';
  await load(url, requests, s, settings.warmupS);
  await sleep(latencyMs + 200); // let abandoned warm-up requests finish upstream
  const upstreamBefore = await emulatorRequests(emulator.url);
  const redisBefore = redis ? await redisInfoNumber(redis.port, 'stats', 'total_commands_processed') : 0;
  const consumesBefore = redis ? scriptCalls(await redisCommandCalls(redis.port)) : 0;
  const latencies = new Latencies();
  const memory = viaGateway ? sampleRss(gateway.pid) : undefined;
  const cpu = cpuWatch({ gateway: gateway.pid, emulator: emulator.pid, ...(redis ? { redis: redis.pid } : {}) });
  const instance = load(url, requests, s, settings.durationS);
  instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
    if (status >= 200 && status < 300) latencies.add(ms);
  });
  const r: AutocannonResult = await instance;
  const used = cpu.delta();
  const gatewayMemory = memory?.stop() ?? null;
  await sleep(latencyMs + 200);
  const upstreamAfter = await emulatorRequests(emulator.url);
  let redisReading: RedisReading | null = null;
  if (redis) {
    // The two INFOs after the first one's reading are counted too: taken off.
    const commands = (await redisInfoNumber(redis.port, 'stats', 'total_commands_processed')) - redisBefore - 2;
    const consumes = scriptCalls(await redisCommandCalls(redis.port)) - consumesBefore;
    redisReading = {
      consumesPerOp: round(consumes / Math.max(1, r.requests.total), 4),
      commandsPerOp: round(commands / Math.max(1, r.requests.total), 4),
      cpuMsPerOp: round(used.cpuMs.redis! / Math.max(1, r.requests.total), 4),
      fallbacks: await gatewayCounter(gateway.url, 'redis_fallbacks_total'),
      keys: Number(await redisCommand(redis.port, 'DBSIZE')),
    };
  }
  const sorted = latencies.sorted();
  const mean = sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length);
  return {
    id: s.id,
    label: s.label,
    upstreamLatencyMs: latencyMs,
    reqPerSec: round(r.requests.total / r.duration, 0),
    p50Ms: round(percentile(sorted, 50), 3),
    p90Ms: round(percentile(sorted, 90), 3),
    p99Ms: round(percentile(sorted, 99), 3),
    meanMs: round(mean, 3),
    addedP50Ms: null,
    upstreamCallsPerOp: viaGateway ? round((upstreamAfter - upstreamBefore) / Math.max(1, r.requests.sent), 3) : null,
    completed: r.requests.total,
    sent: r.requests.sent,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    mismatches: r.mismatches,
    durationS: r.duration,
    gatewayCpuMsPerOp: viaGateway ? round(used.cpuMs.gateway! / Math.max(1, r.requests.total), 3) : null,
    emulatorCpuMsPerOp: round(used.cpuMs.emulator! / Math.max(1, r.requests.total), 3),
    otherCores: round(used.otherCores, 2),
    gatewayMemory,
    redis: redisReading,
    autocannonLatency: { p50: r.latency.p50, p99: r.latency.p99, mean: r.latency.mean },
  };
}

// ---------------------------------------------------------------- report

function machine(pinning: string) {
  const model = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  return { nproc: cpus().length, cpuModel: model, node: process.version, platform: `${process.platform} ${process.arch}`, pinning };
}

const fmt = (x: number | null | undefined, digits = 2) => (x === null || x === undefined || Number.isNaN(x) ? '–' : x.toFixed(digits));
const signed = (x: number | null | undefined, digits = 2) => (x === null || x === undefined || Number.isNaN(x) ? '–' : `${x >= 0 ? '+' : ''}${x.toFixed(digits)}`);

function markdown(report: Report): string {
  const m = report.machine;
  const lines: string[] = [];
  lines.push(
    `Machine: nproc ${m.nproc}, ${m.cpuModel}, Node ${m.node}; ${m.pinning}. ` +
      `autocannon ${settings.connections} connections, ${settings.durationS} s per scenario after a ${settings.warmupS} s warm-up; ` +
      `gateway \`node ${[...settings.containerNodeFlags, 'dist/server.mjs'].join(' ')}\`${settings.containerNodeFlags.length ? '' : ", Node's default options"} (as in the container), NODE_ENV=production, LOG_LEVEL=${settings.logLevel} (logs to /dev/null), rate limit off except where a scenario says otherwise ` +
      `(RATE_LIMIT_PER_MINUTE=${RATE_LIMIT_ON.RATE_LIMIT_PER_MINUTE}, RATE_LIMIT_BURST=${RATE_LIMIT_ON.RATE_LIMIT_BURST}: never reached).`,
  );
  lines.push('');
  lines.push('| upstream latency | scenario | req/s | p50 ms | p99 ms | added p50 ms | upstream calls/op | gateway CPU ms/op | gateway peak RSS MB | failed |');
  lines.push('| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of report.scenarios) {
    const failed = r.non2xx + r.errors + r.timeouts + r.mismatches;
    lines.push(
      `| ${r.upstreamLatencyMs} ms | ${r.label} | ${fmt(r.reqPerSec, 0)} | ${fmt(r.p50Ms)} | ${fmt(r.p99Ms)} | ${fmt(r.addedP50Ms)} | ${fmt(r.upstreamCallsPerOp)} | ${fmt(r.gatewayCpuMsPerOp, 3)} | ${fmt(r.gatewayMemory?.peakSampledRssMB, 1)} | ${failed} |`,
    );
  }
  if (report.brokerVsForward.length) lines.push('');
  for (const c of report.brokerVsForward) {
    lines.push(
      `Broker vs forward list-20 (${c.upstreamLatencyMs} ms upstream): ${fmt(c.reqPerSecRatio, 3)}× the throughput (${fmt(c.brokerReqPerSec, 0)} vs ${fmt(c.forwardReqPerSec, 0)} req/s), ` +
        `${fmt(c.cpuMsPerOpRatio, 3)}× the gateway CPU per request (${fmt(c.brokerCpuMsPerOp, 3)} vs ${fmt(c.forwardCpuMsPerOp, 3)} ms), p50 ${c.p50DiffMs >= 0 ? '+' : ''}${fmt(c.p50DiffMs)} ms` +
        (report.brokerGatewayVmHwmMB[c.upstreamLatencyMs] !== undefined ? `; broker gateway VmHWM ${fmt(report.brokerGatewayVmHwmMB[c.upstreamLatencyMs], 1)} MB.` : '.'),
    );
  }
  for (const c of report.redisVsMemory) {
    lines.push(
      `Redis vs in-memory rate limit (list-20, ${c.upstreamLatencyMs} ms upstream): ${fmt(c.reqPerSecRatio, 3)}× the throughput (${fmt(c.redisReqPerSec, 0)} vs ${fmt(c.memoryReqPerSec, 0)} req/s), ` +
        `${fmt(c.cpuMsPerOpRatio, 3)}× the gateway CPU per request (${fmt(c.redisCpuMsPerOp, 3)} vs ${fmt(c.memoryCpuMsPerOp, 3)} ms: ${signed(c.addedCpuMsPerOp, 3)} ms), ` +
        `p50 ${signed(c.p50DiffMs)} ms; per request ${fmt(c.redisConsumesPerOp, 3)} rate-limit round trips to Redis (${fmt(c.redisCommandsPerOp, 3)} Redis commands) and ${fmt(c.redisServerCpuMsPerOp, 3)} ms of redis-server CPU, ${c.redisFallbacks} fallbacks to memory` +
        (c.offCpuMsPerOp !== null ? `; the in-memory rate limit itself: ${signed(c.memoryVsOffCpuMsPerOp, 3)} ms CPU per request over list-20 with it off (${fmt(c.offCpuMsPerOp, 3)} ms).` : '.'),
    );
  }
  const other = Math.max(0, ...report.scenarios.map((r) => r.otherCores));
  lines.push('');
  lines.push(
    `Other load on the machine during the measurements: up to ${other.toFixed(2)} cores` +
      (other > 0.2 ? ' (the figures above are depressed by it; CPU ms/op is the least affected)' : ' (a quiet machine)') + '.',
  );
  if (report.startup.length) {
    lines.push('');
    lines.push('| start-up to first answered query | median ms | min ms | max ms | runs |');
    lines.push('| --- | ---: | ---: | ---: | ---: |');
    for (const s of report.startup) lines.push(`| ${s.label} | ${fmt(s.medianMs, 0)} | ${fmt(s.minMs, 0)} | ${fmt(s.maxMs, 0)} | ${s.runsMs.length} |`);
  }
  lines.push('');
  lines.push('| target | measured | met |');
  lines.push('| --- | --- | :---: |');
  for (const t of report.targets) lines.push(`| ${t.target} | ${t.measured} | ${t.met === null ? '–' : t.met ? 'yes' : '**no**'} |`);
  return lines.join('\n');
}

interface Target {
  target: string;
  measured: string;
  met: boolean | null;
}

interface BrokerVsForward {
  upstreamLatencyMs: number;
  /** broker req/s ÷ forward req/s (list-20). */
  reqPerSecRatio: number;
  /** broker gateway CPU ms/op ÷ forward gateway CPU ms/op (list-20). */
  cpuMsPerOpRatio: number | null;
  /** broker p50 − forward p50, ms. */
  p50DiffMs: number;
  forwardReqPerSec: number;
  brokerReqPerSec: number;
  forwardCpuMsPerOp: number | null;
  brokerCpuMsPerOp: number | null;
}

function brokerVsForward(results: ScenarioResult[]): BrokerVsForward[] {
  const out: BrokerVsForward[] = [];
  for (const latency of settings.latenciesMs) {
    const fwd = results.find((r) => r.id === 'list20' && r.upstreamLatencyMs === latency);
    const brk = results.find((r) => r.id === 'list20-broker' && r.upstreamLatencyMs === latency);
    if (!fwd || !brk) continue;
    out.push({
      upstreamLatencyMs: latency,
      reqPerSecRatio: round(brk.reqPerSec / fwd.reqPerSec, 3),
      cpuMsPerOpRatio: fwd.gatewayCpuMsPerOp && brk.gatewayCpuMsPerOp !== null ? round(brk.gatewayCpuMsPerOp / fwd.gatewayCpuMsPerOp, 3) : null,
      p50DiffMs: round(brk.p50Ms - fwd.p50Ms, 3),
      forwardReqPerSec: fwd.reqPerSec,
      brokerReqPerSec: brk.reqPerSec,
      forwardCpuMsPerOp: fwd.gatewayCpuMsPerOp,
      brokerCpuMsPerOp: brk.gatewayCpuMsPerOp,
    });
  }
  return out;
}

interface RedisVsMemory {
  upstreamLatencyMs: number;
  /** list20-redis req/s ÷ list20-ratelimit req/s. */
  reqPerSecRatio: number;
  /** list20-redis gateway CPU ms/op ÷ list20-ratelimit gateway CPU ms/op. */
  cpuMsPerOpRatio: number | null;
  /** What Redis adds to the gateway's CPU per request, ms (redis − in-memory). */
  addedCpuMsPerOp: number | null;
  /** redis p50 − in-memory p50, ms. */
  p50DiffMs: number;
  memoryReqPerSec: number;
  redisReqPerSec: number;
  memoryCpuMsPerOp: number | null;
  redisCpuMsPerOp: number | null;
  redisConsumesPerOp: number | null;
  redisCommandsPerOp: number | null;
  /** redis-server's own CPU per request, ms (on the gateway's core). */
  redisServerCpuMsPerOp: number | null;
  /** Rate-limit decisions the Redis gateway took from its memory (Redis unavailable): should be 0. */
  redisFallbacks: number | null;
  /** list20 (rate limit off) gateway CPU ms/op, when it ran at this latency. */
  offCpuMsPerOp: number | null;
  /** In-memory rate limit − off, gateway CPU ms/op. */
  memoryVsOffCpuMsPerOp: number | null;
}

function redisVsMemory(results: ScenarioResult[]): RedisVsMemory[] {
  const out: RedisVsMemory[] = [];
  const diff = (a: number | null | undefined, b: number | null | undefined) => (a === null || a === undefined || b === null || b === undefined ? null : round(a - b, 4));
  for (const latency of settings.latenciesMs) {
    const mem = results.find((r) => r.id === 'list20-ratelimit' && r.upstreamLatencyMs === latency);
    const red = results.find((r) => r.id === 'list20-redis' && r.upstreamLatencyMs === latency);
    const off = results.find((r) => r.id === 'list20' && r.upstreamLatencyMs === latency);
    if (!mem || !red) continue;
    out.push({
      upstreamLatencyMs: latency,
      reqPerSecRatio: round(red.reqPerSec / mem.reqPerSec, 3),
      cpuMsPerOpRatio: mem.gatewayCpuMsPerOp && red.gatewayCpuMsPerOp !== null ? round(red.gatewayCpuMsPerOp / mem.gatewayCpuMsPerOp, 3) : null,
      addedCpuMsPerOp: diff(red.gatewayCpuMsPerOp, mem.gatewayCpuMsPerOp),
      p50DiffMs: round(red.p50Ms - mem.p50Ms, 3),
      memoryReqPerSec: mem.reqPerSec,
      redisReqPerSec: red.reqPerSec,
      memoryCpuMsPerOp: mem.gatewayCpuMsPerOp,
      redisCpuMsPerOp: red.gatewayCpuMsPerOp,
      redisConsumesPerOp: red.redis?.consumesPerOp ?? null,
      redisCommandsPerOp: red.redis?.commandsPerOp ?? null,
      redisServerCpuMsPerOp: red.redis?.cpuMsPerOp ?? null,
      redisFallbacks: red.redis?.fallbacks ?? null,
      offCpuMsPerOp: off?.gatewayCpuMsPerOp ?? null,
      memoryVsOffCpuMsPerOp: diff(mem.gatewayCpuMsPerOp, off?.gatewayCpuMsPerOp),
    });
  }
  return out;
}

function targets(
  results: ScenarioResult[],
  startup: StartupResult[],
  hwm: Record<number, number>,
  vsForward: BrokerVsForward[],
  vsMemory: RedisVsMemory[],
): Target[] {
  const find = (id: ScenarioId, latency: number) => results.find((r) => r.id === id && r.upstreamLatencyMs === latency);
  const out: Target[] = [];
  for (const latency of settings.latenciesMs) {
    const direct = find('direct', latency);
    const list = find('list20', latency);
    if (direct && list) {
      const ratio = list.reqPerSec / direct.reqPerSec;
      out.push({ target: `list-20 req/s ≥ 25% of direct REST (${latency} ms upstream)`, measured: `${(ratio * 100).toFixed(1)}%`, met: ratio >= 0.25 });
    }
  }
  const added = results.filter((r) => r.upstreamLatencyMs === 20 && r.id === 'list20');
  for (const r of added) out.push({ target: 'p50 added latency ≤ 1 ms (list-20, 20 ms upstream)', measured: `${fmt(r.addedP50Ms, 3)} ms`, met: r.addedP50Ms !== null && r.addedP50Ms <= 1 });
  for (const r of results.filter((x) => x.id === 'alias5')) {
    out.push({ target: `five-alias query = 1 upstream call (${r.upstreamLatencyMs} ms upstream)`, measured: `${fmt(r.upstreamCallsPerOp, 3)}`, met: r.upstreamCallsPerOp !== null && Math.round(r.upstreamCallsPerOp * 100) / 100 <= 1 });
  }
  for (const c of vsForward) {
    out.push({
      target: `broker-mode list-20 req/s within 10% of forward mode (${c.upstreamLatencyMs} ms upstream)`,
      measured: `${(c.reqPerSecRatio * 100).toFixed(1)}% of forward's req/s`,
      met: c.reqPerSecRatio >= 0.9,
    });
  }
  for (const r of results.filter((x) => x.id === 'list20-broker')) {
    out.push({
      target: `broker-mode list-20 = 1 upstream call, M2M token cached (${r.upstreamLatencyMs} ms upstream)`,
      measured: `${fmt(r.upstreamCallsPerOp, 3)}`,
      met: r.upstreamCallsPerOp !== null && Math.round(r.upstreamCallsPerOp * 100) / 100 <= 1,
    });
  }
  for (const c of vsMemory) {
    // Throughput decides (as for broker mode); the CPU ratio is shown beside it. Decisions
    // taken from memory because Redis was unavailable would make it an in-memory figure: not met.
    out.push({
      target: `list-20 with REDIS_URL within 15% of in-memory (${c.upstreamLatencyMs} ms upstream)`,
      measured:
        `${(c.reqPerSecRatio * 100).toFixed(1)}% of in-memory's req/s, ${fmt(c.cpuMsPerOpRatio, 3)}× its gateway CPU/op` +
        (c.redisFallbacks ? `; ${c.redisFallbacks} decisions fell back to memory (Redis unavailable)` : ''),
      met: c.reqPerSecRatio >= 0.85 && c.redisFallbacks === 0,
    });
  }
  const peaks = Object.values(hwm);
  if (peaks.length) {
    const peak = Math.max(...peaks);
    out.push({ target: 'gateway peak RSS under load ≤ 150 MB (VmHWM)', measured: `${fmt(peak, 1)} MB`, met: peak <= 150 });
  }
  const node = startup.find((s) => s.id === 'node');
  if (node) out.push({ target: 'start-up to first answered query ≤ 0.5 s (`node dist/server.mjs`, median)', measured: `${fmt(node.medianMs, 0)} ms`, met: node.medianMs <= 500 });
  // `npm start` (npm's own start-up excluded) and its process tree: test/bench/npm-start.ts.
  return out;
}

interface Report {
  generatedAt: string;
  machine: ReturnType<typeof machine>;
  settings: typeof settings;
  startup: StartupResult[];
  scenarios: ScenarioResult[];
  /** The gateway's VmHWM (MB) at the end of each upstream-latency run. */
  gatewayVmHwmMB: Record<number, number>;
  /** The same for the broker-mode gateway (when list20-broker ran). */
  brokerGatewayVmHwmMB: Record<number, number>;
  /** list20-broker against list20, per upstream latency. */
  brokerVsForward: BrokerVsForward[];
  /** list20-redis against list20-ratelimit, per upstream latency (0 ms only). */
  redisVsMemory: RedisVsMemory[];
  targets: Target[];
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const started = performance.now();
  const pin = pinLoadGenerator();
  log(pin.note);
  if (!settings.skipBuild) {
    log('npm run build');
    runToCompletion('npm', ['run', 'build', '--silent']);
  }
  const unknown = settings.scenarios.filter((id) => !SCENARIOS.some((s) => s.id === id));
  if (unknown.length) throw new Error(`BENCH_SCENARIOS: unknown ${unknown.join(', ')} (known: ${SCENARIOS.map((s) => s.id).join(', ')})`);
  const chosen = SCENARIOS.filter((s) => settings.scenarios.includes(s.id));
  const runsAt = (s: Scenario, latencyMs: number) => !s.onlyAtLatenciesMs || s.onlyAtLatenciesMs.includes(latencyMs);
  for (const s of chosen) {
    if (!settings.latenciesMs.some((l) => runsAt(s, l))) log(`${s.id} runs at ${s.onlyAtLatenciesMs!.join(', ')} ms upstream latency only, not in BENCH_LATENCIES: skipped`);
  }
  const needsBroker = chosen.some((s) => s.target === 'broker');
  const results: ScenarioResult[] = [];
  const hwm: Record<number, number> = {};
  const brokerHwm: Record<number, number> = {};
  let startup: StartupResult[] = [];
  // The broker-mode gateway's audit log (lists write none; AUDIT_LOG is required all the same).
  const auditDir = needsBroker ? mkdtempSync(join(tmpdir(), 'bench-broker-')) : undefined;
  // Long enough for every scenario of one upstream latency, twice over.
  const callerTokenSeconds = Math.max(7200, Math.ceil(2 * chosen.length * (settings.warmupS + settings.durationS + 5)));

  try {
    for (const [i, latencyMs] of settings.latenciesMs.entries()) {
      const here = chosen.filter((s) => runsAt(s, latencyMs));
      const emulator = await startEmulatorProcess(latencyMs, pin.pinned);
      let gateway: (Server & { startupMs: number }) | undefined;
      let broker: (Server & { startupMs: number }) | undefined;
      let rateLimited: (Server & { startupMs: number }) | undefined;
      let redisServer: RedisProcess | undefined;
      let redisGateway: (Server & { startupMs: number }) | undefined;
      try {
        await emulatorRequests(emulator.url); // warms this process's fetch before anything is timed
        if (i === 0 && !settings.skipStartup) startup = await measureStartup(emulator.url, pin.pinned);
        gateway = await startGateway(process.execPath, gatewayArgs(), emulator.url, pin.pinned, {});
        log(`upstream latency ${latencyMs} ms: emulator ${emulator.url} (pid ${emulator.pid}), gateway ${gateway.url} (pid ${gateway.pid})`);
        const ctx: ScenarioContext = { brokerAuthorization: '' };
        if (here.some((s) => s.target === 'broker')) {
          // Caller tokens are signed by this emulator's issuer (a new key per emulator process).
          const callerToken = await emulatorCallerToken(emulator.url, {
            sub: BROKER_CALLER.subject,
            groups: BROKER_CALLER.groups,
            expiresInSeconds: callerTokenSeconds,
          });
          ctx.brokerAuthorization = `Bearer ${callerToken}`;
          broker = await startGateway(
            process.execPath,
            gatewayArgs(),
            emulator.url,
            pin.pinned,
            { ...brokerEnv(emulator.url, join(auditDir!, `audit-${latencyMs}ms.log`)) },
            brokerStartupProbe(ctx),
            'broker-mode gateway (AUTH_MODE=broker)',
          );
          log(`  broker-mode gateway ${broker.url} (pid ${broker.pid}), first answer after ${round(broker.startupMs, 0)} ms`);
        }
        if (here.some((s) => s.target === 'ratelimit')) {
          rateLimited = await startGateway(
            process.execPath,
            gatewayArgs(),
            emulator.url,
            pin.pinned,
            { ...RATE_LIMIT_ON },
            STARTUP_PROBE,
            'rate-limited gateway (in memory)',
          );
          log(`  rate-limited gateway (in memory) ${rateLimited.url} (pid ${rateLimited.pid})`);
        }
        if (here.some((s) => s.target === 'redis')) {
          redisServer = await startRedisServer(pin.pinned);
          log(`  redis-server ${redisServer.url} (pid ${redisServer.pid})`);
          redisGateway = await startGateway(
            process.execPath,
            gatewayArgs(),
            emulator.url,
            pin.pinned,
            { ...RATE_LIMIT_ON, REDIS_URL: redisServer.url },
            STARTUP_PROBE,
            'rate-limited gateway (REDIS_URL)',
          );
          // A gateway that cannot reach Redis starts all the same, on its own memory: that
          // would measure the in-memory limit twice.
          const ready = await fetch(`${redisGateway.url}/ready`).then((r) => r.text());
          let redisState: unknown;
          try {
            redisState = (JSON.parse(ready) as { redis?: unknown }).redis;
          } catch {
            /* not JSON: reported below */
          }
          if (redisState !== 'ok') {
            throw new Error(`rate-limited gateway (REDIS_URL=${redisServer.url}) is not using Redis: /ready ${ready}\nstderr:\n${redisGateway.stderr() || '(empty)'}`);
          }
          log(`  rate-limited gateway (REDIS_URL) ${redisGateway.url} (pid ${redisGateway.pid}), /ready redis ok`);
        }
        const targetGateway: Record<Exclude<Scenario['target'], 'emulator'>, Server | undefined> = {
          gateway,
          broker,
          ratelimit: rateLimited,
          redis: redisGateway,
        };
        const batch: ScenarioResult[] = [];
        for (const s of here) {
          const target = s.target === 'emulator' ? gateway : targetGateway[s.target]!;
          const r = await runScenario(s, emulator, target, latencyMs, ctx, s.target === 'redis' ? redisServer : undefined);
          batch.push(r);
          log(
            `  ${s.label}: ${r.reqPerSec} req/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, upstream/op ${r.upstreamCallsPerOp ?? '–'}, ` +
              `gw cpu ${r.gatewayCpuMsPerOp ?? '–'} ms/op, emu cpu ${r.emulatorCpuMsPerOp} ms/op, other load ${r.otherCores} cores, ` +
              `rss ${r.gatewayMemory?.peakSampledRssMB ?? '–'} MB, failed ${r.non2xx + r.errors + r.timeouts + r.mismatches}` +
              (r.redis ? `; redis ${r.redis.consumesPerOp} consumes/op, ${r.redis.commandsPerOp} cmd/op, cpu ${r.redis.cpuMsPerOp} ms/op, ${r.redis.keys} keys, fallbacks ${r.redis.fallbacks}` : ''),
          );
        }
        const direct = batch.find((r) => r.id === 'direct');
        if (direct) for (const r of batch) if (r.id !== 'direct') r.addedP50Ms = round(r.p50Ms - direct.p50Ms, 3);
        results.push(...batch);
        hwm[latencyMs] = sampleRss(gateway.pid).stop().vmHwmMB;
        if (broker) brokerHwm[latencyMs] = sampleRss(broker.pid).stop().vmHwmMB;
      } finally {
        // Every one of them, whatever failed (each stop only waits for the exit; SIGKILL after
        // its grace); killAllChildren at exit is the backstop.
        for (const p of [redisGateway, rateLimited, broker, gateway, redisServer, emulator]) {
          await p?.stop().catch((e: unknown) => log(`stopping pid ${p.pid}: ${String(e)}`));
        }
      }
    }
  } finally {
    if (auditDir) rmSync(auditDir, { recursive: true, force: true });
  }

  const vsForward = brokerVsForward(results);
  const vsMemory = redisVsMemory(results);
  const report: Report = {
    generatedAt: new Date().toISOString(),
    machine: machine(pin.note),
    settings,
    startup,
    scenarios: results,
    gatewayVmHwmMB: hwm,
    brokerGatewayVmHwmMB: brokerHwm,
    brokerVsForward: vsForward,
    redisVsMemory: vsMemory,
    targets: targets(results, startup, hwm, vsForward, vsMemory),
  };
  mkdirSync(dirname(settings.out), { recursive: true });
  writeFileSync(settings.out, `${JSON.stringify(report, null, 2)}\n`);
  console.log(markdown(report));
  log(`raw figures: ${settings.out}; whole run ${((performance.now() - started) / 1000).toFixed(0)} s`);
}

try {
  await main();
} catch (e) {
  log(`failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exitCode = 1;
} finally {
  killAllChildren();
}
