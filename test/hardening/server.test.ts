// The real `npm start` process (node --import tsx src/server.ts) on loopback: it starts on
// PORT=0 and prints its URL, answers, drains in-flight requests on SIGTERM and exits 0 within
// the grace, and refuses to start (bad configuration, a busy port) before it listens.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { containerNodeFlags } from '../bench/lib.ts';
import { FULL } from '../helpers.ts';
import { SMALL, TOKENS, sleep } from './support.ts';
import { ROOT, START_TIMEOUT_MS, start, urlOf, within } from '../spawn-gateway.ts';

const listQuery = (url: string) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...FULL },
    body: JSON.stringify({ query: TOKENS, variables: { consumerId: SMALL, first: 5 } }),
  });

describe('npm start', () => {
  it('starts on PORT=0, prints the URL with the real port and the demo credentials, and answers a query', async () => {
    const r = start({ PORT: '0' });
    const url = await urlOf(r);
    expect(Number(new URL(url).port)).toBeGreaterThan(0);
    expect(r.stdout()).toMatch(/embedded upstream emulator on http:\/\/127\.0\.0\.1:\d+/);
    expect(r.stdout()).toContain('demo-idaas-access-token-full');

    const res = await within(10_000, 'the first query', listQuery(url));
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body.errors).toBeUndefined();
    expect(body.data.instance.authenticationTokens.totalCount).toBe(3);

    r.proc.kill('SIGTERM');
    expect(await within(10_000, 'exit after SIGTERM', r.exited)).toEqual({ code: 0, signal: null });
  });

  it('SIGTERM while a slow request is in flight (keep-alive client): the request completes with 200, then the process exits 0 promptly, not at the end of the grace', async () => {
    const r = start({ PORT: '0', EMULATOR_LATENCY_MS: '800' });
    const url = await urlOf(r);
    const inFlight = listQuery(url);
    await sleep(200);
    const signalled = performance.now();
    r.proc.kill('SIGTERM');

    const res = await within(10_000, 'the in-flight request', inFlight);
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body.errors).toBeUndefined();
    expect(body.data.instance.authenticationTokens.totalCount).toBe(3);

    // The default grace (SHUTDOWN_GRACE_MS) is 10 s: a ceiling for stragglers, not a wait.
    // Once its last request is answered the process has nothing left to do. The client is
    // an ordinary keep-alive client, as load balancers and SDKs are.
    const answered = performance.now();
    const exit = await within(15_000, 'exit after SIGTERM', r.exited);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(answered - signalled).toBeLessThan(10_000);
    expect(performance.now() - answered).toBeLessThan(5_000);
    // No new connection is accepted once draining.
    await expect(fetch(url.replace('/graphql', '/health'))).rejects.toThrow();
  });

  // The in-flight request needs 5 s; the grace is 300 ms. The bound (3 s) proves the grace
  // ended the wait, with room for a slow CI machine.
  it('SHUTDOWN_GRACE_MS bounds the drain: with 300 ms and a 5 s request in flight, the process is gone in well under 5 s', async () => {
    const r = start({ PORT: '0', EMULATOR_LATENCY_MS: '5000', SHUTDOWN_GRACE_MS: '300' });
    const url = await urlOf(r);
    const inFlight = listQuery(url).catch((e: Error) => e);
    await sleep(200);
    const signalled = performance.now();
    r.proc.kill('SIGTERM');
    const exit = await within(10_000, 'exit after SIGTERM', r.exited);
    const tookMs = performance.now() - signalled;
    await inFlight;
    expect(exit.code).not.toBeNull();
    expect(tookMs).toBeLessThan(3_000);
  });

  it('OTEL_EXPORTER_OTLP_ENDPOINT set: the process exports its spans over OTLP/HTTP (flushed at the latest on SIGTERM)', async () => {
    const posts: string[] = [];
    const collector: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        if (req.method === 'POST' && req.url === '/v1/traces') posts.push(body);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', () => resolve()));
    try {
      const endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
      const r = start({ PORT: '0', OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SERVICE_NAME: 'gateway-under-test' });
      const url = await urlOf(r);
      expect((await listQuery(url)).status).toBe(200);
      r.proc.kill('SIGTERM');
      expect((await within(10_000, 'exit after SIGTERM', r.exited)).code).toBe(0);
      const all = posts.join('\n');
      expect(all).toContain('gateway-under-test');
      expect(all).toContain('graphql query Tokens');
      expect(all).toContain('idaas listAuthenticationTokens');
      expect(all).not.toContain(FULL.authorization.slice('Bearer '.length));
    } finally {
      await new Promise<void>((resolve) => {
        collector.close(() => resolve());
        collector.closeAllConnections();
      });
    }
  });
});

// Each case is its own process that exits at once: they run side by side. What loadConfig()
// reports for each bad setting is tested in-process (config.test.ts); here, once, the exit path.
describe.concurrent('refusing to start', () => {
  it('bad configuration (PORT=abc, EMULATOR=off without upstreams) → exit 2 before listening, one stderr line per problem, no stack trace', async ({ expect }) => {
    const r = start({ PORT: 'abc', EMULATOR: 'off' });
    const exit = await within(START_TIMEOUT_MS, 'exit on bad configuration', r.exited);
    expect(exit, r.stderr()).toEqual({ code: 2, signal: null });
    expect(r.stdout()).not.toMatch(/listening/);
    const stderr = r.stderr();
    expect(stderr).not.toMatch(/\n\s+at /);
    const lines = stderr.trim().split('\n');
    expect(lines[0]).toBe('token-gateway: invalid configuration:');
    for (const name of ['PORT', 'IDAAS_ENDPOINT', 'IAM_ENDPOINTS']) expect(lines.filter((l) => l.includes(name)), name).toHaveLength(1);
  });

  it('a port already in use → non-zero exit with a line naming the address', async ({ expect }) => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
    try {
      const port = (blocker.address() as AddressInfo).port;
      const r = start({ PORT: String(port) });
      const exit = await within(START_TIMEOUT_MS, 'exit on a busy port', r.exited);
      expect(exit.code).not.toBe(0);
      expect(r.stdout()).not.toMatch(/token-gateway listening/);
      // Logged as a fatal JSON line on stdout (or printed on stderr): either way it names the address.
      expect(r.stdout() + r.stderr()).toMatch(new RegExp(`EADDRINUSE: address already in use 127\\.0\\.0\\.1:${port}`));
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });
});

describe('npm run build (the bundle the container runs)', () => {
  it("builds dist/server.mjs, which starts with the container's NODE_OPTIONS, answers a query and an error with its contract code, serves GraphiQL from its lazy chunk, and exits 0 on SIGTERM", async () => {
    const build = spawn('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'ignore' });
    const built = await within(60_000, 'npm run build', new Promise<number | null>((resolve) => build.on('exit', resolve)));
    expect(built).toBe(0);

    // With the node flags of the Dockerfile's CMD (the benchmark runs with them too): node
    // refuses to start on a flag it does not know.
    const r = start({ PORT: '0' }, [...containerNodeFlags(`${ROOT}/Dockerfile`), 'dist/server.mjs']);
    const url = await urlOf(r);
    const res = await listQuery(url);
    expect(res.status).toBe(200);
    expect(((await res.json()) as any).data.instance.authenticationTokens.totalCount).toBe(3);

    // One graphql-js instance in the bundle: expected errors keep their code (not masked).
    const bad = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ instance(instanceId: "a/b") { instanceId } }' }),
    });
    expect(((await bad.json()) as any).errors[0].extensions.code).toBe('BAD_USER_INPUT');

    const page = await fetch(url, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('YogaGraphiQL');

    r.proc.kill('SIGTERM');
    expect(await within(15_000, 'exit after SIGTERM', r.exited)).toEqual({ code: 0, signal: null });

    // Broker mode from the bundle: Cedar's WebAssembly (kept out of the bundle) loads, and the
    // demo caller signs in.
    const auditDir = mkdtempSync(join(tmpdir(), 'bundle-broker-'));
    const b = start({ PORT: '0', AUTH_MODE: 'broker', AUDIT_LOG: join(auditDir, 'audit.log') }, ['dist/server.mjs']);
    const brokerUrl = await urlOf(b);
    const alice = /alice \(platform-admins\):\n {4}Authorization: (Bearer \S+)/.exec(b.stdout())![1]!;
    const viewer = await fetch(brokerUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: alice },
      body: JSON.stringify({ query: '{ viewer { mode subject } }' }),
    });
    expect(((await viewer.json()) as any).data.viewer).toEqual({ mode: 'BROKER', subject: 'alice' });
    b.proc.kill('SIGTERM');
    expect(await within(15_000, 'exit after SIGTERM', b.exited)).toEqual({ code: 0, signal: null });
  }, 90_000);

  it('npm start (scripts/start.mjs: the staleness check, then the bundle in the same process, with the container\'s node flags) answers a query and exits 0 on SIGTERM', async () => {
    // package.json's start command, as npm runs it: node, V8's heap settings, the launcher.
    const pkg = JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')) as { scripts: Record<string, string> };
    const [cmd, ...args] = pkg.scripts.start!.split(' ');
    expect(cmd).toBe('node');
    expect(args.at(-1)).toBe('scripts/start.mjs');
    // The same flags as the container's CMD, so that `npm start` and the image behave alike.
    expect(args.slice(0, -1)).toEqual(containerNodeFlags(`${ROOT}/Dockerfile`));
    expect(args.slice(0, -1).length).toBeGreaterThan(0);
    // dist/ is fresh after the test above, so this only checks its age.
    const r = start({ PORT: '0' }, args);
    const url = await urlOf(r);
    const res = await listQuery(url);
    expect(res.status).toBe(200);
    expect(((await res.json()) as any).data.instance.authenticationTokens.totalCount).toBe(3);
    r.proc.kill('SIGTERM');
    expect(await within(15_000, 'exit after SIGTERM', r.exited)).toEqual({ code: 0, signal: null });
  }, 90_000);
});

describe('process handlers (installed by src/server.ts)', () => {
  const script = (body: string) => [
    '--import',
    'tsx',
    '--input-type=module',
    '-e',
    `import { installProcessHandlers } from './src/process-handlers.ts';
     import { createLogger } from './src/logger.ts';
     installProcessHandlers(createLogger('info'));
     ${body}`,
  ];

  it('an unhandled rejection is logged and the process keeps running', async () => {
    const r = start({}, script(`Promise.reject(new Error('stray rejection')); setTimeout(() => { console.log('still alive'); process.exit(0); }, 200);`));
    expect(await within(15_000, 'exit', r.exited)).toEqual({ code: 0, signal: null });
    const line = r.stdout().split('\n').find((l) => l.includes('unhandled rejection'));
    expect(JSON.parse(line!)).toMatchObject({ level: 50, msg: 'unhandled rejection', err: { message: 'stray rejection' } });
    expect(r.stdout()).toContain('still alive');
  });

  it('an uncaught exception is logged as fatal and the process exits 1', async () => {
    const r = start({}, script(`setTimeout(() => { throw new Error('boom'); }, 10); setTimeout(() => console.log('still alive'), 500);`));
    expect(await within(15_000, 'exit', r.exited)).toEqual({ code: 1, signal: null });
    expect(r.stdout()).toContain('uncaught exception: exiting');
    expect(r.stdout()).not.toContain('still alive');
  });
});
