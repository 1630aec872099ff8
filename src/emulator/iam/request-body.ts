// The body of POST /v3/auth/tokens, checked into one of the sign-ins Huawei supports
// (password, password + totp, token) and an optional scope.
import { z } from 'zod';
import { badRequest, missing } from './errors.ts';

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
export type PasswordUserInput = z.infer<typeof PasswordUser>;
export type ScopeInput = z.infer<typeof ScopeSchema>;

export type Credentials =
  | { method: 'password'; user: PasswordUserInput; totp?: { id: string; passcode: string } }
  | { method: 'token'; tokenId: string };

const SUPPORTED_METHODS = new Set(['password', 'totp', 'token']);

export function parseBody(raw: unknown): { credentials: Credentials; scope?: ScopeInput } {
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
