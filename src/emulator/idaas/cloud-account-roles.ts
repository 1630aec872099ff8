// ObtainCloudAccountRoleAccessCredential: STS credentials for a demo cloud account role.
import { randomBytes } from 'node:crypto';
import { EmuError, type EmuRequest } from '../core.ts';
import { DEMO_CLOUD_ACCOUNT_ROLES, ROLE_CREDENTIAL_DURATION, type CloudAccountRoleFixture } from '../fixtures.ts';
import { integerParam, requiredParam } from './params.ts';
import { BASE32_UPPER, BASE62, randomString } from './random.ts';

const ROLES_BY_EXTERNAL_ID = new Map<string, CloudAccountRoleFixture>(
  Object.values(DEMO_CLOUD_ACCOUNT_ROLES).map((r) => [`${r.instanceId} ${r.cloudAccountRoleExternalId}`, r]),
);

/** STS settings of an emulator: `ttlSeconds` caps every credential's lifetime (undefined: as asked). */
export interface StsSettings {
  ttlSeconds: number | undefined;
}

/**
 * `instanceId`: the one `authorize` already checked. With `sts.ttlSeconds`, the credential lives
 * the shorter of the asked duration and that TTL (as a role whose maximum session is shorter than
 * asked), in both `accessCredentialExpiresAt` and the STS token's `Expiration`.
 */
export function obtainAccessCredential(req: EmuRequest, instanceId: string, sts: StsSettings = { ttlSeconds: undefined }) {
  const externalId = requiredParam(req, 'cloudAccountRoleExternalId');
  const { min, max } = ROLE_CREDENTIAL_DURATION;
  const durationSeconds = integerParam(req, 'durationSeconds', min, max) ?? ROLE_CREDENTIAL_DURATION.default;

  const role = ROLES_BY_EXTERNAL_ID.get(`${instanceId} ${externalId}`);
  if (!role) throw new EmuError(404, 'not_found', `Cloud account role ${externalId} does not exist.`);

  const lifetime = sts.ttlSeconds ? Math.min(durationSeconds, sts.ttlSeconds) : durationSeconds;
  const expiresAt = Math.floor(req.now / 1000) + lifetime;
  const expiration = new Date(expiresAt * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const { instanceId: _instance, ...roleFields } = role;
  return {
    ...roleFields,
    cloudAccountRoleAccessCredential: {
      accessCredentialExpiresAt: expiresAt,
      ...(role.cloudAccountVendorType === 'aws'
        ? { awsStsToken: awsStsToken(expiration) }
        : { alibabaCloudStsToken: alibabaStsToken(expiration) }),
    },
  };
}

// Fresh random secrets on every call, shaped like the real ones (lengths and prefixes).
function alibabaStsToken(expiration: string) {
  return {
    accessKeyId: `STS.${randomString(BASE62, 25)}`,
    accessKeySecret: randomString(BASE62, 44),
    securityToken: `CAIS${randomBytes(300).toString('base64')}`,
    expiration,
  };
}

function awsStsToken(expiration: string) {
  return {
    // AWS key ids are 'ASIA' (temporary credentials) + 16 chars of upper-case base32.
    accessKeyId: `ASIA${randomString(BASE32_UPPER, 16)}`,
    secretAccessKey: randomBytes(30).toString('base64'),
    sessionToken: `IQoJb3JpZ2luX2Vj${randomBytes(450).toString('base64')}`,
    expiration,
  };
}
