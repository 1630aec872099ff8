// nextToken ⇄ Relay connection: serves `first` edges from as many upstream pages as needed,
// whatever size the upstream pages turn out to be, with a cursor per edge that resumes
// exactly after it.
import type { Context } from '../context.ts';
import { badInput, upstreamUnusable } from '../errors.ts';
import type { ListAuthenticationTokensParams } from '../upstreams/idaas/client.ts';
import type { AuthenticationToken } from '../upstreams/idaas/schemas.ts';
import type { CursorCodec, CursorPosition } from './cursor.ts';

export const DEFAULT_FIRST = 20;
export const MAX_FIRST = 500;
/** The upstream's own maximum maxResults. */
export const UPSTREAM_MAX_PAGE = 100;
/** Bounds upstream calls for one connection even if the upstream sends tiny pages. */
export const MAX_PAGES_PER_CONNECTION = 25;

export type TokenFilter = Omit<ListAuthenticationTokensParams, 'nextToken' | 'maxResults'>;

export interface TokenEdge {
  cursor: string;
  node: AuthenticationToken;
}

export interface TokenConnection {
  edges: TokenEdge[];
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
  totalCount: number;
}

const pageSize = (wanted: number) => Math.min(Math.max(wanted, 1), UPSTREAM_MAX_PAGE);

/** What a cursor is bound to: the instance and every filter. */
export const cursorBinding = (f: TokenFilter) => [f.instanceId, f.consumerId, f.credentialProviderIdentifier, f.revoked ?? null, f.expired ?? null];

export async function loadTokenConnection(
  ctx: Context,
  filter: TokenFilter,
  args: { first?: number | null; after?: string | null },
): Promise<TokenConnection> {
  const first = args.first ?? DEFAULT_FIRST;
  if (!Number.isInteger(first) || first < 0 || first > MAX_FIRST) {
    throw badInput(`\`first\` must be between 0 and ${MAX_FIRST}.`);
  }
  const binding = cursorBinding(filter);
  const codec = ctx.services.cursors;
  const start: CursorPosition = args.after != null ? codec.decode(args.after, binding) : { p: null, s: pageSize(first), o: -1 };

  const edges: TokenEdge[] = [];
  let token = start.p;
  // A cursor inside a page must refetch that page with the same size to find its offset.
  let size = start.o >= 0 ? start.s : pageSize(first);
  let skip = start.o + 1;
  let totalCount = 0;
  let hasNextPage = false;
  const seen = new Set<string | null>();

  for (let pages = 0; ; pages++) {
    if (pages >= MAX_PAGES_PER_CONNECTION) {
      hasNextPage = true;
      break;
    }
    if (seen.has(token)) throw upstreamUnusable('idaas', 'nextToken loops back to an earlier page');
    seen.add(token);
    const page = await ctx.authenticationTokenPages.load({ ...filter, nextToken: token, maxResults: size });
    totalCount = page.totalCount;
    const items = page.entities;
    for (let i = Math.min(skip, items.length); i < items.length; i++) {
      if (edges.length === first) {
        hasNextPage = true;
        break;
      }
      const lastOfPage = i === items.length - 1 && page.nextToken;
      const pos: CursorPosition = lastOfPage ? { p: page.nextToken!, s: size, o: -1 } : { p: token, s: size, o: i };
      // Each token already carries filter.credentialProviderIdentifier (the page was read for it).
      edges.push(new LazyCursorEdge(codec, pos, binding, items[i]!));
    }
    if (hasNextPage || !page.nextToken) break;
    if (edges.length === first) {
      hasNextPage = true;
      break;
    }
    token = page.nextToken;
    size = pageSize(first - edges.length);
    skip = 0;
  }

  return {
    edges,
    totalCount,
    pageInfo: {
      hasNextPage,
      // Honest: a valid `after` cursor means at least its own edge lies before this page.
      hasPreviousPage: args.after != null,
      // Getters: signed only if the query selects them (see LazyCursorEdge).
      get startCursor() {
        return edges[0]?.cursor ?? null;
      },
      get endCursor() {
        return edges.at(-1)?.cursor ?? null;
      },
    },
  };
}

/**
 * An edge whose cursor is HMAC-signed on first read, then kept, so that queries selecting only
 * `nodes` (the common case) sign nothing. Same cursor value either way. (A class, so the
 * getter is shared on the prototype rather than allocated per edge.)
 */
class LazyCursorEdge implements TokenEdge {
  #cursor: string | undefined;
  constructor(
    private readonly codec: CursorCodec,
    private readonly pos: CursorPosition,
    private readonly binding: readonly unknown[],
    readonly node: TokenEdge['node'],
  ) {}

  get cursor(): string {
    return (this.#cursor ??= this.codec.encode(this.pos, this.binding));
  }
}
