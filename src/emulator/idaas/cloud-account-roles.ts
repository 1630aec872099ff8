// ObtainCloudAccountRoleAccessCredential: STS credentials for a demo cloud account role.
import { randomBytes } from 'node:crypto';
import { EmuError, type EmuRequest } from '../core.ts';
import { DEMO_CLOUD_ACCOUNT_ROLES, ROLE_CREDENTIAL_DURATION, type CloudAccountRoleFixture } from '../fixtures.ts';
import { integerParam, requiredParam } from './params.ts';
import { BASE32_UPPER, BASE62, randomString } from './random.ts';

const ROLES_BY_EXTERNAL_ID = new Map<string, CloudAccountRoleFixture>(
  Object.values(DEMO_CLOUD_ACCOUNT_ROLES).map((r) => [`${r.instanceId} ${r.cloudAccountRoleExternalId}`, r]),
);

/** `instanceId`: the one `authorize` already checked. */
export function obtainAccessCredential(req: EmuRequest, instanceId: string) {
  const externalId = requiredParam(req, 'cloudAccountRoleExternalId');
  const { min, max } = ROLE_CREDENTIAL_DURATION;
  const durationSeconds = integerParam(req, 'durationSeconds', min, max) ?? ROLE_CREDENTIAL_DURATION.default;

  const role = ROLES_BY_EXTERNAL_ID.get(`${instanceId} ${externalId}`);
  if (!role) throw new EmuError(404, 'not_found', `Cloud account role ${externalId} does not exist.`);

  const expiresAt = Math.floor(req.now / 1000) + durationSeconds;
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
