// IDaaS PAM authentication tokens: the node, its connection, and the obtainJwt mutation.
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { z } from 'zod';
import { builder } from './builder.ts';
import { CredentialRef } from './credential.ts';
import { idRule, instanceIdRule } from './inputs.ts';
import { MAX_PAGES_PER_CONNECTION, UPSTREAM_MAX_PAGE } from './pagination.ts';
import { badInput, upstreamUnusable } from '../errors.ts';
import type { AuthenticationToken } from '../upstreams/idaas/schemas.ts';

export const AuthenticationTokenTypeEnum = builder.enumType('AuthenticationTokenType', {
  values: { JWT: { description: 'A JSON Web Token.' } },
});

const tokenIdKey = z.tuple([instanceIdRule, idRule(), idRule().nullable(), idRule()]);

export const AuthenticationTokenRef = builder.objectRef<AuthenticationToken>('AuthenticationToken');

builder.node(AuthenticationTokenRef, {
  description: 'An IDaaS PAM authentication token (metadata only; mint its JWT with `obtainJwtAuthenticationToken`).',
  interfaces: [CredentialRef],
  id: {
    resolve: (t) => JSON.stringify([t.instanceId, t.consumerId, t.credentialProviderIdentifier, t.authenticationTokenId]),
    parse: (id) => {
      try {
        return tokenIdKey.parse(JSON.parse(id));
      } catch {
        throw badInput('Not an AuthenticationToken id.');
      }
    },
  },
  // The upstream has no "get one token" operation: refetching walks the consumer's list
  // (through the request's page loader, so pages already fetched are not fetched again).
  loadOne: async ([instanceId, consumerId, credentialProviderIdentifier, authenticationTokenId], ctx) => {
    if (!credentialProviderIdentifier) return null;
    let nextToken: string | null = null;
    for (let pages = 0; pages < MAX_PAGES_PER_CONNECTION; pages++) {
      const page = await ctx.authenticationTokenPages.load({
        instanceId,
        consumerId,
        credentialProviderIdentifier,
        nextToken,
        maxResults: UPSTREAM_MAX_PAGE,
      });
      const found = page.entities.find((e) => e.authenticationTokenId === authenticationTokenId);
      if (found) return found;
      if (!page.nextToken) return null;
      nextToken = page.nextToken;
    }
    return null;
  },
  fields: (t) => ({
    authenticationTokenId: t.exposeString('authenticationTokenId'),
    instanceId: t.exposeString('instanceId'),
    credentialProviderId: t.exposeString('credentialProviderId'),
    type: t.field({
      type: AuthenticationTokenTypeEnum,
      resolve: (tok) => {
        if (tok.type !== 'JWT') throw upstreamUnusable('idaas', `unknown token type ${tok.type}`);
        return 'JWT' as const;
      },
    }),
    revoked: t.exposeBoolean('revoked'),
    creatorType: t.exposeString('creatorType'),
    creatorId: t.exposeString('creatorId'),
    consumerType: t.exposeString('consumerType'),
    consumerId: t.exposeString('consumerId'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

export const AuthenticationTokenConnection = builder.connectionObject(
  {
    type: AuthenticationTokenRef,
    name: 'AuthenticationTokenConnection',
    fields: (t) => ({
      totalCount: t.int({
        description: 'How many tokens match the filters, as the upstream counts them (not limited by `first`).',
        resolve: (c) => (c as unknown as { totalCount: number }).totalCount,
      }),
    }),
  },
  { name: 'AuthenticationTokenEdge' },
);

interface JwtShape {
  value: string;
  derivedShortToken: string | null;
}

const JwtRef = builder.objectRef<JwtShape>('Jwt').implement({
  description: 'A JWT minted by IDaaS PAM. `header` and `claims` are decoded for convenience, NOT verified: verify the signature before trusting them.',
  fields: (t) => ({
    value: t.exposeString('value', { description: 'The compact JWT. A secret: treat it as a password.' }),
    derivedShortToken: t.exposeString('derivedShortToken', {
      nullable: true,
      description: 'The short token IDaaS derives from the JWT (e.g. `sk-…`), when it issues one. A secret.',
    }),
    header: t.field({
      type: 'JSON',
      description: 'The JOSE header, decoded but not verified.',
      resolve: (j) => decodeOrFail(() => decodeProtectedHeader(j.value)),
    }),
    claims: t.field({
      type: 'JSON',
      description: 'The claims, decoded but not verified.',
      resolve: (j) => decodeOrFail(() => decodeJwt(j.value)),
    }),
  }),
});

function decodeOrFail<T>(decode: () => T): T {
  try {
    return decode();
  } catch {
    throw upstreamUnusable('idaas', 'the JWT cannot be decoded');
  }
}

/** The JWT's own `exp` for the audit line, when it has one. */
function jwtExpiry(value: string): Date | undefined {
  try {
    const { exp } = decodeJwt(value);
    return typeof exp === 'number' ? new Date(exp * 1000) : undefined;
  } catch {
    return undefined;
  }
}

const ObtainJwtInput = builder.inputType('ObtainJwtAuthenticationTokenInput', {
  fields: (t) => ({
    instanceId: t.string({ required: true, validate: instanceIdRule }),
    consumerId: t.string({ required: true, validate: idRule() }),
    authenticationTokenId: t.string({ required: true, validate: idRule() }),
    credentialProviderIdentifier: t.string({
      required: false,
      validate: idRule(),
      description: 'Optional: lets the returned token be refetched with `node(id:)`.',
    }),
  }),
});

const ObtainJwtPayload = builder
  .objectRef<{ authenticationToken: AuthenticationToken; jwt: JwtShape }>('ObtainJwtAuthenticationTokenPayload')
  .implement({
    fields: (t) => ({
      authenticationToken: t.field({ type: AuthenticationTokenRef, resolve: (p) => p.authenticationToken }),
      jwt: t.field({ type: JwtRef, resolve: (p) => p.jwt }),
    }),
  });

builder.mutationField('obtainJwtAuthenticationToken', (t) =>
  t.field({
    type: ObtainJwtPayload,
    nullable: true,
    description: 'Mints a JWT for an authentication token (IDaaS PAM obtainJwt). Needs the scope `urn:cloud:idaas:pam|authentication_token:obtain`. Never retried.',
    args: { input: t.arg({ type: ObtainJwtInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      const r = await ctx.access.mint(
        { action: 'obtainJwtAuthenticationToken', resource: { type: 'Consumer', id: input.consumerId, instanceId: input.instanceId } },
        (upstreams) => upstreams.idaas().obtainJwt(input),
        (minted) => ({ secret: minted.jwt.value, expiresAt: jwtExpiry(minted.jwt.value) ?? minted.authenticationToken.expiresAt }),
      );
      return {
        authenticationToken: { ...r.authenticationToken, credentialProviderIdentifier: input.credentialProviderIdentifier ?? null },
        jwt: r.jwt,
      };
    },
  }),
);
