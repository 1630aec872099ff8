// `npm run build`: the gateway bundled by esbuild into dist/ (what the container runs). One
// file to load instead of hundreds of modules is most of a fast start; the emulator,
// OpenTelemetry and GraphiQL stay separate chunks, loaded only when used.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';

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
  external: ['@cedar-policy/cedar-wasm'],
  logLevel: 'warning',
});
console.log('built dist/server.mjs');
