// Trusted documents (persisted operations): PERSISTED_OPERATIONS=allow|only with a manifest,
// PERSISTED_OPERATIONS_FILE, `{ "<sha256 hex of the document>": "<document>" }`. Clients send
// `{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"<hex>"}}}` instead of `query`.
//
// The manifest is read once, at start-up: every key must be the SHA-256 of its exact text, and
// every document must parse and validate against the schema, or the gateway does not start.
// Each request for a known hash carries the manifest's own DocumentNode (no parsing), which
// src/compiled-execution.ts has compiled already. Validation still runs per request, as for any
// document (INTROSPECTION and the armor limits apply alike), but yoga caches its result per
// DocumentNode: a trusted document is validated once, by its first request.
//
// Refusals (all BAD_USER_INPUT, HTTP 400, with `extensions.reason`):
//   only:  anything but a known hash (a query, an unknown hash, neither)      PERSISTED_ONLY
//   allow: an unknown hash without its query (APQ clients then send both)    PERSISTED_QUERY_NOT_FOUND
//   both:  a hash with a `query` whose SHA-256 is another                    PERSISTED_QUERY_HASH_MISMATCH
// A hash with the matching `query` runs the manifest's document (in `allow`, an unknown one runs
// as an arbitrary document).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { GraphQLError, parse, validate, type DocumentNode, type GraphQLSchema } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { defaultExtractPersistedOperationId, usePersistedOperations } from '@graphql-yoga/plugin-persisted-operations';

export type PersistedOperationsMode = 'off' | 'allow' | 'only';

/** The manifest, checked: lower-case hex SHA-256 → its parsed, validated document. */
export type TrustedDocuments = ReadonlyMap<string, DocumentNode>;

const SHA256_HEX = /^[0-9a-f]{64}$/i;

export const sha256Hex = (text: string) => createHash('sha256').update(text).digest('hex');

const oneLine = (text: string) => text.replace(/\s+/g, ' ').trim();
const shortHash = (key: string) => (key.length > 16 ? `${key.slice(0, 12)}…` : key);

/** A manifest that cannot be used: one line, naming the setting, the file and the first problem. */
export class ManifestError extends Error {
  constructor(file: string, problems: string[]) {
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})` : '';
    super(`PERSISTED_OPERATIONS_FILE: ${file}: ${problems[0]}${more}`);
    this.name = 'ManifestError';
  }
}

/** Checks a manifest's text (JSON) against the schema; throws ManifestError naming `file`. */
export function parseManifest(json: string, schema: GraphQLSchema, file: string): TrustedDocuments {
  let manifest: unknown;
  try {
    manifest = JSON.parse(json);
  } catch (e) {
    throw new ManifestError(file, [`not JSON (${oneLine((e as Error).message)})`]);
  }
  if (!manifest || typeof manifest !== 'object' || Array.isArray(manifest)) {
    throw new ManifestError(file, ['must be a JSON object { "<sha256 hex of the document>": "<document>" }']);
  }
  const problems: string[] = [];
  const documents = new Map<string, DocumentNode>();
  for (const [key, text] of Object.entries(manifest)) {
    const entry = `entry "${shortHash(key)}"`;
    if (!SHA256_HEX.test(key)) {
      problems.push(`${entry}: the key is not a SHA-256 hex digest`);
      continue;
    }
    if (typeof text !== 'string') {
      problems.push(`${entry}: the document is not a string`);
      continue;
    }
    const actual = sha256Hex(text);
    if (actual !== key.toLowerCase()) {
      problems.push(`${entry}: the SHA-256 of its document is ${actual}, not its key`);
      continue;
    }
    if (documents.has(actual)) {
      problems.push(`${entry}: listed twice`);
      continue;
    }
    let document: DocumentNode;
    try {
      document = parse(text);
    } catch (e) {
      problems.push(`${entry}: the document does not parse: ${oneLine((e as Error).message)}`);
      continue;
    }
    const errors = validate(schema, document);
    if (errors.length) {
      problems.push(`${entry}: the document does not validate: ${oneLine(errors[0]!.message)}`);
      continue;
    }
    documents.set(actual, document);
  }
  if (problems.length) throw new ManifestError(file, problems);
  return documents;
}

/** Reads and checks the manifest file; throws ManifestError. */
export function loadManifest(file: string, schema: GraphQLSchema): TrustedDocuments {
  let json: string;
  try {
    json = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ManifestError(file, [`cannot be read (${code ?? oneLine((e as Error).message)})`]);
  }
  return parseManifest(json, schema, file);
}

const refusal = (message: string, reason?: string) => ({
  message,
  extensions: { code: 'BAD_USER_INPUT', ...(reason ? { reason } : {}), http: { status: 400 } },
});

const PERSISTED_ONLY = 'PERSISTED_ONLY';

/** The plugins of a mode (none for `off`), in this order, before anything that reads the document. */
export function usePersistedDocuments(mode: PersistedOperationsMode, documents: TrustedDocuments): Plugin[] {
  if (mode === 'off') return [];
  const only = mode === 'only';
  const mismatch = refusal(
    'extensions.persistedQuery.sha256Hash is not the SHA-256 of `query`: send the hash of its exact text, or only one of them.',
    'PERSISTED_QUERY_HASH_MISMATCH',
  );
  return [
    {
      // A hash and a query together: they must agree. When they do and the hash is known, the
      // manifest's document runs (parsed and compiled already); the plugin below does the rest.
      onParams({ params, request, context, setParams }) {
        if (!params.query) return; // (as the plugin below reads it)
        const hash = defaultExtractPersistedOperationId(params, request, context);
        if (hash == null) return;
        if (sha256Hex(params.query) !== hash.toLowerCase()) throw new GraphQLError(mismatch.message, { extensions: mismatch.extensions });
        if (documents.has(hash.toLowerCase())) setParams({ ...params, query: undefined });
      },
    },
    usePersistedOperations({
      allowArbitraryOperations: !only,
      extractPersistedOperationId: (params, request, context) => defaultExtractPersistedOperationId(params, request, context)?.toLowerCase() ?? null,
      getPersistedOperation: (hash) => documents.get(hash) ?? null,
      customErrors: only
        ? {
            persistedQueryOnly: refusal(
              'This gateway runs only trusted documents: send the SHA-256 hash of one in extensions.persistedQuery.sha256Hash instead of `query`.',
              PERSISTED_ONLY,
            ),
            notFound: refusal('This gateway runs only trusted documents, and none has this hash.', PERSISTED_ONLY),
            keyNotFound: refusal(
              'This gateway runs only trusted documents: send {"extensions":{"persistedQuery":{"version":1,"sha256Hash":"<hex>"}}}.',
              PERSISTED_ONLY,
            ),
          }
        : {
            // The message APQ clients (Apollo's persisted-queries link) look for before they send
            // the query with its hash.
            notFound: refusal('PersistedQueryNotFound', 'PERSISTED_QUERY_NOT_FOUND'),
            keyNotFound: refusal('Must provide query string, or the SHA-256 hash of a trusted document in extensions.persistedQuery.sha256Hash.'),
          },
    }) as Plugin,
  ];
}
