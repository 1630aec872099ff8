// Keystone-v3-style token bodies (Huawei Cloud / Orange Business Cloud IAM, OpenStack
// Keystone), validated with zod and mapped to the gateway's names in this one place.
import { z } from 'zod';

/**
 * Keystone and Huawei write `2020-02-13T14:21:34.042000Z`; Huawei's password expiry may come
 * without a zone (`2016-11-06T15:32:17.000000`), which is UTC too, or as "" for "never".
 */
const isoUtc = z.string().transform((s, ctx) => {
  const zoned = /(Z|[+-]\d\d:?\d\d)$/.test(s) ? s : `${s}Z`;
  const ms = Date.parse(zoned);
  if (Number.isNaN(ms)) {
    ctx.addIssue({ code: 'custom', message: 'not an ISO time' });
    return z.NEVER;
  }
  return new Date(ms);
});
const optionalTime = z
  .union([z.literal(''), z.null(), isoUtc])
  .optional()
  .transform((v) => (v instanceof Date ? v : null));

const ref = z.object({ id: z.string(), name: z.string() });

const federation = z
  .object({
    groups: z.array(ref).optional().default([]),
    identity_provider: z.object({ id: z.string() }),
    protocol: z.object({ id: z.string() }),
  })
  .transform((f) => ({ groups: f.groups, identityProviderId: f.identity_provider.id, protocolId: f.protocol.id }));

const endpoint = z
  .object({
    id: z.string(),
    url: z.string(),
    region: z.string().nullable().optional(),
    region_id: z.string().nullable().optional(),
    interface: z.string(),
  })
  .transform((e) => ({ id: e.id, url: e.url, region: e.region ?? null, regionId: e.region_id ?? null, interface: e.interface }));

const service = z.object({
  id: z.string(),
  type: z.string(),
  name: z.string().optional().default(''),
  endpoints: z.array(endpoint),
});

export const iamTokenBodySchema = z
  .object({
    token: z.object({
      methods: z.array(z.string()),
      issued_at: isoUtc,
      expires_at: isoUtc,
      mfa_authn_at: optionalTime,
      user: z.object({
        id: z.string(),
        name: z.string(),
        domain: ref.optional().nullable(),
        password_expires_at: optionalTime,
        'OS-FEDERATION': federation.optional().nullable(),
      }),
      domain: ref.optional().nullable(),
      project: z.object({ id: z.string(), name: z.string(), domain: ref.optional().nullable() }).optional().nullable(),
      catalog: z.array(service).optional().default([]),
      roles: z.array(ref).optional().default([]),
    }),
  })
  .transform(({ token: t }) => ({
    methods: t.methods,
    issuedAt: t.issued_at,
    expiresAt: t.expires_at,
    mfaAuthenticatedAt: t.mfa_authn_at,
    user: {
      id: t.user.id,
      name: t.user.name,
      domain: t.user.domain ?? null,
      passwordExpiresAt: t.user.password_expires_at,
      federation: t.user['OS-FEDERATION'] ?? null,
    },
    domain: t.domain ?? null,
    project: t.project ? { id: t.project.id, name: t.project.name, domain: t.project.domain ?? null } : null,
    catalog: t.catalog,
    roles: t.roles,
  }));

export type IamTokenBody = z.output<typeof iamTokenBodySchema>;
