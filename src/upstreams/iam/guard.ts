// The gateway's own sign-in guard: it refuses a password sign-in without calling the IAM once
// the user has used up its budget of rejected sign-ins within the window. Set below the IAM's
// own lockout (Huawei: 5 in 15 minutes) so a buggy or hostile client cannot lock real users out.
//
// The IAM counts per user, however the request names it (user id, name + domain name, name +
// domain id). The guard cannot tell that `{id: "8c2f…"}` and `{name: "alice", domain: …}` are
// one user until a token has shown it (a token names the user's id, name and domain). So:
// - until then, it counts a user by name alone (any domain) and by id, each with a budget of
//   ceil(max / 2): at most 2 + 2 = 4 rejected IAM calls with the default max of 3, whatever
//   forms a client uses (Huawei locks at 5);
// - a successful sign-in links the forms to the user's id, and from then on every form counts
//   under the id, with one budget of `maxFailures`.
// Counting by name alone is stricter than needed (two users named alike in two domains share
// that budget until they have signed in once); never looser.
//
// A sign-in is an attempt the guard reserves before the IAM call and settles after it
// (rejected, locked, succeeded, or released when the answer says nothing about the password), so
// that concurrent attempts cannot all pass a check that sees none of the others.
//
// The rule is written once, over a store: MemoryGuardStore here (one process; no REDIS_URL),
// and the Redis store of src/shared/sign-in-guard.ts, shared by every replica.
import { createHash, randomUUID } from 'node:crypto';
import { GatewayError } from '../../errors.ts';

const MAX_TRACKED = 100_000;

export type IamUserRef = { id: string } | { name: string; domain: { id: string } | { name: string } };
/** The user as an issued token names it. */
export interface IamTokenUser {
  id: string;
  name: string;
  domain: { id: string; name: string } | null;
}

/** A password sign-in the guard let through, to be settled with what the IAM answered. */
export interface SignInAttempt {
  /** The IAM rejected the credentials: counts as a failure. */
  rejected(): Promise<void>;
  /** The IAM says the user is locked: no more calls for that user for the whole window. */
  lockedByIam(): Promise<void>;
  /** Signed in: the count is cleared and the user's forms are linked. */
  succeeded(user: IamTokenUser): Promise<void>;
  /** Any other answer (MFA required, upstream trouble): the attempt does not count. */
  released(): Promise<void>;
}

export interface SignInGuard {
  /** Reserves an attempt, or throws RATE_LIMITED (`reason: SIGN_IN_GUARD`) without one. */
  begin(endpoint: string, user: IamUserRef): Promise<SignInAttempt>;
}

type Maybe<T> = T | Promise<T>;

/** Where the guard keeps its counts, its IAM-lock records and its links between forms. */
export interface GuardStore {
  /** The id key a name form has been linked to. */
  alias(form: string): Maybe<string | undefined>;
  /** Whether an id key has been linked (seen in a token). */
  isLinked(id: string): Maybe<boolean>;
  /** Reserves one attempt under `key` if fewer than `budget` are counted in the window: 0, else ms to wait. */
  reserve(key: string, member: string, budget: number, now: number, windowMs: number): Maybe<number>;
  /** The attempt failed: it counts from `now`. */
  reject(key: string, member: string, now: number, windowMs: number): Maybe<void>;
  release(key: string, member: string): Maybe<void>;
  lock(key: string, member: string, now: number, windowMs: number): Maybe<void>;
  succeed(s: GuardSuccess): Maybe<void>;
}

export interface GuardSuccess {
  /** The key the attempt was counted under, and whether that key is this user's alone. */
  key: string;
  member: string;
  whole: boolean;
  /** The user's id key (cleared too) and its name forms, linked to it. */
  id: string;
  forms: string[];
}

/** Budgets per window: a user whose forms are linked, and each unlinked form. */
export interface GuardBudgets {
  linked: number;
  unlinked: number;
}

export function guardBudgets(maxFailures: number): GuardBudgets {
  return { linked: maxFailures, unlinked: Math.ceil(maxFailures / 2) };
}

/** A store key for one way of naming a user on one endpoint: hashed, so no user name is kept. */
export function guardKey(endpoint: string, form: string): string {
  return createHash('sha256').update(`${endpoint}\n${form.toLowerCase()}`).digest('base64url').slice(0, 22);
}

const idForm = (id: string) => `id:${id}`;
const nameForm = (name: string, domain: { id: string } | { name: string }) =>
  `name:${name}@${'id' in domain ? `id:${domain.id}` : `name:${domain.name}`}`;
const nameAlone = (name: string) => `name:${name}`;

/** The keys a token's user links: its id key and its two name forms. */
export function linkKeys(endpoint: string, user: IamTokenUser): { id: string; forms: string[] } {
  return {
    id: guardKey(endpoint, idForm(user.id)),
    forms: user.domain
      ? [guardKey(endpoint, nameForm(user.name, { id: user.domain.id })), guardKey(endpoint, nameForm(user.name, { name: user.domain.name }))]
      : [],
  };
}

export interface Resolved {
  /** The key the attempt counts under. */
  key: string;
  /** The key belongs to this user alone (its id key), not to a name shared across domains. */
  whole: boolean;
  linked: boolean;
  /** The name form asked for and the id key it resolved to, when it was linked. */
  link?: { form: string; id: string };
}

/** Which key and budget an attempt naming `user` counts under. */
export async function resolveUser(store: GuardStore, endpoint: string, user: IamUserRef): Promise<Resolved> {
  if ('id' in user) {
    const key = guardKey(endpoint, idForm(user.id));
    return { key, whole: true, linked: await store.isLinked(key) };
  }
  const form = guardKey(endpoint, nameForm(user.name, user.domain));
  const id = await store.alias(form);
  if (id) return { key: id, whole: true, linked: true, link: { form, id } };
  return { key: guardKey(endpoint, nameAlone(user.name)), whole: false, linked: false };
}

export function guardRefusal(waitMs: number): GatewayError {
  const retryAfterSeconds = Math.max(1, Math.ceil(waitMs / 1000));
  return new GatewayError(
    `Too many failed sign-ins for this user: the gateway refuses further attempts for ${retryAfterSeconds} s so that the IAM does not lock the account.`,
    'RATE_LIMITED',
    { reason: 'SIGN_IN_GUARD', retryAfterSeconds },
  );
}

export const NO_ATTEMPT: SignInAttempt = {
  rejected: async () => {},
  lockedByIam: async () => {},
  succeeded: async () => {},
  released: async () => {},
};

export const newMember = (): string => randomUUID();

/** One process's guard (no REDIS_URL): the rule above over a MemoryGuardStore. */
export class LocalSignInGuard implements SignInGuard {
  readonly store = new MemoryGuardStore();
  readonly #budgets: GuardBudgets;

  constructor(
    private readonly maxFailures: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.#budgets = guardBudgets(maxFailures);
  }

  async begin(endpoint: string, user: IamUserRef): Promise<SignInAttempt> {
    if (this.maxFailures === 0) return NO_ATTEMPT;
    const r = await resolveUser(this.store, endpoint, user);
    const member = newMember();
    const wait = this.store.reserve(r.key, member, r.linked ? this.#budgets.linked : this.#budgets.unlinked, this.now(), this.windowMs);
    if (wait > 0) throw guardRefusal(wait);
    return storeAttempt(this.store, endpoint, r, member, this.windowMs, this.now);
  }
}

/** The settling half of an attempt reserved in `store`. */
export function storeAttempt(store: GuardStore, endpoint: string, r: Resolved, member: string, windowMs: number, now: () => number): SignInAttempt {
  return {
    rejected: async () => void (await store.reject(r.key, member, now(), windowMs)),
    lockedByIam: async () => void (await store.lock(r.key, member, now(), windowMs)),
    succeeded: async (user) => void (await store.succeed({ key: r.key, member, whole: r.whole, ...linkKeys(endpoint, user) })),
    released: async () => void (await store.release(r.key, member)),
  };
}

/**
 * Counts, IAM locks and links in memory, each map bounded (oldest written first out). Also the
 * mirror of the Redis store that each replica keeps for outages (src/shared/sign-in-guard.ts),
 * hence the plain add/clear/setLock/link methods beside the GuardStore ones.
 */
export class MemoryGuardStore implements GuardStore {
  /** key → attempt id → time (ms) it counts from. */
  readonly #counts = new Map<string, Map<string, number>>();
  /** key → time (ms) the IAM's lock is assumed to end. */
  readonly #locks = new Map<string, number>();
  /** name form → id key. */
  readonly #aliases = new Map<string, string>();
  readonly #linked = new Map<string, true>();

  alias(form: string): string | undefined {
    return this.#aliases.get(form);
  }

  isLinked(id: string): boolean {
    return this.#linked.has(id);
  }

  reserve(key: string, member: string, budget: number, now: number, windowMs: number): number {
    const lockedMs = (this.#locks.get(key) ?? 0) - now;
    if (lockedMs > 0) return lockedMs;
    if (budget <= 0) return windowMs;
    const times = this.#recent(key, now, windowMs);
    if (times.length >= budget) return Math.max(1, times[times.length - budget]! + windowMs - now);
    this.add(key, member, now);
    return 0;
  }

  reject(key: string, member: string, now: number): void {
    this.add(key, member, now);
  }

  release(key: string, member: string): void {
    this.remove(key, member);
  }

  lock(key: string, member: string, now: number, windowMs: number): void {
    this.remove(key, member);
    this.setLock(key, now + windowMs);
  }

  succeed(s: GuardSuccess): void {
    if (s.whole) this.clear(s.key);
    else this.remove(s.key, s.member);
    this.clear(s.id);
    this.link(s.id, s.forms);
  }

  // ---- plain operations (the Redis store's mirror applies its events with these)

  add(key: string, member: string, at: number): void {
    const entries = this.#counts.get(key) ?? new Map<string, number>();
    entries.set(member, at);
    bounded(this.#counts, key, entries);
  }

  remove(key: string, member: string): void {
    const entries = this.#counts.get(key);
    if (!entries) return;
    entries.delete(member);
    if (entries.size === 0) this.#counts.delete(key);
  }

  clear(key: string): void {
    this.#counts.delete(key);
    this.#locks.delete(key);
  }

  setLock(key: string, until: number): void {
    if ((this.#locks.get(key) ?? 0) < until) bounded(this.#locks, key, until);
  }

  link(id: string, forms: readonly string[]): void {
    bounded(this.#linked, id, true);
    for (const form of forms) bounded(this.#aliases, form, id);
  }

  /** Everything still counting at `now`: what a replica writes back to Redis after an outage. */
  *entries(now: number, windowMs: number): Generator<{ key: string; member: string; at: number }> {
    for (const [key, entries] of this.#counts) for (const [member, at] of entries) if (at > now - windowMs) yield { key, member, at };
  }

  *locks(now: number): Generator<{ key: string; until: number }> {
    for (const [key, until] of this.#locks) if (until > now) yield { key, until };
  }

  *links(): Generator<{ form: string; id: string }> {
    for (const [form, id] of this.#aliases) yield { form, id };
  }

  linkedIds(): IterableIterator<string> {
    return this.#linked.keys();
  }

  /** Attempt times counting at `now`, oldest first; prunes the rest. */
  #recent(key: string, now: number, windowMs: number): number[] {
    const entries = this.#counts.get(key);
    if (!entries) return [];
    const since = now - windowMs;
    const times: number[] = [];
    for (const [member, at] of entries) {
      if (at > since) times.push(at);
      else entries.delete(member);
    }
    if (entries.size === 0) this.#counts.delete(key);
    return times.sort((a, b) => a - b);
  }
}

/** Map.set that keeps the map ordered by last write and at most MAX_TRACKED entries. */
function bounded<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > MAX_TRACKED) map.delete(map.keys().next().value!);
}
