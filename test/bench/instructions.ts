// Instructions per list-20 request, counted by valgrind (cachegrind without cache simulation):
// the same build gives the same count within about 1%, whatever else the machine is doing, where
// CPU time per request on this shared machine swings by ±10-20% from one run to the next. For
// small per-request changes, beside `npm run bench:ab` (which measures time, syscalls included;
// these counts leave the kernel out).
//   npx tsx test/bench/instructions.ts before=/path/to/old/server.mjs after=dist/server.mjs
//   node flags instead of the container's: defaults=dist/server.mjs@ other=dist/server.mjs@--max-semi-space-size=4
// Each build runs twice under valgrind, with BENCH_IR_FEW (300) and BENCH_IR_MANY (1300) requests
// after the first answer, one at a time; the difference over the extra requests is the figure,
// so start-up and warm-up cancel out. The gateway runs with the container's node flags plus
// --single-threaded (V8 compiles and collects on the main thread, so that the threads' schedule
// under valgrind does not change what is counted). The emulator runs in this process, with no latency.
// BENCH_IR_REDIS=1: the gateway with its rate limit on and REDIS_URL (a redis-server this script
// starts and stops), as the bench's list20-redis row. Loopback only; about two minutes per build.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmulator } from '../../src/emulator/index.ts';
import { DEMO_ACCESS_TOKENS, DEMO_CONSUMERS, DEMO_CREDENTIAL_PROVIDERS, DEMO_INSTANCE_ID } from '../../src/emulator/fixtures.ts';
import { containerNodeFlags, startRedisServer, type RedisProcess } from './lib.ts';
import { graphqlBody, graphqlOk, LIST20 } from './scenarios.ts';

const FEW = Number(process.env.BENCH_IR_FEW ?? 300);
const MANY = Number(process.env.BENCH_IR_MANY ?? 1300);
const BODY = graphqlBody(LIST20, { instanceId: DEMO_INSTANCE_ID, consumerId: DEMO_CONSUMERS.large, provider: DEMO_CREDENTIAL_PROVIDERS.jwt.identifier });
const HEADERS = { 'content-type': 'application/json', accept: 'application/json', authorization: `Bearer ${DEMO_ACCESS_TOKENS.full.token}` };

const variants = process.argv.slice(2).map((arg) => {
  const m = /^([\w.-]+)=([^@]+)(?:@(.*))?$/.exec(arg);
  if (!m) throw new Error(`not <label>=<entry>[@<node flags>]: ${arg}`);
  return { label: m[1]!, entry: m[2]!, flags: m[3] === undefined ? containerNodeFlags() : m[3].split(' ').filter(Boolean) };
});
if (!variants.length) {
  console.error('usage: npx tsx test/bench/instructions.ts <label>=<entry>[@<node flags>] [<label>=<entry>[@<node flags>] ...]');
  process.exit(2);
}

const emulator = await startEmulator({ port: 0 });
const redis: RedisProcess | undefined = process.env.BENCH_IR_REDIS === '1' ? await startRedisServer(false) : undefined;
/** As the bench's list20-redis row: limits far above what this sends, buckets in Redis. */
const redisEnv = redis ? { RATE_LIMIT_PER_MINUTE: '10000000', RATE_LIMIT_BURST: '10000000', REDIS_URL: redis.url } : {};
const dir = mkdtempSync(join(tmpdir(), 'bench-ir-'));

/** Total instructions of one gateway process that answers `requests` list-20 queries after its first. */
async function count(entry: string, flags: string[], requests: number): Promise<number> {
  const out = join(dir, `cachegrind.${Math.random().toString(36).slice(2)}`);
  const child = spawn(
    'valgrind',
    ['--tool=cachegrind', '--cache-sim=no', `--cachegrind-out-file=${out}`, process.execPath, ...flags, '--single-threaded', entry],
    {
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', NODE_ENV: 'production', RATE_LIMIT_PER_MINUTE: '0', IDAAS_ENDPOINT: emulator.url, IAM_ENDPOINTS: `emulator=${emulator.url}`, ...redisEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c));
  child.stderr.on('data', (c: Buffer) => (stderr += c));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const started = Date.now();
      const check = () => {
        const m = /listening on (http:\/\/\S+\/graphql)/.exec(stdout);
        if (m) return resolve(m[1]!);
        if (child.exitCode !== null || Date.now() - started > 120_000) return reject(new Error(`${entry} did not start under valgrind:\n${stderr.slice(-2000)}`));
        setTimeout(check, 100);
      };
      check();
    });
    for (let i = 0; i <= requests; i++) {
      const res = await fetch(url, { method: 'POST', headers: HEADERS, body: BODY });
      const body = await res.text();
      if (res.status !== 200 || !graphqlOk(body)) throw new Error(`${entry}: unexpected answer ${res.status} ${body.slice(0, 300)}`);
    }
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
  const summary = /^summary:\s+(\d+)/m.exec(readFileSync(out, 'utf8'));
  if (!summary) throw new Error(`${entry}: no cachegrind summary`);
  return Number(summary[1]);
}

const rows: string[] = [];
try {
  for (const v of variants) {
    const few = await count(v.entry, v.flags, FEW);
    const many = await count(v.entry, v.flags, MANY);
    const perRequest = (many - few) / (MANY - FEW);
    console.error(`[ir] ${v.label}: ${Math.round(perRequest).toLocaleString('en')} instructions per request (${few} with ${FEW} requests, ${many} with ${MANY})`);
    rows.push(`| ${v.label} | ${v.flags.join(' ') || '(none)'} | ${Math.round(perRequest / 1000).toLocaleString('en')} k |`);
  }
} finally {
  await emulator.close();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
}
console.log(`List-20 query${redis ? ' with the rate limit in Redis' : ''}, gateway instructions per request (valgrind, ${MANY - FEW} requests one at a time, plus --single-threaded):\n`);
console.log('| build | node flags | instructions per request |\n| --- | --- | ---: |');
console.log(rows.join('\n'));
