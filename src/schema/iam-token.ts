// IAM tokens (Keystone v3 style: Huawei Cloud, Orange Business Cloud, OpenStack Keystone):
// sign-in with password and virtual MFA, rescoping of unscoped (federated) tokens.
import { z } from 'zod';
import { builder } from './builder.ts';
import { CredentialRef } from './credential.ts';
import { idRule } from './inputs.ts';
import { iamEndpoint, type IamClient, type IamToken, type KeystoneRef, type KeystoneScope } from '../upstreams/iam/client.ts';
import type { Context } from '../context.ts';

// ---------------------------------------------------------------- output types

const IamEndpointRef = builder.objectRef<{ name: string; isDefault: boolean }>('IamEndpoint').implement({
  description: 'A configured IAM endpoint, chosen by name (its URL stays server-side).',
  fields: (t) => ({
    name: t.exposeString('name'),
    isDefault: t.exposeBoolean('isDefault', { description: 'Used when a mutation names no endpoint.' }),
  }),
});

const IamDomainRef = builder.objectRef<{ id: string; name: string }>('IamDomain').implement({
  description: 'An IAM domain (a Huawei / Orange Business Cloud account).',
  fields: (t) => ({ id: t.exposeString('id'), name: t.exposeString('name') }),
});

const IamProjectRef = builder.objectRef<NonNullable<IamToken['project']>>('IamProject').implement({
  description: 'An IAM project (on Huawei Cloud, usually a region such as `eu-west-0`).',
  fields: (t) => ({
    id: t.exposeString('id'),
    name: t.exposeString('name'),
    domain: t.field({ type: IamDomainRef, nullable: true, resolve: (p) => p.domain }),
  }),
});

const IamRoleRef = builder.objectRef<{ id: string; name: string }>('IamRole').implement({
  fields: (t) => ({
    id: t.exposeString('id', { description: 'Huawei IAM reports `0` for roles without an id.' }),
    name: t.exposeString('name'),
  }),
});

const IamGroupRef = builder.objectRef<{ id: string; name: string }>('IamGroup').implement({
  fields: (t) => ({ id: t.exposeString('id'), name: t.exposeString('name') }),
});

const IamFederationRef = builder.objectRef<NonNullable<IamToken['user']['federation']>>('IamFederation').implement({
  description: 'How a federated user signed in (`OS-FEDERATION`).',
  fields: (t) => ({
    groups: t.field({ type: [IamGroupRef], resolve: (f) => f.groups }),
    identityProviderId: t.exposeString('identityProviderId'),
    protocolId: t.exposeString('protocolId'),
  }),
});

const IamUserRef = builder.objectRef<IamToken['user']>('IamUser').implement({
  fields: (t) => ({
    id: t.exposeString('id'),
    name: t.exposeString('name'),
    domain: t.field({ type: IamDomainRef, nullable: true, resolve: (u) => u.domain }),
    passwordExpiresAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When the password expires; null when it never does.',
      resolve: (u) => u.passwordExpiresAt,
    }),
    federation: t.field({
      type: IamFederationRef,
      nullable: true,
      description: 'Set for federated (SAML / OIDC) users.',
      resolve: (u) => u.federation,
    }),
  }),
});

type Service = IamToken['catalog'][number];

const IamServiceEndpointRef = builder.objectRef<Service['endpoints'][number]>('IamServiceEndpoint').implement({
  fields: (t) => ({
    id: t.exposeString('id'),
    url: t.exposeString('url'),
    region: t.exposeString('region', { nullable: true }),
    regionId: t.exposeString('regionId', { nullable: true }),
    interface: t.exposeString('interface', { description: '`public`, `internal` or `admin`.' }),
  }),
});

const IamServiceRef = builder.objectRef<Service>('IamService').implement({
  description: 'A catalog entry: a service and its endpoints.',
  fields: (t) => ({
    id: t.exposeString('id'),
    type: t.exposeString('type'),
    name: t.exposeString('name'),
    endpoints: t.field({ type: [IamServiceEndpointRef], resolve: (s) => s.endpoints }),
  }),
});

const IamTokenRef = builder.objectRef<IamToken>('IamToken').implement({
  description: 'An IAM token. `value` is the `X-Subject-Token`: send it as `X-Auth-Token` to the cloud APIs. A secret.',
  interfaces: [CredentialRef],
  fields: (t) => ({
    value: t.exposeString('value', { description: 'The token (the `X-Subject-Token` header). A secret.' }),
    methods: t.exposeStringList('methods', { description: 'How it was obtained, e.g. `password`, `totp`, `token`.' }),
    issuedAt: t.field({ type: 'DateTime', resolve: (tok) => tok.issuedAt }),
    mfaAuthenticatedAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When the virtual MFA passcode was checked, for MFA sign-ins.',
      resolve: (tok) => tok.mfaAuthenticatedAt,
    }),
    user: t.field({ type: IamUserRef, resolve: (tok) => tok.user }),
    domain: t.field({ type: IamDomainRef, nullable: true, description: 'Set for domain-scoped tokens.', resolve: (tok) => tok.domain }),
    project: t.field({ type: IamProjectRef, nullable: true, description: 'Set for project-scoped tokens.', resolve: (tok) => tok.project }),
    catalog: t.field({ type: [IamServiceRef], description: 'Empty when `includeCatalog: false` and for unscoped tokens.', resolve: (tok) => tok.catalog }),
    roles: t.field({ type: [IamRoleRef], resolve: (tok) => tok.roles }),
    endpoint: t.field({
      type: IamEndpointRef,
      description: 'The configured endpoint that issued it.',
      resolve: (tok, _a, ctx) => ({ name: tok.endpoint, isDefault: ctx.services.config.iam.endpoints[0]?.name === tok.endpoint }),
    }),
  }),
});

builder.queryField('iamEndpoints', (t) =>
  t.field({
    type: [IamEndpointRef],
    description: 'The configured IAM endpoints, by name; the first is the default.',
    resolve: (_r, _a, ctx) => ctx.services.config.iam.endpoints.map((e, i) => ({ name: e.name, isDefault: i === 0 })),
  }),
);

// ---------------------------------------------------------------- inputs

const exactlyOne = (keys: string[]) => (v: Record<string, unknown>) => keys.filter((k) => v[k] != null).length === 1;

const DomainSelector = builder.inputType('IamDomainSelector', {
  description: 'A domain by `id` or by `name` (exactly one).',
  fields: (t) => ({ id: t.string({ validate: idRule() }), name: t.string({ validate: idRule() }) }),
  validate: z.any().refine(exactlyOne(['id', 'name']), 'give exactly one of `id` and `name`'),
});

const ProjectSelector = builder.inputType('IamProjectSelector', {
  description: 'A project by `id`, or by `name` and its `domain`.',
  fields: (t) => ({
    id: t.string({ validate: idRule() }),
    name: t.string({ validate: idRule() }),
    domain: t.field({ type: DomainSelector }),
  }),
  validate: z
    .any()
    .refine((p) => (p.id != null) !== (p.name != null), 'give either `id`, or `name` with `domain`')
    .refine((p) => p.name == null || p.domain != null, 'a project `name` needs its `domain`'),
});

const Scope = builder.inputType('IamScope', {
  description:
    'What the token is for: one project, one domain, or explicitly unscoped. When `scope` is omitted the IAM decides: Huawei IAM issues an unscoped token, Keystone scopes it to the user’s default project if there is one.',
  fields: (t) => ({
    project: t.field({ type: ProjectSelector }),
    domain: t.field({ type: DomainSelector }),
    unscoped: t.boolean({ description: 'true asks for an unscoped token even when the user has a default project (Keystone `"scope": "unscoped"`).' }),
  }),
  validate: z
    .any()
    .refine((s) => s.unscoped !== false, '`unscoped` can only be true')
    .refine(exactlyOne(['project', 'domain', 'unscoped']), 'give exactly one of `project`, `domain` and `unscoped`'),
});

const PasswordInput = builder.inputType('IamPasswordInput', {
  description: 'The user by `userId`, or by `userName` with `domainName` (or `domainId`).',
  fields: (t) => ({
    userName: t.string({ validate: idRule() }),
    userId: t.string({ validate: idRule() }),
    domainName: t.string({ validate: idRule() }),
    domainId: t.string({ validate: idRule() }),
    password: t.string({ required: true, validate: z.string().min(1, 'must not be empty').max(1024) }),
  }),
  validate: z
    .any()
    .refine((p) => (p.userId != null) !== (p.userName != null), 'give either `userId`, or `userName` with `domainName`')
    .refine((p) => p.userName == null || exactlyOne(['domainName', 'domainId'])(p), 'a `userName` needs exactly one of `domainName` and `domainId`'),
});

const TotpInput = builder.inputType('IamTotpInput', {
  description: 'The virtual MFA passcode (RFC 6238, 6 digits) of the user.',
  fields: (t) => ({
    userId: t.string({ required: true, validate: idRule() }),
    passcode: t.string({ required: true, validate: z.string().regex(/^\d{6}$/, 'must be 6 digits') }),
  }),
});

const catalogArg = { defaultValue: true, description: 'false omits the service catalog (`?nocatalog`): a much smaller answer.' } as const;

const CreateInput = builder.inputType('CreateIamTokenInput', {
  fields: (t) => ({
    endpoint: t.string({ description: 'A configured IAM endpoint name (see `iamEndpoints`); the default when omitted.' }),
    password: t.field({ type: PasswordInput }),
    totp: t.field({ type: TotpInput, description: 'For users with virtual MFA.' }),
    scope: t.field({ type: Scope }),
    receipt: t.string({ description: 'Continues a sign-in that answered MFA_REQUIRED with `extensions.receipt` (Keystone); send it with `totp`.' }),
    includeCatalog: t.boolean(catalogArg),
  }),
  validate: z
    .any()
    .refine((i) => i.password != null || (i.receipt != null && i.totp != null), 'give `password`, or `receipt` with `totp`'),
});

const CreateScopedInput = builder.inputType('CreateScopedIamTokenInput', {
  fields: (t) => ({
    endpoint: t.string({ description: 'A configured IAM endpoint name; the default when omitted.' }),
    token: t.string({ required: true, description: 'An unscoped (e.g. federated) token.', validate: z.string().min(1).max(16_384) }),
    scope: t.field({ type: Scope, required: true }),
    includeCatalog: t.boolean(catalogArg),
  }),
});

// ---------------------------------------------------------------- mutations

type SelectorInput = { id?: string | null; name?: string | null };
type ScopeInput = { project?: (SelectorInput & { domain?: SelectorInput | null }) | null; domain?: SelectorInput | null; unscoped?: boolean | null };

const keystoneRef = (s: SelectorInput): KeystoneRef => (s.id != null ? { id: s.id } : { name: s.name! });

function keystoneScope(s: ScopeInput | null | undefined): KeystoneScope | null {
  if (!s) return null;
  if (s.unscoped) return 'unscoped';
  if (s.project) return { project: s.project.id != null ? { id: s.project.id } : { name: s.project.name!, domain: keystoneRef(s.project.domain!) } };
  return { domain: keystoneRef(s.domain!) };
}

/** An IAM sign-in through the access layer: the policy's resource is the endpoint's configured name. */
async function mintIamToken(
  ctx: Context,
  action: 'createIamToken' | 'createScopedIamToken',
  endpoint: string | null | undefined,
  run: (iam: IamClient) => Promise<IamToken>,
) {
  // An unknown name is the client's mistake, reported before any policy decision.
  const { name } = iamEndpoint(ctx.services.config.iam.endpoints, endpoint);
  return ctx.access.mint(
    { action, resource: { type: 'IamEndpoint', id: name } },
    (upstreams) => run(upstreams.iam()),
    (token) => ({ secret: token.value, expiresAt: token.expiresAt }),
  );
}

builder.mutationField('createIamToken', (t) =>
  t.field({
    type: IamTokenRef,
    nullable: true,
    description:
      'Signs a user in with a password (and the virtual MFA passcode when the account has MFA): `POST /v3/auth/tokens`. MFA_REQUIRED tells a frontend to ask for the passcode. A rejected password is never retried.',
    args: { input: t.arg({ type: CreateInput, required: true }) },
    resolve: (_r, { input }, ctx) =>
      mintIamToken(ctx, 'createIamToken', input.endpoint, (iam) => iam.createToken({
        endpoint: input.endpoint,
        password: input.password
          ? {
              user:
                input.password.userId != null
                  ? { id: input.password.userId }
                  : { name: input.password.userName!, domain: keystoneRef({ id: input.password.domainId, name: input.password.domainName }) },
              password: input.password.password,
            }
          : undefined,
        totp: input.totp ?? undefined,
        receipt: input.receipt,
        scope: keystoneScope(input.scope),
        includeCatalog: input.includeCatalog ?? true,
      })),
  }),
);

builder.mutationField('createScopedIamToken', (t) =>
  t.field({
    type: IamTokenRef,
    nullable: true,
    description: 'Turns an unscoped (e.g. federated) token into a project- or domain-scoped one (method `token`).',
    args: { input: t.arg({ type: CreateScopedInput, required: true }) },
    resolve: (_r, { input }, ctx) =>
      mintIamToken(ctx, 'createScopedIamToken', input.endpoint, (iam) => iam.createToken({
        endpoint: input.endpoint,
        token: input.token,
        scope: keystoneScope(input.scope),
        includeCatalog: input.includeCatalog ?? true,
      })),
  }),
);
