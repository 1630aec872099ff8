// GraphiQL's static files (its script, stylesheet, favicon and Monaco's three workers), taken
// from the GraphiQL build that @graphql-yoga/render-graphiql ships (the strings its renderer
// would inline into one 9 MB page) and served as separate files, each named after a hash of
// its content: `<base>.<hash>.<ext>`.
//
// Two sources, one naming:
// - the built server (`npm run build`): scripts/bundle.mjs calls writeAssetDir(), which writes
//   the files to dist/graphiql-assets/ with their brotli and gzip forms beside them and a
//   manifest.json; the server reads them from there, each form once, on first use;
// - from source (tests, `npm run dev`): made from the package on first use, in memory, and
//   each form compressed once, on first use (quicker settings than the build's).
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { brotliCompress, constants as zlib, gzip } from 'node:zlib';

export type Encoding = 'br' | 'gzip';

/** The files the page refers to, by role. */
export interface AssetNames {
  script: string;
  stylesheet: string;
  favicon: string;
  /** Monaco's workers, by the label Monaco asks MonacoEnvironment.getWorkerUrl for. */
  workers: { editorWorkerService: string; json: string; graphql: string };
}

export interface Asset {
  name: string;
  type: string;
  /** Hex SHA-256 of the (uncompressed) content; the name carries its first HASH_LENGTH digits. */
  sha256: string;
  /** The content, as sent with this encoding (undefined: identity). */
  body(encoding?: Encoding): Promise<Uint8Array>;
}

export interface AssetSet {
  names: AssetNames;
  get(name: string): Asset | undefined;
}

export const HASH_LENGTH = 16;

const TYPES: Record<string, string> = {
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  ico: 'image/x-icon',
  png: 'image/png',
  svg: 'image/svg+xml',
  json: 'application/json',
};

export const sha256 = (body: Uint8Array) => createHash('sha256').update(body).digest('hex');

/** `<base>.<first HASH_LENGTH hex digits of its SHA-256>.<ext>` */
export const hashedName = (base: string, ext: string, hash: string) => `${base}.${hash.slice(0, HASH_LENGTH)}.${ext}`;

const contentType = (ext: string) => TYPES[ext] ?? 'application/octet-stream';

const brotli = promisify(brotliCompress);
const gzipAsync = promisify(gzip);

/**
 * Compressed once per file and encoding, off the event loop. `best`: the build's brotli (quality
 * 10: 1.89 MB for all of GraphiQL, in ~5 s of CPU; 11 saves 1.5% for 3 times the time); else
 * quality 9 (1.97 MB, ~1 s in all). gzip at 9 either way (2.37 MB, ~0.5 s).
 */
export function compress(body: Uint8Array, encoding: Encoding, best: boolean): Promise<Buffer> {
  if (encoding === 'gzip') return gzipAsync(body, { level: 9 });
  return brotli(body, {
    params: {
      [zlib.BROTLI_PARAM_QUALITY]: best ? 10 : 9,
      [zlib.BROTLI_PARAM_LGWIN]: 24,
      [zlib.BROTLI_PARAM_SIZE_HINT]: body.byteLength,
    },
  });
}

/** An in-memory asset; each compressed form is made on first use and kept. */
export function memoryAsset(base: string, ext: string, content: Uint8Array | string): Asset {
  const body = typeof content === 'string' ? Buffer.from(content) : content;
  const hash = sha256(body);
  const forms = new Map<Encoding, Promise<Uint8Array>>();
  return {
    name: hashedName(base, ext, hash),
    type: contentType(ext),
    sha256: hash,
    body: (encoding) => {
      if (!encoding) return Promise.resolve(body);
      let form = forms.get(encoding);
      if (!form) {
        form = compress(body, encoding, false);
        form.catch(() => forms.delete(encoding)); // retried by the next request
        forms.set(encoding, form);
      }
      return form;
    },
  };
}

function dataUri(uri: string): { ext: string; body: Buffer } {
  const m = /^data:image\/(x-icon|vnd\.microsoft\.icon|png|svg\+xml);base64,(.*)$/s.exec(uri);
  if (!m) throw new Error('render-graphiql: unexpected favicon');
  return { ext: m[1] === 'png' ? 'png' : m[1] === 'svg+xml' ? 'svg' : 'ico', body: Buffer.from(m[2]!, 'base64') };
}

/** GraphiQL's files, from the GraphiQL build inside @graphql-yoga/render-graphiql (~9 MB of strings). */
export async function packageAssets(): Promise<{ names: AssetNames; assets: Asset[] }> {
  // Only from source and at build time: the built server reads dist/graphiql-assets/.
  const g = await import('@graphql-yoga/render-graphiql/graphiql');
  const favicon = dataUri(g.favicon);
  const a = {
    script: memoryAsset('graphiql', 'js', g.js),
    stylesheet: memoryAsset('graphiql', 'css', g.css),
    favicon: memoryAsset('favicon', favicon.ext, favicon.body),
    editorWorkerService: memoryAsset('editor.worker', 'js', g.editorWorkerService),
    json: memoryAsset('json.worker', 'js', g.jsonWorker),
    graphql: memoryAsset('graphql.worker', 'js', g.graphqlWorker),
  };
  return {
    names: {
      script: a.script.name,
      stylesheet: a.stylesheet.name,
      favicon: a.favicon.name,
      workers: { editorWorkerService: a.editorWorkerService.name, json: a.json.name, graphql: a.graphql.name },
    },
    assets: Object.values(a),
  };
}

const set = (names: AssetNames, assets: Asset[]): AssetSet => {
  const byName = new Map(assets.map((a) => [a.name, a]));
  return { names, get: (name) => byName.get(name) };
};

// ---- dist/graphiql-assets/: written by the build, read by the built server ----

export const ASSET_DIR = 'graphiql-assets';
const MANIFEST = 'manifest.json';
const SUFFIX: Record<Encoding, string> = { br: '.br', gzip: '.gz' };

interface Manifest {
  names: AssetNames;
  files: Record<string, { type: string; sha256: string; encodings: Encoding[] }>;
}

/** Writes GraphiQL's files (or those given), their `.br` and `.gz` forms (best compression) and manifest.json into dir. */
export async function writeAssetDir(
  dir: string,
  source: () => Promise<{ names: AssetNames; assets: Asset[] }> = packageAssets,
): Promise<{ name: string; bytes: number; br: number; gzip: number }[]> {
  const { names, assets } = await source();
  await mkdir(dir, { recursive: true });
  const manifest: Manifest = { names, files: {} };
  const written = await Promise.all(
    assets.map(async (a) => {
      const body = await a.body();
      const [br, gz] = await Promise.all([compress(body, 'br', true), compress(body, 'gzip', true)]);
      await Promise.all([
        writeFile(join(dir, a.name), body),
        writeFile(join(dir, a.name + SUFFIX.br), br),
        writeFile(join(dir, a.name + SUFFIX.gzip), gz),
      ]);
      manifest.files[a.name] = { type: a.type, sha256: a.sha256, encodings: ['br', 'gzip'] };
      return { name: a.name, bytes: body.byteLength, br: br.byteLength, gzip: gz.byteLength };
    }),
  );
  await writeFile(join(dir, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  return written;
}

/** The files of a directory written by writeAssetDir: each form read on first use and kept. */
export async function dirAssets(dir: string): Promise<AssetSet> {
  const manifest = JSON.parse(await readFile(join(dir, MANIFEST), 'utf8')) as Manifest;
  const assets = Object.entries(manifest.files).map(([name, f]): Asset => {
    const forms = new Map<Encoding | undefined, Promise<Uint8Array>>();
    return {
      name,
      type: f.type,
      sha256: f.sha256,
      body: (encoding) => {
        let form = forms.get(encoding);
        if (!form) {
          form = readFile(join(dir, encoding && f.encodings.includes(encoding) ? name + SUFFIX[encoding] : name));
          form.catch(() => forms.delete(encoding));
          forms.set(encoding, form);
        }
        return form;
      },
    };
  });
  return set(manifest.names, assets);
}

let graphiql: Promise<AssetSet> | undefined;

/**
 * GraphiQL's files: from dist/graphiql-assets/ when this code runs from the build (the
 * directory sits beside the bundle's chunks), else from the package, in memory. Loaded once.
 */
export function graphiqlAssets(): Promise<AssetSet> {
  graphiql ??= (async () => {
    const built = fileURLToPath(new URL(`./${ASSET_DIR}/`, import.meta.url));
    if (existsSync(join(built, MANIFEST))) return dirAssets(built);
    const { names, assets } = await packageAssets();
    return set(names, assets);
  })();
  graphiql.catch(() => (graphiql = undefined));
  return graphiql;
}
