// Cloud account roles and the temporary STS credentials IDaaS PAM issues for them.
import { z } from 'zod';
import { builder } from './builder.ts';
import { CredentialRef } from './credential.ts';
import { idRule, instanceIdRule } from './inputs.ts';
import { badInput } from '../errors.ts';
import type { CloudAccountRoleCredential } from '../upstreams/idaas/schemas.ts';
import type { Access } from '../broker/access.ts';
import { VENDOR_TYPES } from '../upstreams/idaas/schemas.ts';

export type RoleShape = CloudAccountRoleCredential['cloudAccountRole'] & { instanceId: string };
export type AccessCredentialShape = CloudAccountRoleCredential['accessCredential'];

export const CloudAccountVendorTypeEnum = builder.enumType('CloudAccountVendorType', {
  values: Object.fromEntries(VENDOR_TYPES.map((v) => [v.toUpperCase(), {}])) as Record<Uppercase<(typeof VENDOR_TYPES)[number]>, object>,
});

export const CloudAccountRoleRef = builder.objectRef<RoleShape>('CloudAccountRole');

builder.node(CloudAccountRoleRef, {
  description: 'A cloud account role that IDaaS PAM can issue temporary credentials for.',
  id: {
    resolve: (r) => JSON.stringify([r.instanceId, r.externalId]),
    parse: () => {
      throw badInput('CloudAccountRole ids cannot be refetched: IDaaS PAM has no read for a role that does not issue a credential.');
    },
  },
  loadOne: () => null,
  fields: (t) => ({
    cloudAccountId: t.exposeString('cloudAccountId'),
    cloudAccountRoleId: t.exposeString('cloudAccountRoleId'),
    name: t.exposeString('name'),
    externalId: t.exposeString('externalId', { description: 'e.g. `acs:ram::123:role/name` or an AWS role ARN.' }),
    vendorType: t.field({ type: CloudAccountVendorTypeEnum, resolve: (r) => r.vendorType as never }),
  }),
});

const AlibabaCloudStsTokenRef = builder
  .objectRef<NonNullable<AccessCredentialShape['alibabaCloudStsToken']>>('AlibabaCloudStsToken')
  .implement({
    description: 'An Alibaba Cloud STS token for the role. `accessKeySecret` and `securityToken` are secrets.',
    fields: (t) => ({
      accessKeyId: t.exposeString('accessKeyId'),
      accessKeySecret: t.exposeString('accessKeySecret'),
      securityToken: t.exposeString('securityToken'),
      expiration: t.field({ type: 'DateTime', resolve: (s) => s.expiration }),
    }),
  });

const AwsStsTokenRef = builder.objectRef<NonNullable<AccessCredentialShape['awsStsToken']>>('AwsStsToken').implement({
  description: 'AWS STS credentials for the role. `secretAccessKey` and `sessionToken` are secrets.',
  fields: (t) => ({
    accessKeyId: t.exposeString('accessKeyId'),
    secretAccessKey: t.exposeString('secretAccessKey'),
    sessionToken: t.exposeString('sessionToken'),
    expiration: t.field({ type: 'DateTime', resolve: (s) => s.expiration }),
  }),
});

export const AccessCredentialRef = builder.objectRef<AccessCredentialShape>('CloudAccountRoleAccessCredential').implement({
  description: 'A temporary credential for a cloud account role; the token field matching the account vendor is set.',
  interfaces: [CredentialRef],
  fields: (t) => ({
    alibabaCloudStsToken: t.field({ type: AlibabaCloudStsTokenRef, nullable: true, resolve: (c) => c.alibabaCloudStsToken }),
    awsStsToken: t.field({ type: AwsStsTokenRef, nullable: true, resolve: (c) => c.awsStsToken }),
  }),
});

export const ROLE_DURATION = { min: 900, max: 43_200 } as const;
/** The duration the policy decides on, and the upstream is asked for, when the input names none (broker mode). */
export const BROKER_DEFAULT_DURATION = 3600;

export const ObtainInput = builder.inputType('ObtainCloudAccountRoleAccessCredentialInput', {
  fields: (t) => ({
    instanceId: t.string({ required: true, validate: instanceIdRule }),
    cloudAccountRoleExternalId: t.string({ required: true, validate: idRule(1024) }),
    durationSeconds: t.int({
      required: false,
      description: `Lifetime of the credential, ${ROLE_DURATION.min}-${ROLE_DURATION.max} s. When omitted: the upstream's default, or ${BROKER_DEFAULT_DURATION} s in broker mode (what the policy decides on).`,
      validate: z.number().int().min(ROLE_DURATION.min).max(ROLE_DURATION.max),
    }),
  }),
});

const ObtainPayload = builder
  .objectRef<{ cloudAccountRole: RoleShape; accessCredential: AccessCredentialShape }>('ObtainCloudAccountRoleAccessCredentialPayload')
  .implement({
    fields: (t) => ({
      cloudAccountRole: t.field({ type: CloudAccountRoleRef, resolve: (p) => p.cloudAccountRole }),
      accessCredential: t.field({ type: AccessCredentialRef, resolve: (p) => p.accessCredential }),
    }),
  });

builder.mutationField('obtainCloudAccountRoleAccessCredential', (t) =>
  t.field({
    type: ObtainPayload,
    nullable: true,
    description:
      'Issues a temporary credential for a cloud account role (IDaaS PAM obtainAccessCredential). Needs the scope `urn:cloud:idaas:pam|cloud_account_role:obtain_access_credential`. Never retried.',
    args: { input: t.arg({ type: ObtainInput, required: true }) },
    resolve: (_root, { input }, ctx) => obtainRoleCredential(ctx.access, input),
  }),
);

export interface ObtainRoleCredentialInput {
  instanceId: string;
  cloudAccountRoleExternalId: string;
  durationSeconds?: number | null;
}

/**
 * One mint of a role credential, authorized (and in broker mode audited) by `access`: the
 * mutation's, and each renewal of a credential lease (src/leases/lease.ts).
 */
export async function obtainRoleCredential(access: Access, input: ObtainRoleCredentialInput) {
  // In broker mode the policy sees the duration, so the upstream is asked for exactly that.
  const durationSeconds = input.durationSeconds ?? (access.mode === 'broker' ? BROKER_DEFAULT_DURATION : undefined);
  const r = await access.mint(
    {
      action: 'obtainCloudAccountRoleAccessCredential',
      resource: { type: 'CloudAccountRole', id: input.cloudAccountRoleExternalId, instanceId: input.instanceId },
      context: { durationSeconds: durationSeconds ?? BROKER_DEFAULT_DURATION },
    },
    (upstreams) => upstreams.idaas().obtainAccessCredential({ ...input, durationSeconds }),
    ({ accessCredential: c }) => ({
      secret: c.alibabaCloudStsToken?.accessKeySecret ?? c.awsStsToken?.secretAccessKey,
      expiresAt: c.expiresAt,
    }),
  );
  return { cloudAccountRole: { ...r.cloudAccountRole, instanceId: input.instanceId }, accessCredential: r.accessCredential };
}
