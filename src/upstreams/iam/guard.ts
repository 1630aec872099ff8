// The gateway's own sign-in guard: after `maxFailures` rejected sign-ins for one user within
// the window, it refuses further attempts without calling the IAM. Set below the IAM's own
// lockout (Huawei: 5 in 15 minutes) so a buggy or hostile client cannot lock real users out.
//
// The IAM counts per user, however the request names it (user id, name + domain name, name +
// domain id). The guard links those forms once it has seen the user sign in (a token names
// the user's id, name and domain); until then each form is counted on its own.
import { GatewayError } from '../../errors.ts';

const MAX_TRACKED = 100_000;

export type IamUserRef = { id: string } | { name: string; domain: { id: string } | { name: string } };

export class SignInGuard {
  /** canonical user key → failure times (ms), oldest first. */
  readonly #failures = new Map<string, number[]>();
  /** any user key form → the canonical (user id) key, learned from issued tokens. */
  readonly #aliases = new Map<string, string>();

  constructor(
    private readonly maxFailures: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The key the guard counts under for this user; nothing secret in it. */
  key(endpoint: string, user: IamUserRef): string {
    const raw = rawKey(endpoint, user);
    return this.#aliases.get(raw) ?? raw;
  }

  /** Links every way of naming the user that a token shows, and moves its count to one key. */
  learn(endpoint: string, user: { id: string; name: string; domain: { id: string; name: string } | null }): string {
    const canonical = rawKey(endpoint, { id: user.id });
    const forms = user.domain
      ? [rawKey(endpoint, { name: user.name, domain: { id: user.domain.id } }), rawKey(endpoint, { name: user.name, domain: { name: user.domain.name } })]
      : [];
    for (const form of forms) {
      const counted = this.#failures.get(form);
      if (counted) {
        this.#failures.delete(form);
        this.#failures.set(canonical, [...(this.#failures.get(canonical) ?? []), ...counted].sort((a, b) => a - b));
      }
      bounded(this.#aliases, form, canonical);
    }
    return canonical;
  }

  /** Throws RATE_LIMITED when the user has used up its attempts. */
  check(key: string): void {
    if (this.maxFailures === 0) return;
    const recent = this.#recent(key);
    if (recent.length >= this.maxFailures) {
      const retryAfterSeconds = Math.max(1, Math.ceil((recent[recent.length - this.maxFailures]! + this.windowMs - this.now()) / 1000));
      throw new GatewayError(
        `Too many failed sign-ins for this user: the gateway refuses further attempts for ${retryAfterSeconds} s so that the IAM does not lock the account.`,
        'RATE_LIMITED',
        { reason: 'SIGN_IN_GUARD', retryAfterSeconds },
      );
    }
  }

  failure(key: string): void {
    if (this.maxFailures === 0) return;
    bounded(this.#failures, key, [...this.#recent(key), this.now()]);
  }

  /** The IAM itself has locked the user: stop calling it for the whole window. */
  lockedByIam(key: string): void {
    if (this.maxFailures === 0) return;
    bounded(this.#failures, key, Array.from({ length: this.maxFailures }, () => this.now()));
  }

  success(key: string): void {
    this.#failures.delete(key);
  }

  #recent(key: string): number[] {
    const since = this.now() - this.windowMs;
    return (this.#failures.get(key) ?? []).filter((t) => t > since);
  }
}

function rawKey(endpoint: string, user: IamUserRef): string {
  const who = 'id' in user ? `id:${user.id}` : `name:${user.name}@${'id' in user.domain ? `id:${user.domain.id}` : `name:${user.domain.name}`}`;
  return `${endpoint}\n${who.toLowerCase()}`;
}

/** Map.set that keeps the map ordered by last write and at most MAX_TRACKED entries. */
function bounded<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > MAX_TRACKED) map.delete(map.keys().next().value!);
}
