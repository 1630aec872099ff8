// What a token is scoped to: nothing, a domain or a project, and whether its user may have it.
import { PROJECTS, findDomain, type Principal, type Project, type Ref, type TokenScope } from './directory.ts';
import { notFound, unauthorized } from './errors.ts';
import type { ScopeInput } from './request-body.ts';

export function resolveScope(input: ScopeInput | undefined): TokenScope {
  if (input === undefined || input === 'unscoped') return { kind: 'unscoped' };
  if (input.domain) {
    const domain = findDomain(input.domain);
    if (!domain) throw notFound('domain', refLabel(input.domain));
    return { kind: 'domain', domain };
  }
  return { kind: 'project', project: findProject(input.project!) };
}

function findProject(ref: Ref & { domain?: Ref }): Project {
  let project: Project | undefined;
  if (ref.id !== undefined) {
    project = PROJECTS.find((p) => p.id === ref.id);
  } else {
    const domain = findDomain(ref.domain!);
    if (!domain) throw notFound('domain', refLabel(ref.domain!));
    project = PROJECTS.find((p) => p.name === ref.name && p.domain.id === domain.id);
  }
  if (!project) throw notFound('project', refLabel(ref));
  return project;
}

const refLabel = (ref: Ref) => ref.id ?? ref.name ?? '';

/** A user holds roles only in their own account, like a Keystone user without a role elsewhere. */
export function assertScopeAllowed(principal: Principal, scope: TokenScope): void {
  const domainId =
    scope.kind === 'domain' ? scope.domain.id : scope.kind === 'project' ? scope.project.domain.id : undefined;
  if (domainId !== undefined && domainId !== principal.domainId) throw unauthorized();
}
