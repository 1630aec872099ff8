// `npm run -s demo:totp`: the current virtual MFA passcode of the emulator's demo MFA user
// (for the SignInWithTotp example in GraphiQL). Demo data only.
import { authenticator } from 'otplib';
import { DEMO_IAM_USERS } from '../src/emulator/fixtures.ts';

console.log(authenticator.generate(DEMO_IAM_USERS.mfa.totpSecret));
