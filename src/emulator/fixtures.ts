// The emulator's demo data set, deterministic, shared with the tests and printed by
// `npm run emulator` / `npm start`. Everything here is fake and safe to publish.

// ---------------------------------------------------------------- IDaaS PAM

export const IDAAS_SCOPES = {
  all: 'urn:cloud:idaas:pam|.all',
  read: 'urn:cloud:idaas:pam|authentication_token:read',
  obtain: 'urn:cloud:idaas:pam|authentication_token:obtain',
  roleCredential: 'urn:cloud:idaas:pam|cloud_account_role:obtain_access_credential',
} as const;

export const DEMO_INSTANCE_ID = 'idaas_demo2jvisn35ea5lmthk267a';
/** A second instance, so tests can show that cursors are bound to their instance. */
export const DEMO_OTHER_INSTANCE_ID = 'idaas_demo9other4instance0001b';

export interface DemoAccessToken {
  token: string;
  scopes: string[];
  /** Instances the token is valid for. */
  instances: string[];
  description: string;
}

/** Bearer access tokens the emulator accepts. */
export const DEMO_ACCESS_TOKENS = {
  full: {
    token: 'demo-idaas-access-token-full',
    scopes: [IDAAS_SCOPES.all],
    instances: [DEMO_INSTANCE_ID, DEMO_OTHER_INSTANCE_ID],
    description: 'every PAM scope (urn:cloud:idaas:pam|.all)',
  },
  readOnly: {
    token: 'demo-idaas-access-token-read-only',
    scopes: [IDAAS_SCOPES.read],
    instances: [DEMO_INSTANCE_ID, DEMO_OTHER_INSTANCE_ID],
    description: 'list authentication tokens only',
  },
  mint: {
    token: 'demo-idaas-access-token-mint',
    scopes: [IDAAS_SCOPES.obtain, IDAAS_SCOPES.roleCredential],
    instances: [DEMO_INSTANCE_ID],
    description: 'obtain JWTs and cloud role credentials, no listing',
  },
} satisfies Record<string, DemoAccessToken>;

export interface M2mClientFixture {
  clientId: string;
  clientSecret: string;
  /** PKCS#8 PEM of the client's RSA key, for private_key_jwt. */
  privateKeyPem: string;
  /** Scopes the client may ask for. */
  scopes: string[];
  /** Instances its access tokens are valid for. */
  instances: string[];
}

/**
 * The M2M application of the broker mode, registered with the emulator's token endpoint.
 * The key below is a demo key generated once for the emulator: it is not a secret, guards
 * nothing real, and must never be used outside the emulator.
 */
export const DEMO_M2M_CLIENT: M2mClientFixture = {
  clientId: 'demo-m2m-client',
  clientSecret: 'demo-m2m-client-secret-not-a-secret',
  privateKeyPem: `-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCJjUwCGLIQbI+n
Y13cqz7jGkvmjTYEdEIYb+6Wn2jTVFctBLFrgmigZv1L4VKzg7UlrZAq9oi52Drw
reK9yHaEvP7wQXi2O8oxe2ThapURoI5VjjoqjpweC+JCajPjef8wC8aGDi+ma2kY
IQFABbYkejQRNxhbXsIl5HSZZ92Kjw2hLUgr5EkRtnVNXmM9xW5zCYMtXFpOrILd
B3rhfw6TSB2Kk25wbEOx4sB3tNO6wgvE+luLCe6d1LXub/+VAH99i2XOU7EfDoJ4
UfhWWFORaoRBAzJmNd9SY/jyifOXKQJctOWfL+QJFP/YNuPJqHNqLeedzOzrF8VJ
cc0hbW8rAgMBAAECggEAJPTZnxaTgOYqEocYCNnZo5rFGcSG5tt1hqtMJxvdRio6
4dWI9aGsCqyhEWoQljqkyOLBAUoLoiL+cvvFF8hsT22X8WUl0ZBu2qyUhhvkwT+p
/kKgTh7Swx/eQonWNx/n+DixtgLJuqTRL7Jua40dSt+qbZWn7aSf9R5UVYMaesdf
u4YTF4/jkGFpfD5Un3Z1NBiE6+XBZM/B5xYKgXoqC8hT5bA3IhhkKHa42EQOyll4
Rzxi7ALywn8bWPBPBNwQg4bfOCHihG/r7YLvp4DMa2mkQopfmdoDJYDRrMCC3yyt
+Vyg9fPcQXbtI9vcTTwGABalBD/dD+rAYzKgy0bpwQKBgQDAlK1mr1ltIX+Awev+
svZVoKG4s2NCbJb1JwDVsymIMrwbGIA6cqWU5C0gkddOh7ochWmob7wXBAe284VH
GU6/9YCfUIgprgOi83Zyx3KQ1VvAK5hmm9I8j9vzDVtylIzONLln06gsUaICEN95
zSkntA4P02amSo8+uIqnegnXDwKBgQC22XiSx0lycMgzRTKkUAb5f0a+bqbmpXg0
KybXFddGyPWf18mCHlmb1RyKZSeB9z5Ubaw74eCk7SsfbiCwf7hqg6GXKtlypXaS
U3EjeQZFSlV81zX1t6PEQ7HoJ638a6UzfJ5otIv9MWm07XoSgTP+4vPrZ7JwvBoG
p2xhlZkGJQKBgQCp/tQub50V+1rs0sG6fEl8fqYjP57gFLEQyJQxD80aoAZyOKeA
cJF/pAe9119iv+bmpFIHUFKNUo5ozgAZKdrdEh6vA0ye1i/5mMY3PZ4BAYXTVeha
szPbJ/Y1T9Yoh77fi6UaZLjwHkNPZYuPni21EXjUOX1ET06xQ/+JJO4ouwKBgEbB
90/NgNWhYUe94nAFa/2GzEiLJ1kf9Vkyza/0Cr+gqrR1W8xXlFOib436wQQhOmSP
oFP3/+eyw7pA8rN6aVIGqDSIZ2dfMnhDhAe3IL8Vmelams4Ah4Y+sAzntgN1YJOB
CQf5viZ3xbE3KMMabpWXG88f7MSFdgjXJzDIJFRlAoGAR1nQwVRRVWT/kJPHDEBC
yVeMoXKfv55KnoEn65e0nDRraguE+f+xKhEdmg6U8xTFCR+UnNB8tjirfXhc5dH6
Gionf19lTEhg7YdbeyNKaiVazXurFBXnv9IkQtVKQ+OYnRrbaOchftLfJRoxdXEy
34YoZrusgDfavRdHEinhWG0=
-----END PRIVATE KEY-----
`,
  scopes: [IDAAS_SCOPES.all, IDAAS_SCOPES.read, IDAAS_SCOPES.obtain, IDAAS_SCOPES.roleCredential],
  instances: [DEMO_INSTANCE_ID, DEMO_OTHER_INSTANCE_ID],
};

export interface CredentialProviderFixture {
  credentialProviderId: string;
  identifier: string;
}

export const DEMO_CREDENTIAL_PROVIDERS = {
  jwt: { credentialProviderId: 'atp_demo01kr2cmj5g4fvmls2e93d', identifier: 'demo_jwt_provider' },
  other: { credentialProviderId: 'atp_demo02other7provider8x9yz', identifier: 'demo_other_provider' },
} satisfies Record<string, CredentialProviderFixture>;

/** Authentication token as the upstream returns it (times in epoch milliseconds). */
export interface AuthenticationTokenFixture {
  instanceId: string;
  authenticationTokenId: string;
  credentialProviderId: string;
  createTime: number;
  updateTime: number;
  authenticationTokenType: 'jwt';
  revoked: boolean;
  creatorType: string;
  creatorId: string;
  consumerType: string;
  consumerId: string;
  expirationTime: number;
}

export const DEMO_CONSUMERS = {
  /** 160 tokens: spans several upstream pages at any page size. */
  large: 'app_demo_large_consumer',
  /** 25 tokens. */
  medium: 'test_jwt_subject',
  /** 3 tokens. */
  small: 'app_demo_small_consumer',
} as const;

const BASE_TIME = Date.UTC(2026, 0, 1, 8, 0, 0); // 2026-01-01T08:00:00Z
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const FUTURE_EXPIRY = Date.UTC(2036, 0, 1); // far enough not to expire during the project's life

function tokenId(consumerIndex: number, i: number): string {
  // Shaped like the upstream's ids (atntkn_ + 26 lowercase base32 chars), unique and sortable.
  return `atntkn_demo${consumerIndex}${String(i).padStart(4, '0')}kqflm0s8nmdc1cb5`;
}

function makeTokens(
  instanceId: string,
  consumerId: string,
  consumerIndex: number,
  count: number,
  provider: CredentialProviderFixture,
): AuthenticationTokenFixture[] {
  return Array.from({ length: count }, (_, i) => {
    const createTime = BASE_TIME + consumerIndex * DAY + i * HOUR;
    const revoked = i % 7 === 3;
    const expired = i % 5 === 4;
    return {
      instanceId,
      authenticationTokenId: tokenId(consumerIndex, i),
      credentialProviderId: provider.credentialProviderId,
      createTime,
      updateTime: revoked ? createTime + 2 * HOUR : createTime,
      authenticationTokenType: 'jwt' as const,
      revoked,
      creatorType: 'application',
      creatorId: 'app_demo_creator7ktg5eao6z4q',
      consumerType: 'custom',
      consumerId,
      // Expired tokens expired on a fixed past day; the rest expire far in the future.
      expirationTime: expired ? createTime + 30 * DAY : FUTURE_EXPIRY + i * HOUR,
    };
  });
}

/** Every authentication token the emulator knows, in the upstream's listing order. */
export const DEMO_AUTHENTICATION_TOKENS: AuthenticationTokenFixture[] = [
  ...makeTokens(DEMO_INSTANCE_ID, DEMO_CONSUMERS.large, 1, 160, DEMO_CREDENTIAL_PROVIDERS.jwt),
  ...makeTokens(DEMO_INSTANCE_ID, DEMO_CONSUMERS.medium, 2, 25, DEMO_CREDENTIAL_PROVIDERS.jwt),
  ...makeTokens(DEMO_INSTANCE_ID, DEMO_CONSUMERS.small, 3, 3, DEMO_CREDENTIAL_PROVIDERS.jwt),
  ...makeTokens(DEMO_INSTANCE_ID, DEMO_CONSUMERS.medium, 4, 4, DEMO_CREDENTIAL_PROVIDERS.other),
  ...makeTokens(DEMO_OTHER_INSTANCE_ID, DEMO_CONSUMERS.medium, 5, 12, DEMO_CREDENTIAL_PROVIDERS.jwt),
];

export type CloudAccountVendorType = 'alibaba_cloud' | 'aws';

export interface CloudAccountRoleFixture {
  instanceId: string;
  cloudAccountId: string;
  cloudAccountRoleId: string;
  cloudAccountRoleName: string;
  cloudAccountRoleExternalId: string;
  cloudAccountVendorType: CloudAccountVendorType;
}

export const DEMO_CLOUD_ACCOUNT_ROLES = {
  alibaba: {
    instanceId: DEMO_INSTANCE_ID,
    cloudAccountId: 'ca_demo01kmegjc11qa1t',
    cloudAccountRoleId: 'carole_demo01kmek49aq',
    cloudAccountRoleName: 'demo-readonly',
    cloudAccountRoleExternalId: 'acs:ram::1234567890123456:role/demo-readonly',
    cloudAccountVendorType: 'alibaba_cloud',
  },
  aws: {
    instanceId: DEMO_INSTANCE_ID,
    cloudAccountId: 'ca_demo02awsaccount77',
    cloudAccountRoleId: 'carole_demo02awsrole9',
    cloudAccountRoleName: 'demo-admin',
    cloudAccountRoleExternalId: 'arn:aws:iam::123456789012:role/demo-admin',
    cloudAccountVendorType: 'aws',
  },
} satisfies Record<string, CloudAccountRoleFixture>;

/** Default and bounds of `durationSeconds` for role credentials (STS's own limits). */
export const ROLE_CREDENTIAL_DURATION = { default: 3600, min: 900, max: 43_200 } as const;
/** Lifetime of a JWT minted by obtainJwt. */
export const JWT_LIFETIME_SECONDS = 3600;

// ---------------------------------------------------------------- OIDC callers (broker mode)

/** The `aud` the emulator's OIDC issuer puts in caller tokens (the gateway's CALLER_AUDIENCE). */
export const DEMO_CALLER_AUDIENCE = 'token-gateway';

export interface DemoCaller {
  subject: string;
  groups: string[];
}

/** Callers of the gateway; `emulator.oidc.sign({ sub: c.subject, groups: c.groups })` makes their tokens. */
export const DEMO_CALLERS = {
  admin: { subject: 'alice', groups: ['platform-admins'] },
  reader: { subject: 'bob', groups: ['readers'] },
} satisfies Record<string, DemoCaller>;

// ---------------------------------------------------------------- IAM (Keystone v3 style)

export const DEMO_IAM_DOMAIN = { id: 'd7a1c3e5f7091b2d4f6a8c0e2a4c6e80', name: 'demo-domain' };
export const DEMO_IAM_OTHER_DOMAIN = { id: 'e1b2c3d4e5f60718293a4b5c6d7e8f90', name: 'other-domain' };

export const DEMO_IAM_PROJECTS = {
  euWest0: { id: '0a1b2c3d4e5f60718293a4b5c6d7e8f9', name: 'eu-west-0', domain: DEMO_IAM_DOMAIN },
  apSoutheast1: { id: '1f2e3d4c5b6a79880716253443526170', name: 'ap-southeast-1', domain: DEMO_IAM_DOMAIN },
};

export interface IamUserFixture {
  id: string;
  name: string;
  password: string;
  domain: { id: string; name: string };
  /** Base32 TOTP secret of the user's virtual MFA device, when bound. */
  totpSecret?: string;
  passwordExpiresAt: string | null;
  roles: { id: string; name: string }[];
}

export const DEMO_IAM_USERS = {
  password: {
    id: '8c2f4a6b0d1e3f5a7b9c1d3e5f7a9b1c',
    name: 'demo-user',
    password: 'Demo-Passw0rd!',
    domain: DEMO_IAM_DOMAIN,
    passwordExpiresAt: null,
    roles: [
      { id: '0', name: 'te_admin' },
      { id: '0', name: 'op_service' },
    ],
  },
  mfa: {
    id: '3e5a7c9b1d2f4a6c8e0b2d4f6a8c0e2b',
    name: 'demo-mfa-user',
    password: 'Demo-Mfa-Passw0rd!',
    domain: DEMO_IAM_DOMAIN,
    totpSecret: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP',
    passwordExpiresAt: '2027-06-30T00:00:00.000000Z',
    roles: [{ id: '0', name: 'secu_admin' }],
  },
} satisfies Record<string, IamUserFixture>;

/** An unscoped token that a SAML federation sign-in produced (method `token` rescopes it). */
export const DEMO_IAM_FEDERATED = {
  token: 'MIIfederatedDemoUnscopedToken0000000000000000000000000000demo',
  user: {
    id: 'LdQTDSC7zmJVIic3yaCbLBXDxPAdDxLg',
    name: 'FederationUser',
    domain: DEMO_IAM_DOMAIN,
  },
  federation: {
    groups: [{ id: '06aa2260bb00cecc3f3ac0084a74038f', name: 'admin' }],
    identity_provider: { id: 'ACME' },
    protocol: { id: 'saml' },
  },
  roles: [
    { id: '0', name: 'te_admin' },
    { id: '0', name: 'secu_admin' },
  ],
};

/** Huawei IAM issues 24-hour tokens. */
export const IAM_TOKEN_LIFETIME_MS = 24 * HOUR;
/** Huawei IAM locks a user for 15 minutes after 5 wrong passwords within 15 minutes. */
export const IAM_LOCKOUT = { maxFailures: 5, windowMs: 15 * 60_000, lockMs: 15 * 60_000 } as const;

export const DEMO_IAM_CATALOG = [
  {
    id: 'fd631b3426cb40f0919091d5861d8fea',
    name: 'iam',
    type: 'identity',
    endpoints: [
      {
        id: 'd2983f677ce14f1e81cbb6a9345a107a',
        interface: 'public',
        region: '*',
        region_id: '*',
        url: 'https://iam.eu-west-0.prod-cloud-ocb.orange-business.com/v3',
      },
    ],
  },
  {
    id: '2e7c1a5d9b3f4e6a8c0d2f4b6a8c0e1d',
    name: 'ecs',
    type: 'compute',
    endpoints: [
      {
        id: '7b1d3f5a9c2e4b6d8f0a2c4e6b8d0f1a',
        interface: 'public',
        region: 'eu-west-0',
        region_id: 'eu-west-0',
        url: 'https://ecs.eu-west-0.prod-cloud-ocb.orange-business.com/v2.1/0a1b2c3d4e5f60718293a4b5c6d7e8f9',
      },
    ],
  },
];
