/**
 * vitest globalSetup of the `cluster` project: makes sure Debian's redis-server is installed
 * (scripts/install-redis.sh: a no-op when it is, else apt-get through scripts/apt-install.sh),
 * starts one on a free loopback port (no persistence, its own temporary directory) for the
 * tests of the Redis-backed pieces (`inject('redisUrl')`), and stops it at the end. The
 * multi-replica tests start their own, which they kill and restart.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { startRedis } from './redis-server.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const INSTALL = join(ROOT, 'scripts/install-redis.sh');
const INSTALL_TIMEOUT_MS = 10 * 60_000; // apt-get update + install: ~10 s here, slow mirrors vary

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const child = spawn('bash', [INSTALL], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (output = (output + c).slice(-100_000)));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (output = (output + c).slice(-100_000)));
    const timer = setTimeout(() => {
      output += `\n[cluster] install-redis.sh timed out after ${INSTALL_TIMEOUT_MS} ms\n`;
      child.kill('SIGTERM');
    }, INSTALL_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`[cluster] cannot run ${INSTALL}: ${err.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (code !== 0) {
    throw new Error(`[cluster] scripts/install-redis.sh failed (exit ${code}) after ${secs} s:\n${output.trimEnd().split('\n').slice(-40).join('\n')}`);
  }
  console.log(`[cluster] redis-server: ${/already installed/.test(output) ? 'already installed' : 'installed'} (${secs} s)`);
  const redis = await startRedis();
  project.provide('redisUrl', redis.url);
  return () => redis.stop();
}
