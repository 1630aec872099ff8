// IAM, Keystone v3 style (Huawei Cloud / Orange Business Cloud): POST /v3/auth/tokens.
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
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import { authenticator } from 'otplib';
import { z } from 'zod';
import { EmuError, type Dialect, type EmuRequest, type EmuResponse, type EmulatorState, type Route } from './core.ts';
import {
  DEMO_IAM_CATALOG,
  DEMO_IAM_DOMAIN,
  DEMO_IAM_FEDERATED,
  DEMO_IAM_OTHER_DOMAIN,
  DEMO_IAM_PROJECTS,
  DEMO_IAM_USERS,
  IAM_LOCKOUT,
  IAM_TOKEN_LIFETIME_MS,
  type IamUserFixture,
} from './fixtures.ts';

/** Keystone's error dialect. The title is the HTTP reason phrase, whatever code the thrower used. */
export const iamDialect: Dialect = {
  requestIdHeader: 'x-request-id',
  error: (err) => ({
    error: { code: err.status, title: REASONS[err.status] ?? STATUS_CODES[err.status] ?? err.code, message: err.message, ...err.extra },
  }),
};

/** Python's reason phrases where Node's differ (Keystone renders Python's). */
const REASONS: Record<number, string> = { 413: 'Request Entity Too Large' };

// ---------------------------------------------------------------- errors

const GENERIC_401 = 'The request you have made requires authentication.';
const MFA_REQUIRED =
  'MFA verification is required: use methods ["password","totp"] with the passcode of the user\'s virtual MFA device.';

const unauthorized = () => new EmuError(401, 'Unauthorized', GENERIC_401);

const mfaRequired = () =>
  new EmuError(401, 'Unauthorized', MFA_REQUIRED, {}, { required_auth_methods: [['password', 'totp']] });

const locked = (remainingMs: number) =>
  new EmuError(
    401,
    'Unauthorized',
    `The user is locked: too many failed sign-ins. Try again in ${Math.ceil(remainingMs / 1000)} seconds.`,
  );

const notFound = (kind: 'project' | 'domain', ref: string) =>
  new EmuError(404, 'Not Found', `Could not find ${kind}: ${ref}.`);

const tokenNotFound = () => new EmuError(404, 'Not Found', 'Could not find token.');

const badRequest = (message: string) => new EmuError(400, 'Bad Request', message);

/** Keystone's ValidationError wording. */
const missing = (attribute: string, target: string) =>
  `Expecting to find ${attribute} in ${target}. The server could not comply with the request since it is ` +
  'either malformed or otherwise incorrect. The client is assumed to be in error.';

// ---------------------------------------------------------------- request body

const Text = z.string().min(1);
const hasIdOrName = (r: { id?: string; name?: string }) => r.id !== undefined || r.name !== undefined;

const DomainRef = z.object({ id: Text.optional(), name: Text.optional() }).refine(hasIdOrName, missing('id or name', 'domain'));

const ProjectRef = z
  .object({ id: Text.optional(), name: Text.optional(), domain: DomainRef.optional() })
  .refine(hasIdOrName, missing('id or name', 'project'))
  .refine((p) => p.id !== undefined || p.domain !== undefined, missing('domain', 'project'));

const PasswordUser = z
  .object({ id: Text.optional(), name: Text.optional(), domain: DomainRef.optional(), password: z.string() })
  .refine(hasIdOrName, missing('id or name', 'user'))
  .refine((u) => u.id !== undefined || u.domain !== undefined, missing('domain', 'user'));

// Keystone also takes the string "unscoped": an unscoped token even for a user with a default project.
const ScopeSchema = z.union([
  z.literal('unscoped'),
  z
    .object({ project: ProjectRef.optional(), domain: DomainRef.optional() })
    .refine((s) => (s.project === undefined) !== (s.domain === undefined), missing('project or domain', 'scope')),
]);

const CreateTokenBody = z.object({
  auth: z.object({
    identity: z.object({
      methods: z.array(z.string()).min(1),
      password: z.object({ user: PasswordUser }).optional(),
      totp: z.object({ user: z.object({ id: Text, passcode: z.string() }) }).optional(),
      token: z.object({ id: Text }).optional(),
    }),
    scope: ScopeSchema.optional(),
  }),
});

type Identity = z.infer<typeof CreateTokenBody>['auth']['identity'];
type PasswordUserInput = z.infer<typeof PasswordUser>;
type ScopeInput = z.infer<typeof ScopeSchema>;
type Ref = { id?: string; name?: string };

type Credentials =
  | { method: 'password'; user: PasswordUserInput; totp?: { id: string; passcode: string } }
  | { method: 'token'; tokenId: string };

const SUPPORTED_METHODS = new Set(['password', 'totp', 'token']);

function parseBody(raw: unknown): { credentials: Credentials; scope?: ScopeInput } {
  const parsed = CreateTokenBody.safeParse(raw);
  if (!parsed.success) throw badRequest(describeIssue(parsed.error.issues[0]));
  const { identity, scope } = parsed.data.auth;
  const credentials = credentialsOf(identity);
  // Huawei marks scope mandatory for rescoping: an unscoped token cannot be made from one.
  if (credentials.method === 'token' && (!scope || scope === 'unscoped')) throw badRequest(missing('scope', 'auth'));
  return { credentials, scope };
}

/** Keystone's schema-error shape; zod's messages name the expected type, never the value sent. */
function describeIssue(issue: z.core.$ZodIssue | undefined): string {
  if (!issue) return 'The request body is invalid.';
  if (issue.code === 'custom') return issue.message;
  const where = issue.path.length > 0 ? `field '${issue.path.join('/')}'` : 'the request body';
  return `Invalid input for ${where}: ${issue.message.replace(/^Invalid input: /, '')}.`;
}

/** Checks the method list against the method objects; Huawei knows password, password+totp and token. */
function credentialsOf(identity: Identity): Credentials {
  const methods = [...new Set(identity.methods)]; // Keystone ignores duplicates
  for (const m of methods) {
    if (!SUPPORTED_METHODS.has(m)) throw badRequest('Attempted to authenticate with an unsupported method.');
    if (identity[m as 'password' | 'totp' | 'token'] === undefined) throw badRequest(missing(m, 'identity'));
  }
  const combination = [...methods].sort().join(',');
  if (combination === 'token') return { method: 'token', tokenId: identity.token!.id };
  if (combination === 'password') return { method: 'password', user: identity.password!.user };
  if (combination === 'password,totp') {
    return { method: 'password', user: identity.password!.user, totp: identity.totp!.user };
  }
  throw badRequest(`Unsupported combination of authentication methods: [${methods.join(',')}].`);
}

// ---------------------------------------------------------------- directory

type Named = { id: string; name: string };
type Project = Named & { domain: Named };
type TokenScope = { kind: 'unscoped' } | { kind: 'domain'; domain: Named } | { kind: 'project'; project: Project };

/** Who a token speaks for: the user object as rendered, their roles and home domain. */
interface Principal {
  user: Record<string, unknown>;
  roles: Named[];
  domainId: string;
}

interface TokenRecord {
  principal: Principal;
  methods: string[];
  issuedAt: number;
  expiresAt: number;
  mfaAuthnAt?: number;
  scope: TokenScope;
}

const USERS: IamUserFixture[] = Object.values(DEMO_IAM_USERS);
const DOMAINS: Named[] = [DEMO_IAM_DOMAIN, DEMO_IAM_OTHER_DOMAIN];
const PROJECTS: Project[] = Object.values(DEMO_IAM_PROJECTS);
/** Issued tokens kept for rescoping; the oldest go first, so memory stays bounded under load. */
const MAX_TOKENS = 10_000;

const FEDERATED_PRINCIPAL: Principal = {
  user: {
    'OS-FEDERATION': DEMO_IAM_FEDERATED.federation,
    domain: DEMO_IAM_FEDERATED.user.domain,
    id: DEMO_IAM_FEDERATED.user.id,
    name: DEMO_IAM_FEDERATED.user.name,
    password_expires_at: '',
  },
  roles: DEMO_IAM_FEDERATED.roles,
  domainId: DEMO_IAM_FEDERATED.user.domain.id,
};

interface SignInState {
  /** Times of failed sign-ins that are still inside the lockout window. */
  failures: number[];
  lockedUntil: number;
}

/** Users, lockouts and issued tokens. */
export class IamDirectory {
  private readonly signIns = new Map<string, SignInState>();
  private readonly tokens = new Map<string, TokenRecord>();

  constructor(readonly state: EmulatorState) {}

  reset(): void {
    this.signIns.clear();
    this.tokens.clear();
  }

  findUser(ref: PasswordUserInput): IamUserFixture | undefined {
    if (ref.id !== undefined) return USERS.find((u) => u.id === ref.id);
    const domain = ref.domain && findDomain(ref.domain);
    return domain && USERS.find((u) => u.name === ref.name && u.domain.id === domain.id);
  }

  /** Milliseconds left on the user's lock, 0 when not locked. */
  lockRemaining(userId: string, now: number): number {
    const lockedUntil = this.signIns.get(userId)?.lockedUntil ?? 0;
    return Math.max(0, lockedUntil - now);
  }

  recordFailure(userId: string, now: number): void {
    const s = this.signIns.get(userId) ?? { failures: [], lockedUntil: 0 };
    s.failures = s.failures.filter((t) => now - t < IAM_LOCKOUT.windowMs);
    s.failures.push(now);
    if (s.failures.length >= IAM_LOCKOUT.maxFailures) {
      s.lockedUntil = now + IAM_LOCKOUT.lockMs;
      s.failures = [];
    }
    this.signIns.set(userId, s);
  }

  recordSuccess(userId: string): void {
    this.signIns.delete(userId);
  }

  issue(record: TokenRecord): string {
    const id = `MII${randomBytes(48).toString('base64url')}`; // Huawei's tokens start with MII
    if (this.tokens.size >= MAX_TOKENS) this.tokens.delete(this.tokens.keys().next().value!);
    this.tokens.set(id, record);
    return id;
  }

  /** A live token, or undefined. The federated fixture is always live, as if just signed in. */
  findToken(id: string, now: number): TokenRecord | undefined {
    if (id === DEMO_IAM_FEDERATED.token) {
      return {
        principal: FEDERATED_PRINCIPAL,
        methods: ['token'],
        issuedAt: now,
        expiresAt: now + IAM_TOKEN_LIFETIME_MS,
        scope: { kind: 'unscoped' },
      };
    }
    const record = this.tokens.get(id);
    if (record && now >= record.expiresAt) {
      this.tokens.delete(id);
      return undefined;
    }
    return record;
  }
}

function findDomain(ref: Ref): Named | undefined {
  return ref.id !== undefined ? DOMAINS.find((d) => d.id === ref.id) : DOMAINS.find((d) => d.name === ref.name);
}

// ---------------------------------------------------------------- authentication

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** Constant-time, so the emulator does not teach clients to rely on timing. */
function passwordMatches(user: IamUserFixture, password: string): boolean {
  return timingSafeEqual(sha256(user.password), sha256(password));
}

/** RFC 6238 at the emulator clock, one 30 s step either side (clock drift), as Huawei accepts. */
function passcodeMatches(secret: string, passcode: string, now: number): boolean {
  return authenticator.clone({ window: 1, epoch: now }).check(passcode, secret);
}

function principalOf(user: IamUserFixture): Principal {
  return {
    user: {
      domain: user.domain,
      id: user.id,
      name: user.name,
      password_expires_at: user.passwordExpiresAt ?? '',
    },
    roles: user.roles,
    domainId: user.domain.id,
  };
}

function signInWithPassword(
  dir: IamDirectory,
  credentials: Extract<Credentials, { method: 'password' }>,
  now: number,
): Omit<TokenRecord, 'scope'> {
  const user = dir.findUser(credentials.user);
  if (!user) throw unauthorized();
  const remaining = dir.lockRemaining(user.id, now);
  if (remaining > 0) throw locked(remaining);
  if (!passwordMatches(user, credentials.user.password)) {
    dir.recordFailure(user.id, now);
    throw unauthorized();
  }
  const mfaAuthnAt = verifyMfa(dir, user, credentials.totp, now);
  dir.recordSuccess(user.id);
  return {
    principal: principalOf(user),
    methods: credentials.totp ? ['password', 'totp'] : ['password'],
    issuedAt: now,
    expiresAt: now + IAM_TOKEN_LIFETIME_MS,
    ...(mfaAuthnAt !== undefined ? { mfaAuthnAt } : {}),
  };
}

/** Returns the MFA time when a passcode was verified; throws when one is needed or wrong. */
function verifyMfa(
  dir: IamDirectory,
  user: IamUserFixture,
  totp: { id: string; passcode: string } | undefined,
  now: number,
): number | undefined {
  if (!totp) {
    if (user.totpSecret) throw mfaRequired();
    return undefined;
  }
  // No device to check against: a client mistake, not a guess, so it does not count to the lock.
  if (!user.totpSecret) throw unauthorized();
  if (totp.id !== user.id || !passcodeMatches(user.totpSecret, totp.passcode, now)) {
    dir.recordFailure(user.id, now);
    throw unauthorized();
  }
  return now;
}

/** Rescoping keeps the source token's expiry, as Keystone does, so a token cannot be kept alive forever. */
function signInWithToken(dir: IamDirectory, tokenId: string, now: number): Omit<TokenRecord, 'scope'> {
  const source = dir.findToken(tokenId, now);
  if (!source) throw tokenNotFound();
  return {
    principal: source.principal,
    methods: ['token'],
    issuedAt: now,
    expiresAt: source.expiresAt,
    ...(source.mfaAuthnAt !== undefined ? { mfaAuthnAt: source.mfaAuthnAt } : {}),
  };
}

// ---------------------------------------------------------------- scope

function resolveScope(input: ScopeInput | undefined): TokenScope {
  if (input === undefined || input === 'unscoped') return { kind: 'unscoped' };
  if (input.domain) {
    const domain = findDomain(input.domain);
    if (!domain) throw notFound('domain', refLabel(input.domain));
    return { kind: 'domain', domain };
  }
  return { kind: 'project', project: findProject(input.project!) };
}

function findProject(ref: Ref & { domain?: Ref }): Project {
  let project: Project | undefined;
  if (ref.id !== undefined) {
    project = PROJECTS.find((p) => p.id === ref.id);
  } else {
    const domain = findDomain(ref.domain!);
    if (!domain) throw notFound('domain', refLabel(ref.domain!));
    project = PROJECTS.find((p) => p.name === ref.name && p.domain.id === domain.id);
  }
  if (!project) throw notFound('project', refLabel(ref));
  return project;
}

const refLabel = (ref: Ref) => ref.id ?? ref.name ?? '';

/** A user holds roles only in their own account, like a Keystone user without a role elsewhere. */
function assertScopeAllowed(principal: Principal, scope: TokenScope): void {
  const domainId =
    scope.kind === 'domain' ? scope.domain.id : scope.kind === 'project' ? scope.project.domain.id : undefined;
  if (domainId !== undefined && domainId !== principal.domainId) throw unauthorized();
}

// ---------------------------------------------------------------- response

/** Huawei's timestamp: ISO-8601 UTC with microseconds. */
export function iamTime(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, '000Z');
}

function renderToken(t: TokenRecord, includeCatalog: boolean) {
  const scoped = t.scope.kind !== 'unscoped';
  return {
    token: {
      methods: t.methods,
      expires_at: iamTime(t.expiresAt),
      issued_at: iamTime(t.issuedAt),
      user: t.principal.user,
      ...(t.scope.kind === 'domain' ? { domain: t.scope.domain } : {}),
      ...(t.scope.kind === 'project' ? { project: t.scope.project } : {}),
      ...(includeCatalog ? { catalog: scoped ? DEMO_IAM_CATALOG : [] } : {}),
      roles: scoped ? t.principal.roles : [],
      ...(t.mfaAuthnAt !== undefined ? { mfa_authn_at: iamTime(t.mfaAuthnAt) } : {}),
    },
  };
}

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
