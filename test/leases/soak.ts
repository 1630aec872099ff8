// Soak test of credential leases (not run by CI): `npm start`'s process (node --import tsx
// src/server.ts, embedded emulator) with STS credentials that live 20 s, and 200 concurrent leases
// over GraphQL over SSE (graphql-sse's client) from this process, for 10 minutes. Checks that every
// credential was replaced before it expired and that no lease ended, samples the gateway's RSS,
// and prints a summary (exit 1 when a check fails).
//
//   npx tsx test/leases/soak.ts                     # 10 minutes
//   SOAK_SECONDS=120 LEASES=200 STS_TTL=20 npx tsx test/leases/soak.ts
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createClient } from 'graphql-sse';
import { DEMO_ACCESS_TOKENS, DEMO_CLOUD_ACCOUNT_ROLES, DEMO_INSTANCE_ID } from '../../src/emulator/fixtures.ts';

const SECONDS = Number(process.env.SOAK_SECONDS ?? 600);
const LEASES = Number(process.env.LEASES ?? 200);
const STS_TTL = Number(process.env.STS_TTL ?? 20);
const SAMPLE_MS = 5_000;
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const LEASE = `subscription Soak($input: ObtainCloudAccountRoleAccessCredentialInput!) {
  cloudAccountRoleCredentialLease(input: $input) { sequence renewsAt accessCredential { expiresAt alibabaCloudStsToken { accessKeyId } } }
}`;

interface Tracked {
  events: number;
  /** The current credential's expiry (ms). */
  expiresAt: number | undefined;
  late: number;
  /** The smallest time left on the replaced credential when its successor arrived (ms). */
  minMarginMs: number;
  ended: string | undefined;
}

const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

async function main() {
  const gateway = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'warn',
      EMULATOR_STS_TTL_SECONDS: String(STS_TTL),
      // Every lease is the same demo caller; the per-client rate limit would refuse 200 subscriptions at once.
      MAX_LEASES_PER_CALLER: String(LEASES * 2),
      RATE_LIMIT_PER_MINUTE: '0',
      // e.g. SOAK_NODE_OPTIONS=--max-old-space-size=128: with a heap cap, garbage is collected
      // early, so the live set (and a leak) shows in RSS and heap use.
      ...(process.env.SOAK_NODE_OPTIONS ? { NODE_OPTIONS: process.env.SOAK_NODE_OPTIONS } : {}),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    gateway.stdout!.on('data', (c: Buffer) => {
      out += c.toString('utf8');
      const m = /token-gateway listening on (http:\/\/\S+\/graphql)/.exec(out);
      if (m) resolve(m[1]!);
    });
    gateway.once('exit', (code) => reject(new Error(`the gateway exited (${code}) before listening`)));
    setTimeout(() => reject(new Error('the gateway did not start within 30 s')), 30_000).unref();
  });
  const pid = gateway.pid!;
  console.log(`gateway ${url} (pid ${pid}); ${LEASES} leases, STS TTL ${STS_TTL} s, ${SECONDS} s`);

  const client = createClient({
    url,
    headers: { authorization: `Bearer ${DEMO_ACCESS_TOKENS.full.token}` },
    retryAttempts: 0,
    singleConnection: false,
  });
  const tracked: Tracked[] = [];
  const disposers: (() => void)[] = [];
  for (let i = 0; i < LEASES; i++) {
    const t: Tracked = { events: 0, expiresAt: undefined, late: 0, minMarginMs: Infinity, ended: undefined };
    tracked.push(t);
    disposers.push(
      client.subscribe(
        {
          query: LEASE,
          variables: {
            input: { instanceId: DEMO_INSTANCE_ID, cloudAccountRoleExternalId: DEMO_CLOUD_ACCOUNT_ROLES.alibaba.cloudAccountRoleExternalId, durationSeconds: 900 },
          },
        },
        {
          next: (r: any) => {
            const now = Date.now();
            const e = r.data?.cloudAccountRoleCredentialLease;
            if (!e) {
              t.ended = String(r.errors?.[0]?.extensions?.code ?? 'ERROR');
              return;
            }
            if (t.expiresAt !== undefined) {
              const margin = t.expiresAt - now;
              t.minMarginMs = Math.min(t.minMarginMs, margin);
              if (margin <= 0) t.late += 1;
            }
            t.expiresAt = Date.parse(e.accessCredential.expiresAt);
            t.events += 1;
          },
          error: (e) => (t.ended ??= `transport error: ${(e as Error)?.message ?? e}`),
          complete: () => (t.ended ??= 'complete'),
        },
      ),
    );
  }

  const started = Date.now();
  const samples: { s: number; rssMb: number; heapMb: number; events: number }[] = [];
  const metricsUrl = url.replace(/\/graphql$/, '/metrics');
  const sample = async () => {
    const events = tracked.reduce((n, t) => n + t.events, 0);
    const text = await (await fetch(metricsUrl)).text().catch(() => '');
    const heapMb = Number(/^nodejs_heap_size_used_bytes (\S+)$/m.exec(text)?.[1] ?? NaN) / 1e6;
    samples.push({ s: Math.round((Date.now() - started) / 1000), rssMb: rssOf(pid), heapMb, events });
    const last = samples.at(-1)!;
    console.log(
      `t=${String(last.s).padStart(4)} s  rss ${last.rssMb.toFixed(1)} MB  heap used ${last.heapMb.toFixed(1)} MB  events ${events}  ended ${tracked.filter((t) => t.ended).length}`,
    );
  };
  const timer = setInterval(() => void sample(), SAMPLE_MS);
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  clearInterval(timer);
  sample();

  const metrics = await (await fetch(url.replace(/\/graphql$/, '/metrics'))).text();
  const metric = (name: string) =>
    metrics
      .split('\n')
      .filter((l) => l.startsWith(name))
      .join('\n');
  // What ended before the end of the run (leaving ends every lease with `complete`).
  const ended = tracked.filter((t) => t.ended);

  for (const d of disposers) d();
  client.dispose();
  gateway.kill('SIGTERM');
  await new Promise((r) => gateway.once('exit', r));

  const events = tracked.reduce((n, t) => n + t.events, 0);
  const renewals = events - tracked.filter((t) => t.events > 0).length;
  const late = tracked.reduce((n, t) => n + t.late, 0);
  const minMargin = Math.min(...tracked.map((t) => t.minMarginMs));
  // RSS flat: compare the mean of the samples in the second quarter of the run (warmed up) with the last quarter's.
  const quarter = (q: number) => samples.filter((x) => x.s >= (SECONDS * q) / 4 && x.s < (SECONDS * (q + 1)) / 4 + 1);
  const mean = (xs: { rssMb: number }[]) => xs.reduce((n, x) => n + x.rssMb, 0) / Math.max(1, xs.length);
  const warm = mean(quarter(1));
  const last = mean(quarter(3));
  const rss = samples.map((x) => x.rssMb);

  console.log('\n--- summary ---');
  console.log(`duration            ${SECONDS} s, ${LEASES} leases, STS TTL ${STS_TTL} s`);
  console.log(`events              ${events} (${renewals} renewals, ~${(renewals / LEASES).toFixed(1)} per lease)`);
  console.log(`late renewals       ${late} (a credential replaced after it had expired)`);
  console.log(`min margin          ${(minMargin / 1000).toFixed(2)} s left on a credential when its successor arrived`);
  console.log(`leases ended early  ${ended.length}${ended.length ? ` (${[...new Set(ended.map((t) => t.ended))].join(', ')})` : ''}`);
  console.log(`gateway RSS         min ${Math.min(...rss).toFixed(1)} MB, max ${Math.max(...rss).toFixed(1)} MB; warmed-up mean ${warm.toFixed(1)} MB -> last-quarter mean ${last.toFixed(1)} MB (${(last - warm >= 0 ? '+' : '') + (last - warm).toFixed(1)} MB)`);
  // The live set: the lowest heap use of each half (just after a collection).
  const half = Math.floor(samples.length / 2);
  const floor = (xs: typeof samples) => Math.min(...xs.map((x) => x.heapMb).filter(Number.isFinite));
  console.log(`heap used floor     first half ${floor(samples.slice(1, half)).toFixed(1)} MB, second half ${floor(samples.slice(half)).toFixed(1)} MB`);
  console.log(metric('credential_lease_renewals_total'));
  console.log(metric('credential_lease_renewal_margin_seconds_bucket{le="5"}'));
  console.log(metric('credential_lease_renewal_margin_seconds_count'));
  const ok = late === 0 && ended.length === 0 && renewals >= LEASES;
  console.log(ok ? 'OK' : 'FAILED');
  process.exit(ok ? 0 : 1);
}

await main();
