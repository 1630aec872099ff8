// A real redis-server (Debian's, installed by scripts/install-redis.sh) for the cluster tests:
// loopback only, a free port, no persistence, its own temporary directory. Every wait is bounded.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, redisCommand } from '../bench/lib.ts';

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

export interface RedisServer {
  readonly port: number;
  /** redis://127.0.0.1:port (add /db for another database). */
  readonly url: string;
  /** Kills it (SIGKILL: like a crash; with no persistence, its data is gone). */
  kill(): Promise<void>;
  /** Starts it again on the same port, empty. */
  restart(): Promise<void>;
  /** Kills it and removes its directory. */
  stop(): Promise<void>;
}

/** PING: true on PONG. */
const ping = (port: number) => redisCommand(port, 'PING', 500).then((r) => r === 'PONG', () => false);

export async function startRedis(): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'token-gateway-redis-'));
  const port = await freePort();
  let proc: ChildProcess | undefined;
  let output = '';

  const launch = async () => {
    output = '';
    const child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--protected-mode', 'yes', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--loglevel', 'warning'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: `${process.env.PATH ?? ''}:/usr/bin:/usr/sbin` } },
    );
    proc = child;
    child.stdout!.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-10_000)));
    child.stderr!.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-10_000)));
    const started = Date.now();
    while (!(await ping(port))) {
      if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}) on port ${port}: ${output}`);
      if (Date.now() - started > START_TIMEOUT_MS) {
        child.kill('SIGKILL');
        throw new Error(`redis-server did not answer on port ${port} within ${START_TIMEOUT_MS} ms: ${output}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  };

  const kill = async () => {
    const child = proc;
    proc = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await Promise.race([exited, new Promise((r) => setTimeout(r, STOP_TIMEOUT_MS))]);
  };

  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill,
    restart: launch,
    stop: async () => {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
