// `npm start` as a new user runs it (issue 14's targets): time to the first answered query, and
// the peak RSS of the whole process tree (npm, its shell, the gateway and its embedded emulator)
// under the list-20 load. Run: `npx tsx test/bench/npm-start.ts` (it builds dist/ first if stale,
// so that `npm start` only checks; loopback only). `BENCH_NPM_RUNS` (5) start-ups, `BENCH_DURATION_S`
// (10) of load.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import autocannon from 'autocannon';
import { freePort, median, round } from './lib.ts';
import { graphqlBody, graphqlOk, LIST20 } from './scenarios.ts';
import { DEMO_ACCESS_TOKENS, DEMO_CONSUMERS, DEMO_CREDENTIAL_PROVIDERS, DEMO_INSTANCE_ID } from '../../src/emulator/fixtures.ts';

const RUNS = Number(process.env.BENCH_NPM_RUNS ?? 5);
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 10);
const BODY = graphqlBody(LIST20, { instanceId: DEMO_INSTANCE_ID, consumerId: DEMO_CONSUMERS.large, provider: DEMO_CREDENTIAL_PROVIDERS.jwt.identifier });
const HEADERS = { 'content-type': 'application/json', accept: 'application/json', authorization: `Bearer ${DEMO_ACCESS_TOKENS.full.token}` };

/** Every pid in the process group (npm leads it: detached). */
function groupPids(pgid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid) pids.push(Number(entry)); // field 5: pgrp
    } catch {
      /* gone */
    }
  }
  return pids;
}

function rssKiB(pid: number): number {
  try {
    return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

function startCommand(cmd: string, args: string[], port: number): ChildProcess {
  return spawn(cmd, args, { env: { ...process.env, PORT: String(port), LOG_LEVEL: 'warn', RATE_LIMIT_PER_MINUTE: '0' }, detached: true, stdio: 'ignore' });
}

async function firstAnswer(url: string, t0: number, child: ChildProcess): Promise<number> {
  for (;;) {
    if (child.exitCode !== null) throw new Error(`exited ${child.exitCode} before answering`);
    if (performance.now() - t0 > 30_000) throw new Error('no answer within 30 s');
    try {
      const res = await fetch(url, { method: 'POST', headers: HEADERS, body: BODY });
      if (res.status === 200 && graphqlOk(await res.text())) return performance.now() - t0;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}

const stop = (child: ChildProcess) => {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    /* gone */
  }
};

async function startups(label: string, cmd: string, args: string[]): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const port = await freePort();
    const t0 = performance.now();
    const child = startCommand(cmd, args, port);
    try {
      times.push(await firstAnswer(`http://127.0.0.1:${port}/graphql`, t0, child));
    } finally {
      stop(child);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  console.log(`${label}: median ${Math.round(median(times))} ms (runs: ${times.map((t) => Math.round(t)).join(', ')})`);
  return median(times);
}

if (spawnSync(process.execPath, ['scripts/build-if-stale.mjs'], { stdio: 'inherit' }).status !== 0) process.exit(1);
const npmAlone = await (async () => {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    spawnSync('npm', ['--version'], { stdio: 'ignore' });
    times.push(performance.now() - t0);
  }
  return median(times);
})();
console.log(`npm's own start-up (npm --version): median ${Math.round(npmAlone)} ms`);
const viaNpm = await startups('npm start (npm, then scripts/start.mjs: the staleness check and dist/server.mjs)', 'npm', ['start', '--silent']);
await startups('node scripts/start.mjs (npm start without npm)', process.execPath, ['scripts/start.mjs']);
await startups('node dist/server.mjs', process.execPath, ['dist/server.mjs']);
console.log(`npm start without npm's own start-up: ~${Math.round(viaNpm - npmAlone)} ms`);

// The process tree under load.
const port = await freePort();
const child = startCommand('npm', ['start', '--silent'], port);
const url = `http://127.0.0.1:${port}/graphql`;
await firstAnswer(url, performance.now(), child);
let peakKiB = 0;
let peakParts = '';
const sampler = setInterval(() => {
  const pids = groupPids(child.pid!);
  const parts = pids.map((p) => [p, rssKiB(p)] as const);
  const total = parts.reduce((s, [, k]) => s + k, 0);
  if (total > peakKiB) {
    peakKiB = total;
    peakParts = parts.map(([p, k]) => `${p}: ${round((k * 1024) / 1e6, 1)} MB`).join(', ');
  }
}, 50);
const result = await autocannon({ url, method: 'POST', headers: HEADERS, body: BODY, connections: 10, duration: DURATION_S });
clearInterval(sampler);
stop(child);
console.log(
  `npm start under list-20 load (${DURATION_S} s, 10 connections): ${Math.round(result.requests.average)} req/s, ` +
    `process tree peak RSS ${round((peakKiB * 1024) / 1e6, 1)} MB (${peakParts})`,
);
// Issue 14's targets.
const startMs = viaNpm - npmAlone;
const treeMB = (peakKiB * 1024) / 1e6;
console.log(`target: first answer through npm start ≤ 500 ms without npm's own start-up: ${Math.round(startMs)} ms, ${startMs <= 500 ? 'met' : 'NOT met'}`);
console.log(`target: npm start process tree ≤ 200 MB peak RSS under list-20 load: ${round(treeMB, 1)} MB, ${treeMB <= 200 ? 'met' : 'NOT met'}`);
process.exit(0);
