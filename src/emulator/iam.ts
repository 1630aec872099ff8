// IAM, Keystone v3 style (Huawei Cloud / Orange Business Cloud): POST /v3/auth/tokens.
// This file is the route and its contract; the parts it is built from live in iam/.
//
// Success: 201, the token in `X-Subject-Token`, the body {"token": {methods, expires_at, issued_at,
// user, domain | project, catalog, roles, mfa_authn_at?}}. Times are UTC with six fraction digits
// (`2020-02-13T14:21:34.042000Z`), as Huawei prints them. Tokens live 24 h on the emulator clock.
// `password_expires_at` is "" when the password never expires: Huawei's samples print "" although
// its prose says null, so readers must take both. Any `nocatalog` query parameter drops the
// `catalog` key (Keystone: `'nocatalog' not in request.args`). Unscoped tokens carry
// `roles: []` and `catalog: []`.
//
// Errors, all in Keystone's {"error": {"code", "title", "message"}} with title = HTTP reason:
// - Bad credentials (unknown user or domain, wrong password, wrong or unusable TOTP passcode,
//   totp.user.id other than the password user, scope outside the user's own domain):
//   401 {"error":{"code":401,"title":"Unauthorized","message":"The request you have made requires authentication."}}
//   One message for all, as Keystone does, so that nobody can probe which part was wrong.
// - MFA required: a user with a virtual MFA device sent the right password without `totp`:
//   401 {"error":{"code":401,"title":"Unauthorized","message":"MFA verification is required: use methods
//   [\"password\",\"totp\"] with the passcode of the user's virtual MFA device.",
//   "required_auth_methods":[["password","totp"]]}}
//   `required_auth_methods` has the name and shape of Keystone's auth-receipt body, so one reader
//   serves both; no receipt is issued (Huawei has none), the client resends password and totp
//   together. Only answered after the password was proven, so it never reveals MFA to a guesser.
// - Locked: IAM_LOCKOUT.maxFailures failed sign-ins for one user within windowMs lock it for lockMs.
//   401 {"error":{"code":401,"title":"Unauthorized","message":"The user is locked: too many failed
//   sign-ins. Try again in N seconds."}}
//   Checked before the password, so the right password does not help while locked. Wrong
//   passwords and wrong passcodes both count (otherwise whoever holds the password could try
//   every passcode); a successful sign-in clears the count. The lock follows the emulator clock.
// - Bad token (method `token`: garbage, unknown, evicted or expired):
//   404 {"error":{"code":404,"title":"Not Found","message":"Could not find token."}}
//   Keystone raises TokenNotFound (404) for every one of these and Huawei lists 404 for this API.
//   Keystone quotes the token id in the message; we do not, a token is a secret.
// - Unknown project or domain in the scope:
//   404 {"error":{"code":404,"title":"Not Found","message":"Could not find project: <id or name>."}}
//   (or "domain"). Real Keystone hides this behind the generic 401.
// - Malformed body (not JSON, wrong types, a listed method without its object, an unknown method
//   or combination, a name without its domain, `token` without `scope`): 400, Keystone's wording.
// The messages quote ids and names from the request, never a password, passcode or token.
import { STATUS_CODES } from 'node:http';
import type { Dialect, EmuRequest, EmuResponse, Route } from './core.ts';
import { signInWithPassword, signInWithToken } from './iam/auth-methods.ts';
import type { IamDirectory, TokenRecord } from './iam/directory.ts';
import { parseBody } from './iam/request-body.ts';
import { assertScopeAllowed, resolveScope } from './iam/scope.ts';
import { renderToken } from './iam/token-body.ts';

export { IamDirectory } from './iam/directory.ts';
export { iamTime } from './iam/token-body.ts';

/** Keystone's error dialect. The title is the HTTP reason phrase, whatever code the thrower used. */
export const iamDialect: Dialect = {
  requestIdHeader: 'x-request-id',
  error: (err) => ({
    error: { code: err.status, title: REASONS[err.status] ?? STATUS_CODES[err.status] ?? err.code, message: err.message, ...err.extra },
  }),
};

/** Python's reason phrases where Node's differ (Keystone renders Python's). */
const REASONS: Record<number, string> = { 413: 'Request Entity Too Large' };

function createToken(dir: IamDirectory, req: EmuRequest): EmuResponse {
  const { credentials, scope: scopeInput } = parseBody(req.json());
  // Credentials first, scope second: an unauthenticated caller learns nothing about projects.
  const signedIn =
    credentials.method === 'password'
      ? signInWithPassword(dir, credentials, req.now)
      : signInWithToken(dir, credentials.tokenId, req.now);
  const scope = resolveScope(scopeInput);
  assertScopeAllowed(signedIn.principal, scope);
  const record: TokenRecord = { ...signedIn, scope };
  const id = dir.issue(record);
  return {
    status: 201,
    headers: { 'X-Subject-Token': id },
    body: renderToken(record, !req.query.has('nocatalog')),
  };
}

export function iamRoutes(dir: IamDirectory): Route[] {
  return [
    {
      name: 'iam.createToken',
      method: 'POST',
      pattern: /^\/v3\/auth\/tokens$/,
      dialect: iamDialect,
      handle: (req) => createToken(dir, req),
    },
  ];
}
