/**
 * vitest globalSetup of the `cluster` project: makes sure Debian's redis-server is installed
 * (scripts/install-redis.sh: a no-op when it is, else apt-get through scripts/apt-install.sh),
 * starts one on a free loopback port (no persistence, its own temporary directory) for the
 * tests of the Redis-backed pieces (`inject('redisUrl')`), and stops it at the end. The
 * multi-replica tests start their own, which they kill and restart.
 */
import { runInstallScript } from '../install-script.ts';
import type { TestProject } from 'vitest/node';
import { startRedis } from './redis-server.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await runInstallScript('cluster', 'install-redis.sh', 'redis-server');
  const redis = await startRedis();
  project.provide('redisUrl', redis.url);
  return () => redis.stop();
}
