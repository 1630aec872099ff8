// The gateway's own sign-in guard: after `maxFailures` rejected sign-ins for one user within
// the window, it refuses further attempts without calling the IAM. Set below the IAM's own
// lockout (Huawei: 5 in 15 minutes) so a buggy or hostile client cannot lock real users out.
import { GatewayError } from '../../errors.ts';

const MAX_TRACKED_USERS = 100_000;

export class SignInGuard {
  /** user key → failure times (ms), oldest first. */
  readonly #failures = new Map<string, number[]>();

  constructor(
    private readonly maxFailures: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Identifies a user the way the IAM would, without anything secret. */
  static key(endpoint: string, user: { id: string } | { name: string; domain: { id: string } | { name: string } }): string {
    const who = 'id' in user ? `id:${user.id}` : `name:${user.name}@${'id' in user.domain ? `id:${user.domain.id}` : user.domain.name}`;
    return `${endpoint}\n${who.toLowerCase()}`;
  }

  /** Throws RATE_LIMITED when the user has used up its attempts. */
  check(key: string): void {
    if (this.maxFailures === 0) return;
    const recent = this.#recent(key);
    if (recent.length >= this.maxFailures) {
      const retryAfterSeconds = Math.max(1, Math.ceil((recent[0]! + this.windowMs - this.now()) / 1000));
      throw new GatewayError(
        `Too many failed sign-ins for this user: the gateway refuses further attempts for ${retryAfterSeconds} s so that the IAM does not lock the account.`,
        'RATE_LIMITED',
        { reason: 'SIGN_IN_GUARD', retryAfterSeconds },
      );
    }
  }

  failure(key: string): void {
    if (this.maxFailures === 0) return;
    const recent = this.#recent(key);
    recent.push(this.now());
    this.#failures.delete(key); // re-insert: the map stays ordered by last failure
    this.#failures.set(key, recent);
    if (this.#failures.size > MAX_TRACKED_USERS) this.#failures.delete(this.#failures.keys().next().value!);
  }

  success(key: string): void {
    this.#failures.delete(key);
  }

  #recent(key: string): number[] {
    const since = this.now() - this.windowMs;
    return (this.#failures.get(key) ?? []).filter((t) => t > since);
  }
}
