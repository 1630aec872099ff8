// GraphQL documents for the IAM mutations, shared by the emulator and the Keystone suites.

export const TOKEN_FIELDS = /* GraphQL */ `
  fragment TokenFields on IamToken {
    value
    methods
    issuedAt
    expiresAt
    expiresIn
    expired
    mfaAuthenticatedAt
    user {
      id
      name
      domain { id name }
      passwordExpiresAt
      federation { groups { id name } identityProviderId protocolId }
    }
    domain { id name }
    project { id name domain { id name } }
    catalog { id type name endpoints { id url region regionId interface } }
    roles { id name }
    endpoint { name isDefault }
  }
`;

export const CREATE = /* GraphQL */ `
  mutation Create($input: CreateIamTokenInput!) {
    createIamToken(input: $input) { ...TokenFields }
  }
  ${TOKEN_FIELDS}
`;

export const RESCOPE = /* GraphQL */ `
  mutation Rescope($input: CreateScopedIamTokenInput!) {
    createScopedIamToken(input: $input) { ...TokenFields }
  }
  ${TOKEN_FIELDS}
`;
