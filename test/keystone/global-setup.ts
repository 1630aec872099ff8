/**
 * vitest globalSetup: a REAL OpenStack Keystone (Debian's python3-keystone under
 * uWSGI) on 127.0.0.1:<free port>, installed and started by the project's scripts.
 *
 *   1. scripts/keystone/install.sh — apt-get installs it once (a no-op when present)
 *   2. /usr/bin/python3 scripts/keystone/start.py start --stop-on-stdin-eof — temp dir,
 *      keystone.conf, db, bootstrap, uWSGI in its own session/process group, seed;
 *      prints the KeystoneInfo JSON line, then stays up as uWSGI's parent (if this
 *      process dies, its stdin pipe closes and it stops Keystone)
 *   3. project.provide('keystone', info) — tests: `inject('keystone')`
 *   4. teardown: SIGTERM start.py by its pid (it kills the uWSGI process group by the
 *      master's pid and removes the temp dir), then make sure: kill the group by
 *      info.pid if still there (only after checking /proc/<pid>/cmdline), rm the dir.
 *
 * Fails (rejects) with start.py's output and the Keystone/uWSGI log tails if Keystone
 * is not up and seeded within START_BUDGET_S.
 *
 * KEYSTONE_INFO_FILE=/path/info.json reuses an already running Keystone started with
 * `/usr/bin/python3 scripts/keystone/start.py start --detach --info-file /path/info.json`
 * (nothing is installed, started or stopped then; stop it with `start.py stop --info-file ...`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import type { KeystoneInfo } from './keystone-info.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const INSTALL = join(ROOT, 'scripts/keystone/install.sh');
const START = join(ROOT, 'scripts/keystone/start.py');
/** Keystone imports only under Debian's python, never a pyenv/venv python3 first on PATH. */
const PYTHON = '/usr/bin/python3';
const MARKER = '.token-gateway-keystone';

const INSTALL_TIMEOUT_MS = 10 * 60_000; // apt-get update + install: ~45 s here, slow mirrors vary
const START_BUDGET_S = 90; // start.py's own deadline (Keystone up and seeded)
const START_TIMEOUT_MS = (START_BUDGET_S + 30) * 1000; // hard stop for start.py itself
const STOP_GRACE_MS = 10_000;

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function tailOf(text: string, lines = 80): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of ['PYTHONPATH', 'PYTHONHOME', 'PYTHONSTARTUP', 'VIRTUAL_ENV']) delete env[k];
  return env;
}

/** Run a command to completion, bounded by timeoutMs (SIGTERM, then SIGKILL 5 s later). */
function run(cmd: string, args: string[], timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(cmd, args, { cwd: ROOT, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    let killTimer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      stderr += `\n[global-setup] ${cmd} timed out after ${timeoutMs} ms, sending SIGTERM\n`;
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      killTimer.unref();
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`[keystone] cannot run ${cmd}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}

function procAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // kill(pid, 0) also succeeds on a zombie: look at the state field.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
  } catch {
    return false;
  }
}

/** The pid is still the uWSGI master started for dir (guards against pid reuse). */
function isOurUwsgi(pid: number, dir: string): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes('uwsgi') && cmdline.includes(dir);
  } catch {
    return false;
  }
}

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig); // the uWSGI master leads its own process group (setsid)
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Kill the uWSGI master we started (and its group: worker + HTTP router), then remove dir. */
async function stopKeystone(pid: number, dir: string): Promise<void> {
  if (Number.isInteger(pid) && pid > 1 && isOurUwsgi(pid, dir)) {
    for (const [sig, waitMs] of [
      ['SIGTERM', STOP_GRACE_MS],
      ['SIGKILL', 5_000],
    ] as const) {
      signalGroup(pid, sig);
      const until = Date.now() + waitMs;
      while (procAlive(pid) && Date.now() < until) await sleep(100);
      if (!procAlive(pid)) break;
    }
    signalGroup(pid, 'SIGKILL'); // stragglers in the group, if any
  }
  if (dir && existsSync(join(dir, MARKER))) await rm(dir, { recursive: true, force: true });
}

/** start.py died or was killed mid-way: its first stderr line names the dir, uwsgi.pgid the group. */
async function cleanupPartialStart(stderr: string): Promise<void> {
  const dir = /keystone-start: dir=(\S+)/.exec(stderr)?.[1];
  if (!dir || !existsSync(join(dir, MARKER))) return;
  let pid = NaN;
  try {
    pid = Number.parseInt(readFileSync(join(dir, 'uwsgi.pgid'), 'utf8'), 10);
  } catch {
    /* uwsgi never started */
  }
  await stopKeystone(pid, dir);
}

function parseInfo(line: string): KeystoneInfo {
  const info = JSON.parse(line) as KeystoneInfo;
  if (!info.url || !info.users?.password || !info.users?.mfa || !info.pid || !info.dir) {
    throw new Error(`incomplete Keystone info: ${line.slice(0, 300)}`);
  }
  return info;
}

function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Stop the start.py supervisor by its pid: SIGTERM (it kills uWSGI and removes the dir), then SIGKILL. */
async function stopSupervisor(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  if (await waitForExit(child, STOP_GRACE_MS + 10_000)) return;
  child.kill('SIGKILL');
  await waitForExit(child, 5_000);
}

interface Started {
  child: ChildProcess;
  info: KeystoneInfo;
  /** Set before teardown so the expected exit is not reported as a crash. */
  state: { stopping: boolean };
}

/**
 * Run `start.py start --stop-on-stdin-eof`: it prints the info JSON line once Keystone
 * is seeded, then stays up as uWSGI's parent until SIGTERM or EOF on its stdin (so if
 * this process dies, Keystone goes too). Bounded by START_TIMEOUT_MS.
 */
function startKeystone(): Promise<Started> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(
      PYTHON,
      [START, 'start', '--timeout', String(START_BUDGET_S), '--stop-on-stdin-eof'],
      { cwd: ROOT, env: childEnv(), stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    let settled = false;
    const state = { stopping: false };
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
      const nl = stdout.indexOf('\n');
      if (settled || nl < 0) return;
      settled = true;
      clearTimeout(timer);
      let info: KeystoneInfo;
      try {
        info = parseInfo(stdout.slice(0, nl));
      } catch (err) {
        void stopSupervisor(child)
          .then(() => cleanupPartialStart(stderr))
          .finally(() => reject(new Error(`[keystone] bad start.py output: ${(err as Error).message}`)));
        return;
      }
      console.log(
        `[keystone] Keystone ${info.keystoneVersion} at ${info.url} (uwsgi pid ${info.pid}, ` +
          `up in ${((Date.now() - started) / 1000).toFixed(1)} s)`,
      );
      resolve({ child, info, state });
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr = (stderr + c).slice(-200_000);
    });
    child.stdin.on('error', () => {}); // EPIPE if it exits first
    child.on('error', (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(`[keystone] cannot run ${PYTHON} ${START}: ${err.message} (run scripts/keystone/install.sh)`));
    });
    child.on('exit', (code, signal) => {
      if (settled) {
        if (!state.stopping) console.error(`[keystone] start.py exited early (${code ?? signal}):\n${tailOf(stderr, 40)}`);
        return;
      }
      settled = true;
      clearTimeout(timer);
      void cleanupPartialStart(stderr).finally(() =>
        reject(
          new Error(
            `[keystone] Keystone did not come up (start.py exit ${code ?? signal} after ` +
              `${((Date.now() - started) / 1000).toFixed(1)} s). Output and log tails:\n${tailOf(stderr, 150)}`,
          ),
        ),
      );
    });
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      void stopSupervisor(child)
        .then(() => cleanupPartialStart(stderr))
        .finally(() =>
          reject(
            new Error(
              `[keystone] Keystone did not come up within ${START_TIMEOUT_MS / 1000} s. ` +
                `Output and log tails:\n${tailOf(stderr, 150)}`,
            ),
          ),
        );
    }, START_TIMEOUT_MS);
  });
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const reuse = process.env.KEYSTONE_INFO_FILE;
  if (reuse) {
    const info = JSON.parse(readFileSync(reuse, 'utf8')) as KeystoneInfo;
    const res = await fetch(`${info.url}/v3`, { signal: AbortSignal.timeout(5_000) }).catch((e: unknown) => e);
    if (!(res instanceof Response) || res.status !== 200) {
      throw new Error(`[keystone] KEYSTONE_INFO_FILE=${reuse}: ${info.url}/v3 does not answer 200 (${String(res)})`);
    }
    project.provide('keystone', info);
    return async () => {};
  }

  const install = await run('bash', [INSTALL], INSTALL_TIMEOUT_MS);
  if (install.code !== 0) {
    throw new Error(
      `[keystone] scripts/keystone/install.sh failed (exit ${install.code ?? install.signal}) after ${install.ms} ms:\n` +
        tailOf(install.stdout + '\n' + install.stderr, 60),
    );
  }
  const skipped = /already installed/.test(install.stderr);
  console.log(`[keystone] install: ${skipped ? 'already installed' : 'installed'} (${(install.ms / 1000).toFixed(1)} s)`);

  const { child, info, state } = await startKeystone();
  project.provide('keystone', info);

  return async () => {
    state.stopping = true;
    await stopSupervisor(child); // it kills the uWSGI group and removes the dir
    await stopKeystone(info.pid, info.dir); // safety net: no-op unless something was left
  };
}
