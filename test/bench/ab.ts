// `npm run bench:ab -- <label>=<entry>[@<node options>] ...`: compares gateway builds (or Node
// options) in alternating rounds, since one run on a shared machine varies by ±20%. Each round
// runs `npm run bench` once per variant (no build, no start-up timing; BENCH_SCENARIOS,
// BENCH_LATENCIES and BENCH_DURATION_S pass through) and the medians are printed at the end.
//   npm run build && cp -r dist /tmp/before   # …change something…   npm run build
//   BENCH_SCENARIOS=direct,list20 npm run bench:ab -- before=/tmp/before/server.mjs after=dist/server.mjs
//   BENCH_AB_ROUNDS=3 (default)
//   node flags (instead of the Dockerfile CMD's; space-separated): npm run bench:ab -- container=dist/server.mjs defaults=dist/server.mjs@ capped=dist/server.mjs@--max-old-space-size=512
//   broker vs forward mode: BENCH_SCENARIOS=list20,list20-broker BENCH_LATENCIES=0 npm run bench:ab -- a=dist/server.mjs b=dist/server.mjs
//   (with both list20 and list20-broker, the per-round broker ÷ forward ratios are printed too)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { median } from './lib.ts';

interface Variant {
  label: string;
  entry: string;
  /** Node flags instead of the container's ('' for Node's defaults); undefined: the container's. */
  nodeOptions: string | undefined;
}

interface Row {
  id: string;
  upstreamLatencyMs: number;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  gatewayCpuMsPerOp: number | null;
  gatewayMemory: { vmHwmMB: number } | null;
}

const variants: Variant[] = process.argv.slice(2).map((arg) => {
  const m = /^([\w.-]+)=([^@]+)(?:@(.*))?$/.exec(arg);
  if (!m) throw new Error(`not <label>=<entry>[@<node options>]: ${arg}`);
  return { label: m[1]!, entry: m[2]!, nodeOptions: m[3] };
});
if (variants.length < 2) {
  console.error('usage: npm run bench:ab -- <label>=<entry>[@<node options>] <label>=<entry>[@<node options>] ...');
  process.exit(2);
}
const rounds = Number(process.env.BENCH_AB_ROUNDS ?? 3);
const dir = mkdtempSync(join(tmpdir(), 'bench-ab-'));
const results = new Map<string, Row[]>();

for (let round = 1; round <= rounds; round++) {
  for (const v of variants) {
    process.stderr.write(`[bench:ab] round ${round}/${rounds}: ${v.label}\n`);
    const out = join(dir, `${v.label}-${round}.json`);
    const run = spawnSync('node_modules/.bin/tsx', ['test/bench/run.ts'], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: {
        ...process.env,
        BENCH_SKIP_BUILD: '1',
        BENCH_SKIP_STARTUP: '1',
        BENCH_GATEWAY_ENTRY: v.entry,
        // Without @flags, the container's (the Dockerfile's CMD, unless BENCH_CONTAINER_NODE_FLAGS says otherwise).
        ...(v.nodeOptions !== undefined ? { BENCH_CONTAINER_NODE_FLAGS: v.nodeOptions } : {}),
        BENCH_OUT: out,
      },
    });
    if (run.status !== 0) throw new Error(`bench run for ${v.label} exited ${run.status}`);
    for (const row of (JSON.parse(readFileSync(out, 'utf8')) as { scenarios: Row[] }).scenarios) {
      const key = `${v.label}\t${row.id}\t${row.upstreamLatencyMs}`;
      results.set(key, [...(results.get(key) ?? []), row]);
    }
  }
}
rmSync(dir, { recursive: true, force: true });

const fmt = (xs: (number | null | undefined)[], digits: number) => {
  const v = xs.filter((x): x is number => typeof x === 'number');
  return v.length ? `${median(v).toFixed(digits)} (${v.map((x) => x.toFixed(digits)).join(', ')})` : '–';
};
console.log(`Medians of ${rounds} alternating rounds (each round's value in brackets).\n`);
console.log('| variant | scenario | upstream latency | req/s | gateway CPU ms/op | p50 ms | p99 ms | peak RSS MB |');
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const [key, rows] of results) {
  const [label, id, latency] = key.split('\t');
  console.log(
    `| ${label} | ${id} | ${latency} ms | ${fmt(rows.map((r) => r.reqPerSec), 0)} | ${fmt(rows.map((r) => r.gatewayCpuMsPerOp), 3)} | ` +
      `${fmt(rows.map((r) => r.p50Ms), 2)} | ${fmt(rows.map((r) => r.p99Ms), 2)} | ${fmt(rows.map((r) => r.gatewayMemory?.vmHwmMB), 0)} |`,
  );
}

// Broker ÷ forward list-20, paired within each round (the same machine state), per variant.
const ratioLines: string[] = [];
for (const [key, brokerRows] of results) {
  const [label, id, latency] = key.split('\t');
  if (id !== 'list20-broker') continue;
  const forwardRows = results.get(`${label}\tlist20\t${latency}`);
  if (!forwardRows) continue;
  const pairs = brokerRows.map((b, i) => [b, forwardRows[i]] as const).filter((p): p is readonly [Row, Row] => p[1] !== undefined);
  const rps = pairs.map(([b, f]) => b.reqPerSec / f.reqPerSec);
  const cpu = pairs.map(([b, f]) => (b.gatewayCpuMsPerOp !== null && f.gatewayCpuMsPerOp ? b.gatewayCpuMsPerOp / f.gatewayCpuMsPerOp : null));
  ratioLines.push(`| ${label} | ${latency} ms | ${fmt(rps, 3)} | ${fmt(cpu, 3)} |`);
}
if (ratioLines.length) {
  console.log('\n| variant | upstream latency | broker ÷ forward list-20 req/s | broker ÷ forward gateway CPU ms/op |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const l of ratioLines) console.log(l);
}
