// IDaaS PAM response bodies (EIAM Developer API 2022-02-25), validated with zod and mapped to
// the gateway's names and units in this one place: epoch ms / epoch s / ISO strings → Date.
import { z } from 'zod';

const epochMs = z.number().int().nonnegative().transform((ms) => new Date(ms));
const epochS = z.number().int().nonnegative().transform((s) => new Date(s * 1000));
const isoDate = z
  .string()
  .refine((s) => !Number.isNaN(Date.parse(s)), 'not an ISO date')
  .transform((s) => new Date(s));

export const authenticationTokenSchema = z
  .object({
    instanceId: z.string(),
    authenticationTokenId: z.string(),
    credentialProviderId: z.string(),
    createTime: epochMs,
    updateTime: epochMs,
    authenticationTokenType: z.string(),
    revoked: z.boolean(),
    creatorType: z.string(),
    creatorId: z.string(),
    consumerType: z.string(),
    consumerId: z.string(),
    expirationTime: epochMs,
  })
  .transform((t) => ({
    instanceId: t.instanceId,
    authenticationTokenId: t.authenticationTokenId,
    credentialProviderId: t.credentialProviderId,
    type: t.authenticationTokenType.toUpperCase(),
    revoked: t.revoked,
    creatorType: t.creatorType,
    creatorId: t.creatorId,
    consumerType: t.consumerType,
    consumerId: t.consumerId,
    createdAt: t.createTime,
    updatedAt: t.updateTime,
    expiresAt: t.expirationTime,
  }));

export type AuthenticationToken = z.output<typeof authenticationTokenSchema>;

export const listAuthenticationTokensSchema = z
  .object({
    entities: z.array(authenticationTokenSchema),
    totalCount: z.number().int().nonnegative(),
    nextToken: z.string().min(1).optional().nullable(),
    maxResults: z.number().int().optional(),
  })
  .transform((p) => ({ entities: p.entities, totalCount: p.totalCount, nextToken: p.nextToken ?? undefined }));

export type AuthenticationTokenPage = z.output<typeof listAuthenticationTokensSchema>;

export const obtainJwtSchema = z
  .object({
    jwtContent: z.object({
      jwtValue: z.string().min(1),
      derivedShortToken: z.string().optional().nullable(),
    }),
  })
  .passthrough()
  .transform((r, ctx) => {
    const token = authenticationTokenSchema.safeParse(r);
    if (!token.success) {
      for (const issue of token.error.issues) ctx.addIssue({ ...issue, code: 'custom', message: issue.message });
      return z.NEVER;
    }
    return {
      authenticationToken: token.data,
      jwt: { value: r.jwtContent.jwtValue, derivedShortToken: r.jwtContent.derivedShortToken ?? null },
    };
  });

export const VENDOR_TYPES = ['alibaba_cloud', 'aws', 'azure', 'gcp', 'huawei_cloud', 'tencent_cloud'] as const;

const stsAlibaba = z.object({
  accessKeyId: z.string(),
  accessKeySecret: z.string(),
  securityToken: z.string(),
  expiration: isoDate,
});

const stsAws = z.object({
  accessKeyId: z.string(),
  secretAccessKey: z.string(),
  sessionToken: z.string(),
  expiration: isoDate,
});

export const obtainAccessCredentialSchema = z
  .object({
    cloudAccountId: z.string(),
    cloudAccountRoleId: z.string(),
    cloudAccountRoleName: z.string(),
    cloudAccountRoleExternalId: z.string(),
    cloudAccountVendorType: z.enum(VENDOR_TYPES),
    cloudAccountRoleAccessCredential: z.object({
      accessCredentialExpiresAt: epochS,
      alibabaCloudStsToken: stsAlibaba.optional().nullable(),
      awsStsToken: stsAws.optional().nullable(),
    }),
  })
  .transform((r) => ({
    cloudAccountRole: {
      cloudAccountId: r.cloudAccountId,
      cloudAccountRoleId: r.cloudAccountRoleId,
      name: r.cloudAccountRoleName,
      externalId: r.cloudAccountRoleExternalId,
      vendorType: r.cloudAccountVendorType.toUpperCase(),
    },
    accessCredential: {
      expiresAt: r.cloudAccountRoleAccessCredential.accessCredentialExpiresAt,
      alibabaCloudStsToken: r.cloudAccountRoleAccessCredential.alibabaCloudStsToken ?? null,
      awsStsToken: r.cloudAccountRoleAccessCredential.awsStsToken ?? null,
    },
  }));

export type CloudAccountRoleCredential = z.output<typeof obtainAccessCredentialSchema>;
