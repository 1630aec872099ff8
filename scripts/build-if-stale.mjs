// `npm start` runs this first (scripts/start.mjs imports it): builds dist/ (scripts/bundle.mjs)
// when it is missing or older than what it is built from, so that `npm install && npm start` on a
// fresh clone runs the production bundle, with no tsx or esbuild service in the process. Also
// runs on its own: `node scripts/build-if-stale.mjs`.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Paths from the repository root, whatever the working directory.
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUTPUT = join(ROOT, 'dist/server.mjs');
const INPUTS = ['src', 'scripts/bundle.mjs', 'package-lock.json'].map((p) => join(ROOT, p));

function newestMtime(path) {
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  let newest = s.mtimeMs;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

const built = existsSync(OUTPUT) ? statSync(OUTPUT).mtimeMs : 0;
const sources = Math.max(...INPUTS.filter((p) => existsSync(p)).map(newestMtime));
if (built < sources) {
  console.error(built ? 'token-gateway: src/ changed since the last build: building dist/ …' : 'token-gateway: building dist/ (first start) …');
  // Loaded only here: most starts find dist/ fresh.
  const { spawnSync } = await import('node:child_process');
  const r = spawnSync(process.execPath, ['scripts/bundle.mjs'], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
