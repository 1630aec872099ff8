// `npm run examples:persisted`: writes examples/persisted-operations.json, the examples' trusted
// documents, in the manifest format of PERSISTED_OPERATIONS_FILE:
// `{ "<sha256 hex of the document>": "<document>" }`.
//
// `gql.tada generate persisted` collects every `graphql.persisted(id, document)` call under
// examples/ (see examples/client.ts) as `{ id: normalized document text }`; this keys each text
// by its SHA-256 instead. The text is what examples/client.ts sends (`print(document)`), so its
// hash is the one the client computes. test/graphql/persisted-operations.test.ts fails when the
// committed file drifts from what this writes.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
export const EXAMPLES_MANIFEST = join(ROOT, 'examples/persisted-operations.json');

/** gql.tada's `{ id: document }` → the gateway's `{ sha256(document): document }`, in the same order. */
export function toManifest(byId: Record<string, string>): Record<string, string> {
  const manifest: Record<string, string> = {};
  for (const [id, document] of Object.entries(byId)) {
    const hash = createHash('sha256').update(document).digest('hex');
    if (manifest[hash] !== undefined) throw new Error(`graphql.persisted("${id}", …): the same document is persisted twice`);
    manifest[hash] = document;
  }
  return manifest;
}

/** The manifest file's text, as generated now from examples/. */
export async function generateExamplesManifest(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gql-tada-persisted-'));
  try {
    const out = join(dir, 'persisted.json');
    await promisify(execFile)(
      join(ROOT, 'node_modules/.bin/gql.tada'),
      ['generate', 'persisted', '--tsconfig', 'examples/tsconfig.json', '--fail-on-warn', '--output', out],
      { cwd: ROOT, timeout: 120_000 },
    );
    const byId = JSON.parse(await readFile(out, 'utf8')) as Record<string, string>;
    return `${JSON.stringify(toManifest(byId), null, 2)}\n`;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const text = await generateExamplesManifest();
  await writeFile(EXAMPLES_MANIFEST, text);
  console.log(`wrote ${EXAMPLES_MANIFEST} (${Object.keys(JSON.parse(text)).length} documents)`);
}
