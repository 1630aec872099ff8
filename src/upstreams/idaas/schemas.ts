// IDaaS PAM response bodies (EIAM Developer API 2022-02-25), validated with zod and mapped to
// the gateway's names and units in this one place: epoch ms / epoch s / ISO strings → Date.
import { z } from 'zod';

const epochS = z.number().int().nonnegative().transform((s) => new Date(s * 1000));
const isoDate = z
  .string()
  .refine((s) => !Number.isNaN(Date.parse(s)), 'not an ISO date')
  .transform((s) => new Date(s));

/** An IDaaS PAM authentication token, in the gateway's names and units. */
export interface AuthenticationToken {
  instanceId: string;
  authenticationTokenId: string;
  credentialProviderId: string;
  type: string;
  revoked: boolean;
  creatorType: string;
  creatorId: string;
  consumerType: string;
  consumerId: string;
  createdAt: Date;
  updatedAt: Date;
  expiresAt: Date;
  /** The provider identifier it was listed under (what refetching it needs), when known. */
  credentialProviderIdentifier: string | null;
}

export interface AuthenticationTokenPage {
  entities: AuthenticationToken[];
  totalCount: number;
  nextToken: string | undefined;
}

/** Where a hand-read body is not what the API documents (a path, as zod reports it). */
class ShapeError {
  constructor(readonly path: PropertyKey[]) {}
}

type Fields = Record<string, unknown>;
const isObject = (v: unknown): v is Fields => typeof v === 'object' && v !== null && !Array.isArray(v);

function str(o: Fields, key: string): string {
  const v = o[key];
  if (typeof v !== 'string') throw new ShapeError([key]);
  return v;
}

function bool(o: Fields, key: string): boolean {
  const v = o[key];
  if (typeof v !== 'boolean') throw new ShapeError([key]);
  return v;
}

function count(o: Fields, key: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new ShapeError([key]);
  return v;
}

const epochMsDate = (o: Fields, key: string) => new Date(count(o, key));

/**
 * One token as the list and obtainJwt return it, read by hand rather than by a zod schema:
 * the list page is the hot path, and zod's parse contexts and two objects per token were a
 * large share of what a list query allocated. Each token is one object plus its three Dates.
 * Same checks and same error paths as the zod schema it replaced (the "a page with …" cases in test/graphql/upstream-errors.test.ts).
 */
export function readAuthenticationToken(raw: unknown, credentialProviderIdentifier: string | null): AuthenticationToken {
  if (!isObject(raw)) throw new ShapeError([]);
  return {
    instanceId: str(raw, 'instanceId'),
    authenticationTokenId: str(raw, 'authenticationTokenId'),
    credentialProviderId: str(raw, 'credentialProviderId'),
    type: str(raw, 'authenticationTokenType').toUpperCase(),
    revoked: bool(raw, 'revoked'),
    creatorType: str(raw, 'creatorType'),
    creatorId: str(raw, 'creatorId'),
    consumerType: str(raw, 'consumerType'),
    consumerId: str(raw, 'consumerId'),
    createdAt: epochMsDate(raw, 'createTime'),
    updatedAt: epochMsDate(raw, 'updateTime'),
    expiresAt: epochMsDate(raw, 'expirationTime'),
    credentialProviderIdentifier,
  };
}

function readPage(raw: unknown, credentialProviderIdentifier: string): AuthenticationTokenPage {
  if (!isObject(raw)) throw new ShapeError([]);
  const list = raw.entities;
  if (!Array.isArray(list)) throw new ShapeError(['entities']);
  const entities = new Array<AuthenticationToken>(list.length);
  for (let i = 0; i < list.length; i++) {
    try {
      entities[i] = readAuthenticationToken(list[i], credentialProviderIdentifier);
    } catch (e) {
      throw e instanceof ShapeError ? new ShapeError(['entities', i, ...e.path]) : e;
    }
  }
  const totalCount = count(raw, 'totalCount');
  const nextToken = raw.nextToken;
  if (nextToken != null && (typeof nextToken !== 'string' || nextToken.length === 0)) throw new ShapeError(['nextToken']);
  const maxResults = raw.maxResults;
  if (maxResults !== undefined && !Number.isInteger(maxResults)) throw new ShapeError(['maxResults']);
  return { entities, totalCount, nextToken: nextToken ?? undefined };
}

/** A body reader (zod's safeParse shape, see UpstreamHttp.call) for one list page. */
export function authenticationTokenPageReader(credentialProviderIdentifier: string) {
  return {
    safeParse(body: unknown) {
      try {
        return { success: true as const, data: readPage(body, credentialProviderIdentifier) };
      } catch (e) {
        if (e instanceof ShapeError) return { success: false as const, error: { issues: [{ path: e.path }] } };
        throw e;
      }
    },
  };
}

export const obtainJwtSchema = z
  .object({
    jwtContent: z.object({
      jwtValue: z.string().min(1),
      derivedShortToken: z.string().optional().nullable(),
    }),
  })
  .passthrough()
  .transform((r, ctx) => {
    let authenticationToken: AuthenticationToken;
    try {
      authenticationToken = readAuthenticationToken(r, null);
    } catch (e) {
      if (!(e instanceof ShapeError)) throw e;
      ctx.addIssue({ code: 'custom', path: e.path, message: 'not what IDaaS documents' });
      return z.NEVER;
    }
    return {
      authenticationToken,
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
