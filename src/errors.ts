// The one place where failures become GraphQL errors. Resolvers throw these (or let
// upstream clients throw them); anything else is masked by yoga as INTERNAL_SERVER_ERROR.
import { GraphQLError, type ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Logger } from 'pino';
import { PothosError } from '@pothos/core';

/** The contract's codes: every error a client sees carries one as `extensions.code`. */
export const ERROR_CODES = [
  'BAD_USER_INPUT',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'NOT_FOUND',
  'RATE_LIMITED',
  'MFA_REQUIRED',
  'UPSTREAM_ERROR',
  'UPSTREAM_UNAVAILABLE',
  'UPSTREAM_TIMEOUT',
  'INTERNAL_SERVER_ERROR',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

const CONTRACT_CODES = new Set<string>(ERROR_CODES);

/** `idaas-token`: the IDaaS OAuth token endpoint the gateway itself calls in broker mode. */
export type UpstreamService = 'idaas' | 'idaas-token' | 'iam';

export interface UpstreamInfo {
  service: UpstreamService;
  status?: number;
  code?: string;
  requestId?: string;
}

// No own enumerable fields beyond GraphQLError's: yoga (via graphql-tools) only keeps an
// error unmasked when it looks exactly like a GraphQLError.
export class GatewayError extends GraphQLError {
  constructor(message: string, code: ErrorCode, extensions: Record<string, unknown> = {}) {
    super(message, { extensions: { code, ...extensions } });
  }

  get code(): ErrorCode {
    return this.extensions.code as ErrorCode;
  }
}

export const badInput = (message: string, extensions: Record<string, unknown> = {}) =>
  new GatewayError(message, 'BAD_USER_INPUT', extensions);

/** An upstream answered with an error, an unreadable body, or not at all. */
export class UpstreamError extends GatewayError {
  constructor(message: string, code: ErrorCode, upstream: UpstreamInfo, extensions: Record<string, unknown> = {}) {
    super(message, code, { upstream: dropUndefined(upstream), ...extensions });
  }

  get upstream(): UpstreamInfo {
    return this.extensions.upstream as UpstreamInfo;
  }

  /** Why this answer means more than its status (`extensions.reason`), where it does. */
  get reason(): UpstreamReason | undefined {
    return this.extensions.reason as UpstreamReason | undefined;
  }
}

/** The reasons SPECIAL_CASES below give; clients see them as `extensions.reason`. */
export type UpstreamReason = 'USER_LOCKED' | 'TOKEN_NOT_ACCEPTED';

const SERVICE_NAMES: Record<UpstreamService, string> = { idaas: 'IDaaS PAM', 'idaas-token': 'IDaaS token endpoint', iam: 'IAM' };

/** HTTP status of an upstream error answer → our code. */
export function codeForStatus(status: number): ErrorCode {
  if (status === 400 || status === 409 || status === 422) return 'BAD_USER_INPUT';
  if (status === 401) return 'UNAUTHENTICATED';
  if (status === 403) return 'FORBIDDEN';
  if (status === 404) return 'NOT_FOUND';
  if (status === 429) return 'RATE_LIMITED';
  if (status === 408 || status === 504) return 'UPSTREAM_TIMEOUT';
  if (status === 502 || status === 503) return 'UPSTREAM_UNAVAILABLE';
  return 'UPSTREAM_ERROR';
}

/** The upstream's own error fields, whichever dialect it speaks. */
export interface ParsedUpstreamError {
  code?: string;
  message?: string;
  requestId?: string;
  /** Keystone's `receipt.required_auth_methods` / our emulator's `required_auth_methods`. */
  requiredAuthMethods?: string[][];
}

/**
 * Reads every dialect the contract lists:
 * IDaaS `{error, error_description, request_id}`, older Alibaba `{Code, Message, RequestId}`,
 * Keystone `{error: {code, title, message}}`, Huawei `{error_code, error_msg[, request_id]}`.
 */
export function parseUpstreamErrorBody(body: unknown): ParsedUpstreamError {
  if (!body || typeof body !== 'object') return {};
  const b = body as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' && v ? v : typeof v === 'number' ? String(v) : undefined);
  if (b.error && typeof b.error === 'object') {
    const e = b.error as Record<string, unknown>;
    return {
      code: str(e.title) ?? str(e.code),
      message: str(e.message),
      requiredAuthMethods: requiredMethods(b),
    };
  }
  if (typeof b.error === 'string') {
    return { code: b.error, message: str(b.error_description), requestId: str(b.request_id) };
  }
  if ('error_code' in b || 'error_msg' in b) {
    return { code: str(b.error_code), message: str(b.error_msg), requestId: str(b.request_id) };
  }
  if ('Code' in b || 'Message' in b) {
    return { code: str(b.Code), message: str(b.Message), requestId: str(b.RequestId) };
  }
  const required = requiredMethods(b);
  return required ? { requiredAuthMethods: required } : {};
}

/** Keystone puts `required_auth_methods` beside its `receipt`; Huawei-style answers inside `error`. */
function requiredMethods(b: Record<string, any>): string[][] | undefined {
  return methodsList(b.required_auth_methods) ?? methodsList(b.receipt?.required_auth_methods) ?? methodsList(b.error?.required_auth_methods);
}

function methodsList(v: unknown): string[][] | undefined {
  if (!Array.isArray(v) || !v.every((r) => Array.isArray(r) && r.every((m) => typeof m === 'string'))) return undefined;
  return v as string[][];
}

/** Removes every known secret from a text that may quote the request. */
export function redact(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join('[REDACTED]');
  return out;
}

/** An upstream's error answer, as the transport read it. */
export interface UpstreamErrorAnswer {
  status: number;
  /** The parsed JSON body, if it was JSON. */
  json: unknown;
  /** From the response headers. */
  requestId: string | undefined;
  headers?: Record<string, string | string[] | undefined>;
}

/** What the request was, where that changes what an answer means. */
export interface UpstreamErrorContext {
  /** The caller's secrets: none may be quoted back. */
  secrets?: readonly (string | undefined)[];
  /** The request presented a token to the IAM (rescoping), so Keystone's 404 means "not accepted". */
  presentedToken?: boolean;
}

/** Answers that mean more than their status, per upstream: the one place they are read. */
type SpecialCase = (
  answer: UpstreamErrorAnswer,
  parsed: ParsedUpstreamError,
  upstream: UpstreamInfo,
  context: UpstreamErrorContext,
) => UpstreamError | undefined;

const SPECIAL_CASES: Partial<Record<UpstreamService, SpecialCase>> = {
  iam: (answer, parsed, upstream, context) => {
    // Keystone answers 404 ("Could not find token", "Could not recognize Fernet token", "Failed to
    // validate token") for an unknown, garbage, revoked or expired token: for the caller that is
    // a failed authentication, not a missing resource.
    if (answer.status === 404 && context.presentedToken && /could not find token|could not recognize fernet token|failed to validate token/i.test(parsed.message ?? '')) {
      return new UpstreamError('The IAM does not accept this token: it is unknown, malformed or expired.', 'UNAUTHENTICATED', upstream, {
        reason: 'TOKEN_NOT_ACCEPTED',
      });
    }
    if (answer.status !== 401) return undefined;
    const receipt = headerValue(answer.headers, 'openstack-auth-receipt');
    if (receipt || parsed.requiredAuthMethods) {
      return new UpstreamError(
        'The IAM needs a second factor: send `totp { userId, passcode }` with the passcode of the virtual MFA device' +
          (receipt ? ', and `receipt` to continue this sign-in.' : '.'),
        'MFA_REQUIRED',
        upstream,
        { requiredMethods: parsed.requiredAuthMethods ?? [['password', 'totp']], ...(receipt ? { receipt } : {}) },
      );
    }
    if (parsed.message && /\block(ed)?\b/i.test(parsed.message)) {
      return new UpstreamError(
        `The IAM has locked this user after too many failed sign-ins: ${parsed.message.slice(0, 300)}`,
        'RATE_LIMITED',
        upstream,
        { reason: 'USER_LOCKED' },
      );
    }
    return undefined;
  },
  // The gateway's own M2M sign-in: any refusal is the operator's configuration (invalid_client,
  // invalid_scope, ...), never the caller's; a 5xx is IDaaS being unavailable.
  'idaas-token': (answer, parsed, upstream) => {
    const generic = genericError('idaas-token', answer, upstream, parsed);
    return new UpstreamError(generic.message, answer.status >= 500 ? 'UPSTREAM_UNAVAILABLE' : 'UPSTREAM_ERROR', upstream);
  },
};

function headerValue(headers: UpstreamErrorAnswer['headers'], name: string): string | undefined {
  const v = headers?.[name];
  return Array.isArray(v) ? v[0] : v;
}

function genericError(service: UpstreamService, answer: UpstreamErrorAnswer, upstream: UpstreamInfo, parsed: ParsedUpstreamError) {
  const upstreamMessage = parsed.message ? `: ${parsed.message.slice(0, 500)}` : '';
  return new UpstreamError(
    `${SERVICE_NAMES[service]} answered ${answer.status}${parsed.code ? ` ${parsed.code}` : ''}${upstreamMessage}`,
    codeForStatus(answer.status),
    upstream,
  );
}

/**
 * An upstream error answer → a typed GraphQL error: the status map, and each upstream's answers
 * that mean more than their status (SPECIAL_CASES), in one place.
 */
export function upstreamErrorFromResponse(service: UpstreamService, answer: UpstreamErrorAnswer, context: UpstreamErrorContext = {}): UpstreamError {
  const secrets = context.secrets ?? [];
  const raw = parseUpstreamErrorBody(answer.json);
  // The upstream's fields are quoted back to the client: none may echo the caller's secrets.
  const parsed: ParsedUpstreamError = {
    ...raw,
    code: raw.code && redact(raw.code, secrets).slice(0, 100),
    message: raw.message && redact(raw.message, secrets),
  };
  const upstream = dropUndefined({ service, status: answer.status, code: parsed.code, requestId: raw.requestId ?? answer.requestId });
  return SPECIAL_CASES[service]?.(answer, parsed, upstream, context) ?? genericError(service, answer, upstream, parsed);
}

export function upstreamUnreadable(service: UpstreamService, status: number, requestId: string | undefined, why: string) {
  return new UpstreamError(`${SERVICE_NAMES[service]} sent a response the gateway cannot read (${why})`, 'UPSTREAM_ERROR', {
    service,
    status,
    requestId,
  });
}

/**
 * The upstream answered successfully, but with something the gateway cannot use (say a token
 * type it does not know, or a page token that loops). No status: the answer itself was fine.
 */
export function upstreamUnusable(service: UpstreamService, why: string) {
  return new UpstreamError(`${SERVICE_NAMES[service]} sent an answer the gateway cannot use (${why})`, 'UPSTREAM_ERROR', { service });
}

/** The operator configured no endpoint for this upstream: the same code for every upstream. */
export function upstreamNotConfigured(service: UpstreamService) {
  return new UpstreamError(`No ${SERVICE_NAMES[service]} endpoint is configured.`, 'UPSTREAM_UNAVAILABLE', { service });
}

export function upstreamUnavailable(service: UpstreamService, why: string) {
  return new UpstreamError(`${SERVICE_NAMES[service]} is unavailable (${why})`, 'UPSTREAM_UNAVAILABLE', { service });
}

export function upstreamTimeout(service: UpstreamService, why: string) {
  return new UpstreamError(`${SERVICE_NAMES[service]} did not answer in time (${why})`, 'UPSTREAM_TIMEOUT', { service });
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/**
 * Every error a client sees carries a contract code. What is left without one after masking:
 *   - with a `path`, a fault while resolving or serializing a field (say an upstream value a
 *     scalar cannot represent, or a null in a non-null field): INTERNAL_SERVER_ERROR, masked
 *     like any unexpected exception (the message may quote the value);
 *   - without one (syntax, validation, variable coercion, limits), or a Pothos error (at
 *     request time these come from checks of arguments, e.g. a malformed or unknown global id):
 *     the request's own fault, BAD_USER_INPUT, with the library's code kept as `reason`.
 */
export function useContractErrorCodes(logger?: Logger): Plugin {
  const normalize = (result: ExecutionResult): ExecutionResult => {
    if (!result.errors?.some((e) => !CONTRACT_CODES.has(String(e.extensions?.code)))) return result;
    return {
      ...result,
      errors: result.errors.map((e) => {
        const code = e.extensions?.code;
        if (CONTRACT_CODES.has(String(code))) return e;
        if (e.path && !(e.originalError instanceof PothosError)) {
          logger?.error({ path: e.path.join('.'), kind: e.originalError?.name ?? e.name }, 'unexpected error while resolving a field');
          return new GraphQLError('Unexpected error.', { nodes: e.nodes, path: e.path, extensions: { code: 'INTERNAL_SERVER_ERROR' } });
        }
        return new GraphQLError(withoutVariableValues(e.message), {
          nodes: e.nodes,
          source: e.source,
          positions: e.positions,
          path: e.path,
          extensions: { ...e.extensions, code: 'BAD_USER_INPUT', ...(code ? { reason: code } : {}) },
        });
      }),
    };
  };
  return {
    onResultProcess({ result, setResult }) {
      if (Array.isArray(result)) setResult(result.map(normalize));
      else if (!(Symbol.asyncIterator in result)) setResult(normalize(result as ExecutionResult));
    },
  };
}

/**
 * graphql-js quotes the offending variable value (`got invalid value "…"`, `cannot represent
 * … value: …`), and variables carry passwords and passcodes. Keep the path and the reason only.
 */
const VARIABLE_REASONS: [RegExp, (m: RegExpExecArray) => string][] = [
  [/^(\w+|Enum "\w+") cannot represent[^:]*/, (m) => `${m[0]}.`],
  [/^Field "\w+" of required type "[\w!\[\]]+" was not provided\./, (m) => m[0]],
  [/^Field "\w+" is not defined by type "\w+"\./, (m) => m[0]],
  [/^Expected type "[\w!\[\]]+"/, (m) => `${m[0]}.`],
];

export function withoutVariableValues(message: string): string {
  const head = /^(Variable "\$\w+") got invalid value /.exec(message);
  if (!head) return message;
  // The value is quoted between the head and graphql-js's "; " separator, and may contain
  // "; " itself: take the first separator followed by a reason graphql-js writes.
  for (let i = message.indexOf('; '); i >= 0; i = message.indexOf('; ', i + 2)) {
    for (const [pattern, keep] of VARIABLE_REASONS) {
      const m = pattern.exec(message.slice(i + 2));
      if (!m) continue;
      const path = /at ("[\w.\[\]]+")$/.exec(message.slice(0, i))?.[1];
      return `${head[1]} has an invalid value${path ? ` at ${path}` : ''}: ${keep(m)}`;
    }
  }
  return `${head[1]} has an invalid value.`;
}
