// The IAM route's refusals in Keystone's words; iam.ts's header says when each is answered.
// The codes are only labels: the dialect titles every error from its HTTP status.
import { EmuError } from '../core.ts';

const GENERIC_401 = 'The request you have made requires authentication.';
const MFA_REQUIRED =
  'MFA verification is required: use methods ["password","totp"] with the passcode of the user\'s virtual MFA device.';

export const unauthorized = () => new EmuError(401, 'Unauthorized', GENERIC_401);

export const mfaRequired = () =>
  new EmuError(401, 'Unauthorized', MFA_REQUIRED, {}, { required_auth_methods: [['password', 'totp']] });

export const locked = (remainingMs: number) =>
  new EmuError(
    401,
    'Unauthorized',
    `The user is locked: too many failed sign-ins. Try again in ${Math.ceil(remainingMs / 1000)} seconds.`,
  );

export const notFound = (kind: 'project' | 'domain', ref: string) =>
  new EmuError(404, 'Not Found', `Could not find ${kind}: ${ref}.`);

export const tokenNotFound = () => new EmuError(404, 'Not Found', 'Could not find token.');

export const badRequest = (message: string) => new EmuError(400, 'Bad Request', message);

/** Keystone's ValidationError wording. */
export const missing = (attribute: string, target: string) =>
  `Expecting to find ${attribute} in ${target}. The server could not comply with the request since it is ` +
  'either malformed or otherwise incorrect. The client is assumed to be in error.';
