// `npm run build`: the gateway bundled by esbuild into dist/ (what the container runs). One
// file to load instead of hundreds of modules is most of a fast start; the emulator and
// OpenTelemetry stay separate chunks, loaded only when used. GraphiQL's files (its script,
// stylesheet and Monaco workers) go to dist/graphiql-assets/ with their brotli and gzip forms
// beside them, made here once; the built server serves them from there (src/graphiql/assets.ts).
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

// undici's index.js loads all of undici (fetch, WebSocket, caches, mocks: 0.7 MB, 50-75 ms of
// start-up) where the gateway imports only Pool (src/upstreams/transport.ts). The bundle takes
// Pool's module and index.js's two side effects: its request API on every Dispatcher, and its
// Agent as the global dispatcher (Node's fetch uses it). Importing anything else from 'undici'
// fails the build ("No matching export"): add it here.
const undiciPoolOnly = {
  name: 'undici-pool-only',
  setup(b) {
    b.onResolve({ filter: /^undici$/ }, () => ({ path: 'undici', namespace: 'undici-pool-only' }));
    b.onLoad({ filter: /.*/, namespace: 'undici-pool-only' }, () => ({
      resolveDir: process.cwd(),
      loader: 'js',
      contents: [
        "import Pool from 'undici/lib/dispatcher/pool.js';",
        "import Dispatcher from 'undici/lib/dispatcher/dispatcher.js';",
        "import api from 'undici/lib/api/index.js';",
        "import 'undici/lib/global.js';",
        'Object.assign(Dispatcher.prototype, api);',
        'export { Pool };',
      ].join('\n'),
    }));
  },
};

rmSync('dist', { recursive: true, force: true });
await build({
  entryPoints: { server: 'src/server.ts' },
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  outExtension: { '.js': '.mjs' },
  sourcemap: true,
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'linked',
  // Some bundled dependencies are CommonJS and call require().
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  // Cedar's WebAssembly loader reads its .wasm beside itself (__dirname): loaded from
  // node_modules (a production dependency), only in broker mode.
  // GraphiQL's build (9 MB of strings): the built server serves dist/graphiql-assets/ instead,
  // and would fall back to the package in node_modules (a production dependency) without them.
  external: ['@cedar-policy/cedar-wasm', '@graphql-yoga/render-graphiql/graphiql'],
  plugins: [undiciPoolOnly],
  logLevel: 'warning',
});
console.log('built dist/server.mjs');

// GraphiQL's files: src/graphiql/assets.ts, bundled on its own (packages from node_modules) to
// run here, writes them (and their .br and .gz) with a manifest.json the server reads.
const tool = resolve('dist/.graphiql-assets-tool.mjs');
await build({
  entryPoints: ['src/graphiql/assets.ts'],
  outfile: tool,
  bundle: true,
  packages: 'external',
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  logLevel: 'warning',
});
try {
  const { ASSET_DIR, writeAssetDir } = await import(pathToFileURL(tool).href);
  const files = await writeAssetDir(join('dist', ASSET_DIR));
  const kb = (n) => `${(n / 1024).toFixed(0)} KB`;
  const sum = (k) => files.reduce((t, f) => t + f[k], 0);
  console.log(`built dist/${ASSET_DIR}/: ${files.length} files, ${kb(sum('bytes'))} (br ${kb(sum('br'))}, gzip ${kb(sum('gzip'))})`);
} finally {
  rmSync(tool, { force: true });
}
