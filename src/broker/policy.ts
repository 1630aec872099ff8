// Broker mode's authorization: a Cedar policy file (POLICY_FILE), validated against the
// gateway's own schema (policies/schema.cedarschema), deciding what each caller may list and
// mint. Deny by default, `forbid` wins, and an evaluation error is a deny.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { LRUCache } from 'lru-cache';

export type CedarAction =
  | 'listAuthenticationTokens'
  | 'obtainJwtAuthenticationToken'
  | 'obtainCloudAccountRoleAccessCredential'
  | 'createIamToken'
  | 'createScopedIamToken';

export interface PolicyResource {
  type: 'Consumer' | 'CloudAccountRole' | 'IamEndpoint';
  id: string;
  /** Required by the schema for Consumer and CloudAccountRole; a policy reading it when absent denies. */
  instanceId?: string;
}

export interface AccessRequest {
  action: CedarAction;
  resource: PolicyResource;
  /** `durationSeconds` must be set (an integer) for obtainCloudAccountRoleAccessCredential, else the
   *  policies that read it fail to evaluate and the request is denied. */
  context?: { durationSeconds?: number };
}

/** One line: `<file>:<line>:<col>: <problem>`. */
export class PolicyError extends Error {
  override name = 'PolicyError';
}

const CACHE_SIZE = 10_000;

// Relative to src/broker/ when run by tsx, and to dist/ once bundled.
const SCHEMA_CANDIDATES = ['../../policies/schema.cedarschema', '../policies/schema.cedarschema'].map((p) =>
  fileURLToPath(new URL(p, import.meta.url)),
);

let schemaCache: { file: string; text: string } | undefined;

function gatewaySchema(): { file: string; text: string } {
  if (schemaCache) return schemaCache;
  const file = SCHEMA_CANDIDATES.find((f) => existsSync(f)) ?? SCHEMA_CANDIDATES[0]!;
  const text = readText(file);
  const parsed = cedar.checkParseSchema(text);
  if (parsed.type === 'failure') throw new PolicyError(describe(file, text, parsed.errors));
  schemaCache = { file, text };
  return schemaCache;
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown error';
    throw new PolicyError(`${file}: cannot be read (${code})`);
  }
}

/** Cedar's source locations are UTF-8 byte offsets into the text. */
function lineAndColumn(text: string, byteOffset: number): { line: number; col: number } {
  const before = Buffer.from(text, 'utf8').subarray(0, byteOffset).toString('utf8');
  const lines = before.split('\n');
  return { line: lines.length, col: [...lines[lines.length - 1]!].length + 1 };
}

/** The first problem (by position) as one line; Cedar's messages carry a policy id that only
 *  means "the n-th policy", so the position replaces it. */
function describe(file: string, text: string, errors: cedar.DetailedError[]): string {
  const located = errors
    .map((e) => ({ e, at: e.sourceLocations?.[0] }))
    .sort((a, b) => (a.at?.start ?? Number.MAX_SAFE_INTEGER) - (b.at?.start ?? Number.MAX_SAFE_INTEGER));
  const first = located[0];
  if (!first) return `${file}:1:1: invalid policy`;
  const { line, col } = first.at ? lineAndColumn(text, first.at.start) : { line: 1, col: 1 };
  let problem = first.e.message
    .replace(/^failed to parse [a-z ]+ from string: /, '')
    .replace(/^for policy `[^`]*`, /, '');
  if (first.at?.label) problem += ` (${first.at.label})`;
  if (first.e.help) problem += `; ${first.e.help}`;
  if (located.length > 1) problem += ` (and ${located.length - 1} more)`;
  return `${file}:${line}:${col}: ${problem.replace(/\s+/g, ' ').trim()}`;
}

/** Parses and validates (strict) a policy set; throws PolicyError. */
function checkPolicies(file: string, text: string): void {
  const parsed = cedar.checkParsePolicySet({ staticPolicies: text });
  if (parsed.type === 'failure') throw new PolicyError(describe(file, text, parsed.errors));
  const schema = gatewaySchema();
  const validated = cedar.validate({
    schema: schema.text,
    policies: { staticPolicies: text },
    validationSettings: { mode: 'strict' },
  });
  if (validated.type === 'failure') throw new PolicyError(describe(file, text, validated.errors));
  if (validated.validationErrors.length > 0) {
    throw new PolicyError(describe(file, text, validated.validationErrors.map((v) => v.error)));
  }
}

// Preparsed policy sets live in the wasm module's global store, keyed by id: every engine gets
// its own ids, and two slots so that a reload fills the idle one and then switches (atomic for
// isAllowed, which is synchronous) while memory stays bounded however often it reloads.
let engines = 0;

export class PolicyEngine {
  readonly #file: string;
  readonly #slots: [string, string];
  #active = 0;
  // A wasm decision is costly even preparsed, and a cache hit is a map lookup: it keeps
  // broker-mode list reads near forward mode's cost.
  readonly #decisions = new LRUCache<string, boolean>({ max: CACHE_SIZE });

  private constructor(file: string) {
    this.#file = file;
    const n = ++engines;
    this.#slots = [`token-gateway-policy-${n}-a`, `token-gateway-policy-${n}-b`];
  }

  /** Reads, parses and validates the policy file against the gateway's Cedar schema; throws PolicyError. */
  static load(file: string): PolicyEngine {
    const engine = new PolicyEngine(file);
    engine.#install(0);
    return engine;
  }

  /** Re-reads the file; on failure keeps the old policy and returns the reason. Clears the cache on success. */
  reload(): { ok: true } | { ok: false; error: string } {
    const idle = 1 - this.#active;
    try {
      this.#install(idle);
    } catch (err) {
      return { ok: false, error: err instanceof Error ? err.message : String(err) };
    }
    this.#active = idle;
    this.#decisions.clear();
    return { ok: true };
  }

  #install(slot: number): void {
    const text = readText(this.#file);
    checkPolicies(this.#file, text);
    const prepared = cedar.preparsePolicySet(this.#slots[slot]!, { staticPolicies: text });
    if (prepared.type === 'failure') throw new PolicyError(describe(this.#file, text, prepared.errors));
  }

  /** Deny by default, forbid wins. Decisions cached (LRU keyed by subject, groups, action, resource, context). */
  isAllowed(caller: { subject: string; groups: string[] }, request: AccessRequest): boolean {
    const { resource } = request;
    const duration = request.context?.durationSeconds;
    // JSON of an array: no choice of subject, group or id can make two requests share a key.
    const key = JSON.stringify([
      caller.subject,
      caller.groups,
      request.action,
      resource.type,
      resource.id,
      resource.instanceId ?? null,
      duration ?? null,
    ]);
    const cached = this.#decisions.get(key);
    if (cached !== undefined) return cached;
    const allowed = this.#decide(caller, request);
    this.#decisions.set(key, allowed);
    return allowed;
  }

  #decide(caller: { subject: string; groups: string[] }, request: AccessRequest): boolean {
    const principal = { type: 'User', id: caller.subject };
    const resource = { type: request.resource.type, id: request.resource.id };
    const instanceId = request.resource.instanceId;
    const duration = request.context?.durationSeconds;
    const answer = cedar.statefulIsAuthorized({
      principal,
      action: { type: 'Action', id: request.action },
      resource,
      context: duration === undefined ? {} : { durationSeconds: duration },
      entities: [
        { uid: principal, attrs: {}, parents: caller.groups.map((g) => ({ type: 'Group', id: g })) },
        { uid: resource, attrs: instanceId === undefined ? {} : { instanceId }, parents: [] },
      ],
      preparsedPolicySetId: this.#slots[this.#active]!,
    });
    // An evaluation error skips the policy that raised it; if that was a forbid, Cedar could
    // still allow, so any error denies.
    return (
      answer.type === 'success' &&
      answer.response.decision === 'allow' &&
      answer.response.diagnostics.errors.length === 0
    );
  }
}
