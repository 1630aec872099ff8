// The demo users, domains and projects, and per emulator what changes: lockouts and the
// tokens issued (kept so that a token can be rescoped).
import { randomBytes } from 'node:crypto';
import type { EmulatorState } from '../core.ts';
import {
  DEMO_IAM_DOMAIN,
  DEMO_IAM_FEDERATED,
  DEMO_IAM_OTHER_DOMAIN,
  DEMO_IAM_PROJECTS,
  DEMO_IAM_USERS,
  IAM_LOCKOUT,
  IAM_TOKEN_LIFETIME_MS,
  type IamUserFixture,
} from '../fixtures.ts';
import type { PasswordUserInput } from './request-body.ts';

export type Named = { id: string; name: string };
export type Project = Named & { domain: Named };
export type Ref = { id?: string; name?: string };
export type TokenScope = { kind: 'unscoped' } | { kind: 'domain'; domain: Named } | { kind: 'project'; project: Project };

/** Who a token speaks for: the user object as rendered, their roles and home domain. */
export interface Principal {
  user: Record<string, unknown>;
  roles: Named[];
  domainId: string;
}

export interface TokenRecord {
  principal: Principal;
  methods: string[];
  issuedAt: number;
  expiresAt: number;
  mfaAuthnAt?: number;
  scope: TokenScope;
}

const USERS: IamUserFixture[] = Object.values(DEMO_IAM_USERS);
const DOMAINS: Named[] = [DEMO_IAM_DOMAIN, DEMO_IAM_OTHER_DOMAIN];
export const PROJECTS: Project[] = Object.values(DEMO_IAM_PROJECTS);
/** Issued tokens kept for rescoping; the oldest go first, so memory stays bounded under load. */
const MAX_TOKENS = 10_000;

const FEDERATED_PRINCIPAL: Principal = {
  user: {
    'OS-FEDERATION': DEMO_IAM_FEDERATED.federation,
    domain: DEMO_IAM_FEDERATED.user.domain,
    id: DEMO_IAM_FEDERATED.user.id,
    name: DEMO_IAM_FEDERATED.user.name,
    password_expires_at: '',
  },
  roles: DEMO_IAM_FEDERATED.roles,
  domainId: DEMO_IAM_FEDERATED.user.domain.id,
};

interface SignInState {
  /** Times of failed sign-ins that are still inside the lockout window. */
  failures: number[];
  lockedUntil: number;
}

/** Users, lockouts and issued tokens. */
export class IamDirectory {
  private readonly signIns = new Map<string, SignInState>();
  private readonly tokens = new Map<string, TokenRecord>();

  constructor(readonly state: EmulatorState) {}

  reset(): void {
    this.signIns.clear();
    this.tokens.clear();
  }

  findUser(ref: PasswordUserInput): IamUserFixture | undefined {
    if (ref.id !== undefined) return USERS.find((u) => u.id === ref.id);
    const domain = ref.domain && findDomain(ref.domain);
    return domain && USERS.find((u) => u.name === ref.name && u.domain.id === domain.id);
  }

  /** Milliseconds left on the user's lock, 0 when not locked. */
  lockRemaining(userId: string, now: number): number {
    const lockedUntil = this.signIns.get(userId)?.lockedUntil ?? 0;
    return Math.max(0, lockedUntil - now);
  }

  recordFailure(userId: string, now: number): void {
    const s = this.signIns.get(userId) ?? { failures: [], lockedUntil: 0 };
    s.failures = s.failures.filter((t) => now - t < IAM_LOCKOUT.windowMs);
    s.failures.push(now);
    if (s.failures.length >= IAM_LOCKOUT.maxFailures) {
      s.lockedUntil = now + IAM_LOCKOUT.lockMs;
      s.failures = [];
    }
    this.signIns.set(userId, s);
  }

  recordSuccess(userId: string): void {
    this.signIns.delete(userId);
  }

  issue(record: TokenRecord): string {
    const id = `MII${randomBytes(48).toString('base64url')}`; // Huawei's tokens start with MII
    if (this.tokens.size >= MAX_TOKENS) this.tokens.delete(this.tokens.keys().next().value!);
    this.tokens.set(id, record);
    return id;
  }

  /** A live token, or undefined. The federated fixture is always live, as if just signed in. */
  findToken(id: string, now: number): TokenRecord | undefined {
    if (id === DEMO_IAM_FEDERATED.token) {
      return {
        principal: FEDERATED_PRINCIPAL,
        methods: ['token'],
        issuedAt: now,
        expiresAt: now + IAM_TOKEN_LIFETIME_MS,
        scope: { kind: 'unscoped' },
      };
    }
    const record = this.tokens.get(id);
    if (record && now >= record.expiresAt) {
      this.tokens.delete(id);
      return undefined;
    }
    return record;
  }
}

export function findDomain(ref: Ref): Named | undefined {
  return ref.id !== undefined ? DOMAINS.find((d) => d.id === ref.id) : DOMAINS.find((d) => d.name === ref.name);
}
