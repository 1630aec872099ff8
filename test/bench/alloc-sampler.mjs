// Allocation profiling preload for the gateway under load: samples every allocation, also
// those the GC later frees (what drives GC time), and writes bench-results/alloc-<pid>.heapprofile
// on SIGTERM (open it in Chrome DevTools → Memory, or walk its JSON tree).
//   BENCH_GATEWAY_NODE_OPTIONS="--import ./test/bench/alloc-sampler.mjs" BENCH_SCENARIOS=list20 npm run bench
import { Session } from 'node:inspector';
import { mkdirSync, writeFileSync } from 'node:fs';

const session = new Session();
session.connect();
session.post('HeapProfiler.enable');
session.post('HeapProfiler.startSampling', {
  samplingInterval: 8192,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: true,
});
process.prependListener('SIGTERM', () => {
  session.post('HeapProfiler.stopSampling', (err, result) => {
    if (err) return void console.error(err);
    mkdirSync('bench-results', { recursive: true });
    writeFileSync(`bench-results/alloc-${process.pid}.heapprofile`, JSON.stringify(result.profile));
  });
});
