// A real redis-server (Debian's, installed by scripts/install-redis.sh) for the cluster tests:
// loopback only, a free port, no persistence, its own temporary directory. Every wait is bounded.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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

/** A free loopback TCP port (the OS's choice; closed again before redis-server takes it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** PING over a raw socket: true on +PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

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
