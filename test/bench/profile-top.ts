// Reads a V8 .cpuprofile (`node --cpu-prof`, e.g. BENCH_GATEWAY_NODE_OPTIONS="--cpu-prof
// --cpu-prof-dir=bench-results/prof" npm run bench) and prints where the time went: the top
// functions by self time, and self time summed per package / source file.
//   npx tsx test/bench/profile-top.ts bench-results/prof/CPU.*.cpuprofile [top=30]
// Also prints inclusive times (PROFILE_FILTER=regex narrows them) and, with
// PROFILE_CALLERS=regex, the call chains leading to the matching functions.
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const [file, topArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: tsx test/bench/profile-top.ts <file.cpuprofile> [top]');
  process.exit(2);
}
const top = Number(topArg ?? 30);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;

const selfUs = new Map<number, number>();
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);

function where(url: string): string {
  if (!url) return '(native/v8)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (url.startsWith('node:')) return url;
  const m = /\/(dist|src)\/(.+)$/.exec(url);
  return m ? `${m[1]}/${m[2]}` : url;
}

const byFunction = new Map<string, number>();
const byWhere = new Map<string, number>();
for (const n of profile.nodes) {
  const us = selfUs.get(n.id);
  if (!us) continue;
  const { functionName, url, lineNumber } = n.callFrame;
  const fn = `${functionName || '(anonymous)'}  ${where(url)}${url ? `:${lineNumber + 1}` : ''}`;
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
  byWhere.set(where(url), (byWhere.get(where(url)) ?? 0) + us);
}

const pct = (us: number) => `${((us / total) * 100).toFixed(1).padStart(5)}%`;
const ms = (us: number) => `${(us / 1000).toFixed(0).padStart(7)} ms`;
console.log(`profile: ${(total / 1e6).toFixed(2)} s sampled (${profile.samples.length} samples)\n`);
console.log(`top ${top} functions by self time:`);
for (const [k, v] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(v)} ${ms(v)}  ${k}`);
console.log(`\nself time by package / file:`);
for (const [k, v] of [...byWhere].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(v)} ${ms(v)}  ${k}`);

// Inclusive (total) time: a function's own samples plus everything it called (each function
// counted once per stack, so recursion does not double count).
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const nodeById = new Map(profile.nodes.map((n) => [n.id, n]));
const label = (n: ProfileNode) => {
  const { functionName, url, lineNumber } = n.callFrame;
  return `${functionName || '(anonymous)'}  ${where(url)}${url ? `:${lineNumber + 1}` : ''}`;
};
const inclusive = new Map<string, number>();
for (const [id, us] of selfUs) {
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const l = label(nodeById.get(cur)!);
    if (seen.has(l)) continue;
    seen.add(l);
    inclusive.set(l, (inclusive.get(l) ?? 0) + us);
  }
}
const filter = process.env.PROFILE_FILTER ? new RegExp(process.env.PROFILE_FILTER) : undefined;
console.log(`\ntop ${top} functions by total (inclusive) time${filter ? ` matching ${filter}` : ''}:`);
for (const [k, v] of [...inclusive].filter(([k]) => !filter || filter.test(k)).sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(v)} ${ms(v)}  ${k}`);

// PROFILE_CALLERS=regex: who calls the matching functions (outermost match per stack, with
// its inclusive time), e.g. PROFILE_CALLERS='^DOMException' to find what builds abort errors.
if (process.env.PROFILE_CALLERS) {
  const re = new RegExp(process.env.PROFILE_CALLERS);
  const inclusiveOf = (id: number): number =>
    (selfUs.get(id) ?? 0) + (nodeById.get(id)!.children ?? []).reduce((a, c) => a + inclusiveOf(c), 0);
  const chains = new Map<string, number>();
  for (const n of profile.nodes) {
    if (!re.test(label(n))) continue;
    let nested = false;
    for (let a = parent.get(n.id); a !== undefined && !nested; a = parent.get(a)) nested = re.test(label(nodeById.get(a)!));
    if (nested) continue;
    const chain: string[] = [];
    for (let c = parent.get(n.id), i = 0; c !== undefined && i < Number(process.env.PROFILE_DEPTH ?? 6); c = parent.get(c), i++) chain.push(label(nodeById.get(c)!).replace(/\s+/g, ' '));
    const k = `${label(n).replace(/\s+/g, ' ')}  <=  ${chain.join(' < ')}`;
    chains.set(k, (chains.get(k) ?? 0) + inclusiveOf(n.id));
  }
  console.log(`\ncallers of ${re}:`);
  for (const [k, v] of [...chains].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`${pct(v)} ${ms(v)}  ${k}`);
}
