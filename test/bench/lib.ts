// Benchmark plumbing: child processes (pinned, always killed), free ports, readiness polling,
// RSS sampling from /proc, emulator counters, a redis-server, exact latency percentiles.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createConnection, createServer } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';

// ---------------------------------------------------------------- CPU pinning

export interface Pinning {
  /** Whether servers run on core 0 and the load generator (this process) on core 1. */
  pinned: boolean;
  note: string;
}

/** Pins this process (the load generator) to core 1 when `taskset` exists and there are two cores. */
export function pinLoadGenerator(): Pinning {
  const cores = cpus().length;
  const which = spawnSync('sh', ['-c', 'command -v taskset'], { encoding: 'utf8' });
  if (which.status !== 0) return { pinned: false, note: 'taskset not found (util-linux): unpinned' };
  if (cores < 2) return { pinned: false, note: `only ${cores} core: unpinned` };
  const r = spawnSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { encoding: 'utf8' });
  if (r.status !== 0) return { pinned: false, note: `taskset failed (${r.stderr.trim()}): unpinned` };
  return { pinned: true, note: 'servers (emulator, gateways, redis-server) on core 0 (taskset -c 0), load generator on core 1' };
}

// ---------------------------------------------------------------- child processes

const children = new Set<ChildProcess>();

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal); // detached: the child leads its own process group (tsx, npm spawn more)
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

/** Kills every child still running; synchronous, so it also works from process.on('exit'). */
export function killAllChildren(): void {
  for (const c of children) killGroup(c, 'SIGKILL');
  children.clear();
}

process.on('exit', killAllChildren);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    killAllChildren();
    process.exit(130);
  });
}

export interface Spawned {
  child: ChildProcess;
  /** The pid of the spawned command (taskset execs it, so it is the server's own pid for `node …`). */
  pid: number;
  /** Everything it wrote to stderr (kept for error messages). */
  stderr(): string;
  /** SIGTERM to the group, then SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnOptions {
  env: Record<string, string>;
  pinned: boolean;
  /** 'pipe' to read stdout (small outputs only: a full pipe would block a logging server). */
  stdout: 'ignore' | 'pipe';
  onStdout?: (text: string) => void;
}

export function spawnServer(cmd: string, args: string[], options: SpawnOptions): Spawned {
  const [file, argv] = options.pinned ? ['taskset', ['-c', '0', cmd, ...args]] : [cmd, args];
  const child = spawn(file, argv, {
    cwd: process.cwd(),
    env: { ...process.env, ...options.env },
    stdio: ['ignore', options.stdout, 'pipe'],
    detached: true,
  });
  children.add(child);
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    if (err.length < 20_000) err += d;
  });
  if (options.stdout === 'pipe') child.stdout!.setEncoding('utf8').on('data', (d: string) => options.onStdout?.(d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => children.delete(child));
  return {
    child,
    pid: child.pid!,
    stderr: () => err,
    stop: async (graceMs = 5_000) => {
      killGroup(child, 'SIGTERM');
      const t = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
      // Whatever it spawned (tsx's node) goes with it.
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* group gone */
      }
    },
  };
}

/** Runs a command to completion (the build), inheriting stdio. */
export function runToCompletion(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status}`);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Resolves with the first line of `spawned`'s stdout that matches, or rejects on exit/timeout. */
export function waitForLine(spawned: Spawned, pattern: RegExp, collect: { text: string }, timeoutMs = 20_000): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + timeoutMs;
    const t = setInterval(() => {
      const m = pattern.exec(collect.text);
      if (m) {
        clearInterval(t);
        resolve(m);
      } else if (spawned.child.exitCode !== null || Date.now() > deadline) {
        clearInterval(t);
        reject(new Error(`no line matching ${pattern} (exit ${spawned.child.exitCode}); stderr:\n${spawned.stderr()}`));
      }
    }, 5);
  });
}

export interface PostSpec {
  url: string;
  headers: Record<string, string>;
  body: string;
}

/**
 * Polls `spec` every `everyMs` until it answers 200 with `ok(body)`; resolves with the time since
 * `t0` (performance.now()) in milliseconds. Rejects if `spawned` exits or the timeout passes.
 */
export async function timeToFirstAnswer(
  spec: PostSpec,
  ok: (body: string) => boolean,
  t0: number,
  spawned: Spawned,
  everyMs = 5,
  timeoutMs = 30_000,
): Promise<number> {
  for (;;) {
    if (spawned.child.exitCode !== null) throw new Error(`exited with ${spawned.child.exitCode} before answering; stderr:\n${spawned.stderr()}`);
    if (performance.now() - t0 > timeoutMs) throw new Error(`no answer within ${timeoutMs} ms; stderr:\n${spawned.stderr()}`);
    try {
      const res = await fetch(spec.url, { method: 'POST', headers: spec.headers, body: spec.body });
      const text = await res.text();
      if (res.status === 200 && ok(text)) return performance.now() - t0;
      throw new Error(`answered ${res.status}: ${text.slice(0, 300)}`);
    } catch (e) {
      const code = (e as { cause?: { code?: string } }).cause?.code;
      if (code !== 'ECONNREFUSED' && code !== 'ECONNRESET' && code !== 'UND_ERR_SOCKET') throw e;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

// ---------------------------------------------------------------- memory

export interface MemoryReading {
  /** Highest VmRSS seen by the sampler, MB (10^6 bytes). */
  peakSampledRssMB: number;
  /** The kernel's peak resident set (VmHWM) at the end, MB: covers everything since the process started. */
  vmHwmMB: number;
}

function statusKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Samples VmRSS of `pid` every `everyMs` until stopped. */
export function sampleRss(pid: number, everyMs = 50): { stop(): MemoryReading } {
  let peak = statusKiB(pid, 'VmRSS') ?? 0;
  const t = setInterval(() => {
    peak = Math.max(peak, statusKiB(pid, 'VmRSS') ?? 0);
  }, everyMs);
  return {
    stop: () => {
      clearInterval(t);
      peak = Math.max(peak, statusKiB(pid, 'VmRSS') ?? 0);
      return { peakSampledRssMB: round((peak * 1024) / 1e6, 1), vmHwmMB: round(((statusKiB(pid, 'VmHWM') ?? 0) * 1024) / 1e6, 1) };
    },
  };
}

// ---------------------------------------------------------------- emulator counters

/** Total upstream requests the emulator has counted, over every route. */
export async function emulatorRequests(emulatorUrl: string): Promise<number> {
  const res = await fetch(`${emulatorUrl}/__emulator/counters`);
  const counters = (await res.json()) as Record<string, { requests: number }>;
  return Object.values(counters).reduce((n, c) => n + c.requests, 0);
}

/**
 * A caller JWT from the emulator's demo OIDC issuer (control route `POST /__emulator/oidc/token`),
 * for a gateway in broker mode (`CALLER_ISSUER=${emulatorUrl}/oidc`).
 */
export async function emulatorCallerToken(
  emulatorUrl: string,
  claims: { sub: string; groups: string[]; expiresInSeconds: number },
): Promise<string> {
  const res = await fetch(`${emulatorUrl}/__emulator/oidc/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(claims),
  });
  const text = await res.text();
  const token = res.status === 200 ? (JSON.parse(text) as { token?: unknown }).token : undefined;
  if (typeof token !== 'string') throw new Error(`POST ${emulatorUrl}/__emulator/oidc/token answered ${res.status}: ${text.slice(0, 300)}`);
  return token;
}

// ---------------------------------------------------------------- redis-server

/**
 * One command to the Redis server on 127.0.0.1:`port` over a fresh connection; resolves with
 * the reply's text (a simple string, an integer or a bulk string's content), rejects on an
 * error reply, a closed connection or no reply within `timeoutMs`.
 */
export function redisCommand(port: number, command: string, timeoutMs = 2_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    let settled = false;
    const done = (err: Error | undefined, value = '') => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    socket.setTimeout(timeoutMs, () => done(new Error(`redis ${command}: no reply within ${timeoutMs} ms`)));
    socket.once('error', (e) => done(new Error(`redis ${command}: ${e.message}`)));
    socket.once('close', () => done(new Error(`redis ${command}: connection closed before a reply`)));
    socket.once('connect', () => socket.write(`${command}\r\n`));
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const eol = buf.indexOf('\r\n');
      if (eol < 0) return;
      const head = buf.subarray(0, eol).toString('latin1');
      if (head.startsWith('-')) return done(new Error(`redis ${command}: ${head.slice(1)}`));
      if (head.startsWith('+') || head.startsWith(':')) return done(undefined, head.slice(1));
      if (head.startsWith('$')) {
        const len = Number(head.slice(1));
        if (len < 0) return done(undefined, '');
        if (buf.length >= eol + 2 + len + 2) done(undefined, buf.subarray(eol + 2, eol + 2 + len).toString('utf8'));
        return;
      }
      done(new Error(`redis ${command}: unexpected reply ${JSON.stringify(head.slice(0, 100))}`));
    });
  });
}

/** A field of `INFO <section>` (e.g. total_commands_processed) as a number. */
export async function redisInfoNumber(port: number, section: string, field: string): Promise<number> {
  const m = new RegExp(`^${field}:(\\d+)`, 'm').exec(await redisCommand(port, `INFO ${section}`));
  if (!m) throw new Error(`redis INFO ${section}: no ${field}`);
  return Number(m[1]);
}

/** Calls per command since start (`INFO commandstats`), e.g. { evalsha: 120, ping: 1 }. */
export async function redisCommandCalls(port: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const m of (await redisCommand(port, 'INFO commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

export interface RedisProcess extends Spawned {
  port: number;
  /** redis://127.0.0.1:port */
  url: string;
}

/**
 * Debian's redis-server (installed by scripts/install-redis.sh when missing, as for the cluster
 * tests), started like test/cluster/redis-server.ts does (loopback, a free port, no persistence,
 * its own temporary directory) but through spawnServer, so that it is pinned with the other
 * servers and killed with them. Resolves once it answers PING; if it exits or stays silent for
 * 10 s, it is stopped and the error carries what it printed.
 */
export async function startRedisServer(pinned: boolean): Promise<RedisProcess> {
  runToCompletion('bash', ['scripts/install-redis.sh']); // "already installed, skipping" when it is
  const dir = mkdtempSync(join(tmpdir(), 'bench-redis-'));
  const port = await freePort();
  const out = { text: '' };
  const sp = spawnServer(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--protected-mode', 'yes', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--loglevel', 'warning'],
    {
      env: { PATH: `${process.env.PATH ?? ''}:/usr/bin:/usr/sbin` },
      pinned,
      stdout: 'pipe', // redis-server logs to stdout (little, at loglevel warning)
      onStdout: (d) => {
        if (out.text.length < 10_000) out.text += d;
      },
    },
  );
  const stop = async (graceMs?: number) => {
    await sp.stop(graceMs);
    rmSync(dir, { recursive: true, force: true });
  };
  const t0 = Date.now();
  for (;;) {
    const pong = await redisCommand(port, 'PING', 500).catch(() => '');
    if (pong === 'PONG') break;
    if (sp.child.exitCode !== null || Date.now() - t0 > 10_000) {
      const why = sp.child.exitCode !== null ? `exited with ${sp.child.exitCode}` : 'no PONG within 10 s';
      await stop(1_000);
      throw new Error(`redis-server did not start on port ${port} (${why}); stdout:\n${out.text || '(empty)'}\nstderr:\n${sp.stderr() || '(empty)'}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return { ...sp, stop, port, url: `redis://127.0.0.1:${port}` };
}

// ---------------------------------------------------------------- statistics

/** Exact percentile (nearest rank) of an ascending-sorted array. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Growable latency recorder (milliseconds, sub-millisecond precision). */
export class Latencies {
  #buf = new Float64Array(1 << 16);
  #n = 0;
  add(ms: number): void {
    if (this.#n === this.#buf.length) {
      const next = new Float64Array(this.#buf.length * 2);
      next.set(this.#buf);
      this.#buf = next;
    }
    this.#buf[this.#n++] = ms;
  }
  sorted(): Float64Array {
    return this.#buf.slice(0, this.#n).sort();
  }
}

// ---------------------------------------------------------------- CPU accounting

const TICK_MS = 10; // USER_HZ is 100 on Linux (getconf CLK_TCK)

/** CPU time (user + system) a process has used so far, in ms; children not included. */
export function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name (which may contain spaces).
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_MS; // utime, stime (fields 14 and 15)
  } catch {
    return NaN;
  }
}

/** Busy CPU time of the whole machine so far (all cores), in ms. */
export function machineBusyMs(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = cpu as [number, number, number, number, number, number, number, number];
  return (user + nice + system + irq + softirq + steal) * TICK_MS;
}

/** Snapshot of CPU use: `delta()` gives each watched pid's CPU ms and the rest of the machine's. */
export function cpuWatch(pids: Record<string, number>) {
  const start = { machine: machineBusyMs(), self: process.cpuUsage(), ...Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, processCpuMs(p)])) };
  const t0 = performance.now();
  return {
    delta() {
      const wallMs = performance.now() - t0;
      const perPid = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, processCpuMs(p) - (start as unknown as Record<string, number>)[k]!]));
      const self = process.cpuUsage(start.self);
      const selfMs = (self.user + self.system) / 1000;
      const ours = Object.values(perPid).reduce((a, b) => a + b, 0) + selfMs;
      const machine = machineBusyMs() - start.machine;
      return {
        wallMs,
        cpuMs: perPid,
        loadGeneratorCpuMs: selfMs,
        /** Cores kept busy by processes other than the benchmark's own (noise from other work on the machine). */
        otherCores: Math.max(0, (machine - ours) / wallMs),
      };
    },
  };
}

/**
 * The container's node flags: what the Dockerfile's CMD passes to node before dist/server.mjs
 * (V8's heap settings among them, which NODE_OPTIONS may not carry), so that the benchmark and
 * the bundle's test run the gateway exactly as the container does.
 */
export function containerNodeFlags(dockerfile = 'Dockerfile'): string[] {
  const cmd = /^CMD\s+(\[.*\])\s*$/m.exec(readFileSync(dockerfile, 'utf8'))?.[1];
  const argv = cmd ? (JSON.parse(cmd) as string[]) : [];
  const entry = argv.indexOf('dist/server.mjs');
  if (argv[0] !== 'node' || entry < 0) throw new Error(`${dockerfile}: CMD is not ["node", …flags, "dist/server.mjs"]`);
  return argv.slice(1, entry);
}
