// The real `npm start` process (node --import tsx src/server.ts) for tests: started with only
// the configuration a test gives, every wait bounded, every process killed when the file is done.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const START_TIMEOUT_MS = 20_000;

export interface Running {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

// Every wait below is bounded; a test that fails half-way may leave its process behind, and
// this kills it (tests run concurrently, so not before the whole file is done).
const running: Running[] = [];
afterAll(() => {
  for (const r of running.splice(0)) if (r.proc.exitCode === null && r.proc.signalCode === null) r.proc.kill('SIGKILL');
});

/** Starts `src/server.ts` (or another entry, e.g. the built bundle) with only the given configuration (plus PATH and HOME). */
export function start(env: Record<string, string>, args = ['--import', 'tsx', 'src/server.ts']): Running {
  const proc = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  proc.stderr!.on('data', (c: Buffer) => (err += c.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const r = { proc, stdout: () => out, stderr: () => err, exited };
  running.push(r);
  return r;
}

/** Resolves with the value, or rejects after `ms` saying what did not happen. */
export function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms))),
  ]);
}

/** The GraphQL URL the process prints once it listens. */
export async function urlOf(r: Running): Promise<string> {
  const printed = /token-gateway listening on (http:\/\/127\.0\.0\.1:(\d+)\/graphql)/;
  return within(
    START_TIMEOUT_MS,
    'the gateway printing its URL',
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const m = printed.exec(r.stdout());
        if (m) return resolve(m[1]!);
        if (r.proc.exitCode !== null) return reject(new Error(`exited ${r.proc.exitCode} before listening: ${r.stderr()}`));
        setTimeout(check, 25);
      };
      check();
    }),
  );
}

