// `npm run emulator`: the upstream emulator alone, on loopback, for other tools to test against.
import { startEmulator } from './index.ts';
import { describeDemoData } from './describe.ts';

const port = Number(process.env.EMULATOR_PORT ?? process.env.PORT ?? 4010);
const host = process.env.HOST ?? '127.0.0.1';
const latencyMs = Number(process.env.EMULATOR_LATENCY_MS ?? 0);
// STS credentials live at most this long (e.g. 30, to watch credential leases renew).
const stsTtlSeconds = Number(process.env.EMULATOR_STS_TTL_SECONDS ?? 0) || undefined;

const emulator = await startEmulator({ port, host, latencyMs, stsTtlSeconds });
console.log(`token-gateway upstream emulator listening on ${emulator.url}`);
console.log(`  IDaaS PAM: ${emulator.url}/v2/{instanceId}/...   IAM: ${emulator.url}/v3/auth/tokens`);
console.log(`  control API: ${emulator.url}/__emulator/{counters,faults,clock,reset}`);
if (stsTtlSeconds) console.log(`  STS credentials live at most ${stsTtlSeconds} s (EMULATOR_STS_TTL_SECONDS)`);
console.log(describeDemoData());

const stop = () => void emulator.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
