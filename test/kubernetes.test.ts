// deploy/kubernetes/: there is no cluster here, so the schema is the check. Every manifest is
// parsed the way kubectl reads it (YAML 1.1: an unquoted `off` is a boolean), rendered the way
// kustomize does (resources, labels, images; cross-checked against `kubectl kustomize` where
// kubectl is installed), validated against the Kubernetes JSON schemas that `kubernetes-models`
// ships, checked for fields the API would reject as unknown (kubectl's default strict field
// validation; the schemas alone allow them) with the same package's type declarations, and
// then held to the security and availability settings of issue 12 / the contract.
import { beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IStatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import type { IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { loadConfig } from '../src/config.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const base = path.join(root, 'deploy', 'kubernetes');

type Json = Record<string, unknown>;
interface Manifest extends Json {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; [k: string]: unknown };
}
const id = (m: { kind: string; metadata: { name: string } }) => `${m.kind}/${m.metadata.name}`;

/** Every YAML document of a file, as kubectl would read it; empty documents are skipped. */
function readYaml(file: string): unknown[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'), { version: '1.1', uniqueKeys: true, prettyErrors: true });
  if (!Array.isArray(docs)) return [];
  const out: unknown[] = [];
  for (const doc of docs) {
    const problems = [...doc.errors, ...doc.warnings].map((e) => `${path.relative(root, file)}: ${e.message}`);
    expect(problems).toEqual([]);
    const value: unknown = doc.toJS();
    if (value != null) out.push(value);
  }
  return out;
}

// --- kustomize, as far as this base uses it ------------------------------------------------

const SUPPORTED = new Set(['apiVersion', 'kind', 'resources', 'labels', 'images']);

interface Kustomization {
  apiVersion: string;
  kind: string;
  resources: string[];
  labels?: { pairs: Record<string, string>; includeSelectors?: boolean; includeTemplates?: boolean }[];
  images?: { name: string; newName?: string; newTag?: string; digest?: string }[];
}

function podTemplates(m: Json): IPodTemplateSpec[] {
  const spec = m.spec as { template?: IPodTemplateSpec } | undefined;
  return spec?.template ? [spec.template] : [];
}

function containersOf(t: IPodTemplateSpec): IContainer[] {
  return [...(t.spec?.initContainers ?? []), ...(t.spec?.containers ?? [])];
}

function render(k: Kustomization): Manifest[] {
  const out: Manifest[] = [];
  for (const r of k.resources) {
    for (const doc of readYaml(path.join(base, r))) {
      const m = structuredClone(doc) as Manifest;
      for (const l of k.labels ?? []) m.metadata.labels = { ...m.metadata.labels, ...l.pairs };
      for (const t of podTemplates(m)) {
        for (const c of containersOf(t)) {
          const at = c.image!.search(/[@:][^/]*$/);
          const [name, ref] = at < 0 ? [c.image!, ''] : [c.image!.slice(0, at), c.image!.slice(at)];
          const img = k.images?.find((i) => i.name === name);
          if (img) c.image = (img.newName ?? name) + (img.digest ? `@${img.digest}` : img.newTag ? `:${img.newTag}` : ref);
        }
      }
      out.push(m);
    }
  }
  return out;
}

// --- schema validation: kubernetes-models ---------------------------------------------------

/** `apps/v1` + `Deployment` → `kubernetes-models/apps/v1/Deployment` (core `v1` → `kubernetes-models/v1/...`). */
const modulePath = (m: Manifest) => `kubernetes-models/${m.apiVersion}/${m.kind}`;

async function schemaErrors(m: Manifest): Promise<string | undefined> {
  let Model: new (data: unknown) => { validate(): void };
  try {
    const mod = (await import(/* @vite-ignore */ modulePath(m))) as Record<string, new (data: unknown) => { validate(): void }>;
    Model = mod[m.kind]!;
    if (typeof Model !== 'function') throw new Error('no model class');
  } catch {
    return `${id(m)}: unknown apiVersion/kind ${m.apiVersion} ${m.kind}`;
  }
  try {
    new Model(m).validate();
    return undefined;
  } catch (e) {
    return `${id(m)}: ${(e as Error).message}`;
  }
}

/**
 * The JSON schemas do not forbid unknown properties, but the API server (kubectl's default
 * `--validate=strict`) does. The models' TypeScript declarations list every field, so each
 * property of a manifest is looked up in its interface with the TypeScript checker.
 */
function unknownFieldFinder(manifests: Manifest[]): (m: Manifest) => string[] {
  const specs = [...new Set(manifests.map(modulePath))];
  const virtual = path.join(root, 'test', '__kubernetes_models_types__.ts');
  const source = specs.map((s, i) => `export type T${i} = import('${s}').I${s.split('/').at(-1)};`).join('\n');
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2023,
    types: [],
    skipLibCheck: true,
    noEmit: true,
    strict: true,
  };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (f, lang, ...rest) =>
    path.resolve(f) === virtual ? ts.createSourceFile(f, source, lang) : getSourceFile.call(host, f, lang, ...rest);
  host.fileExists = (f) => path.resolve(f) === virtual || fileExists.call(host, f);
  host.readFile = (f) => (path.resolve(f) === virtual ? source : readFile.call(host, f));
  const program = ts.createProgram([virtual], options, host);
  const checker = program.getTypeChecker();
  const file = program.getSourceFile(virtual)!;
  const types = new Map<string, ts.Type>();
  file.statements.forEach((s, i) => {
    if (!ts.isTypeAliasDeclaration(s)) return;
    const t = checker.getTypeAtLocation(s.name);
    if (t.flags & ts.TypeFlags.Any) throw new Error(`cannot resolve the types of ${specs[i]}`);
    types.set(specs[i]!, t);
  });

  function walk(value: unknown, type: ts.Type, at: string, out: string[]): void {
    if (value === null || typeof value !== 'object') return;
    type = checker.getNonNullableType(type);
    const candidates = type.isUnion() ? type.types : [type];
    if (Array.isArray(value)) {
      const arr = candidates.find((t) => checker.isArrayType(t)) as ts.TypeReference | undefined;
      const el = arr && checker.getTypeArguments(arr)[0];
      if (el) value.forEach((v, i) => walk(v, el, `${at}[${i}]`, out));
      return;
    }
    const obj = candidates.find((t) => t.flags & ts.TypeFlags.Object && !checker.isArrayType(t));
    if (!obj) return; // e.g. an object where a string belongs: the schema reports that
    const index = checker.getIndexTypeOfType(obj, ts.IndexKind.String);
    for (const [key, v] of Object.entries(value)) {
      const prop = checker.getPropertyOfType(obj, key);
      if (prop) walk(v, checker.getTypeOfSymbol(prop), `${at}.${key}`, out);
      else if (index) walk(v, index, `${at}.${key}`, out);
      else out.push(`${at}.${key}`);
    }
  }
  return (m) => {
    const out: string[] = [];
    walk(m, types.get(modulePath(m))!, id(m), out);
    return out;
  };
}

// --- helpers for the checks -----------------------------------------------------------------

/** Bytes of a memory quantity (`512Mi`, `1G`, `268435456`). */
function bytes(q: string | number | undefined): number {
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(q ?? ''));
  if (!match) return NaN;
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 }[match[2] ?? ''] ?? 1;
  return Number(match[1]) * unit;
}

/** Millicores of a CPU quantity (`250m`, `1`, `0.5`). */
function millicores(q: string | number | undefined): number {
  const s = String(q ?? '');
  return s.endsWith('m') ? Number(s.slice(0, -1)) : Number(s) * 1000;
}

/** Names that hold secrets: values for these may only come from a Secret. */
const looksSecret = (name: string) => /SECRET|PASSWORD|PASSWD|TOKEN|KEY|CREDENTIAL/i.test(name) && !/_(ENDPOINT|SCOPE|FILE)$/.test(name);

const matches = (selector: Record<string, string> | undefined, labels: Record<string, string> | undefined) =>
  !!selector && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels?.[k] === v);

// --- the tests ------------------------------------------------------------------------------

let kustomization: Kustomization;
let rendered: Manifest[];
const find = <T>(kind: string, name: string): T => {
  const m = rendered.find((r) => r.kind === kind && r.metadata.name === name);
  expect(m, `${kind}/${name}`).toBeDefined();
  return m as T;
};

beforeAll(() => {
  const docs = readYaml(path.join(base, 'kustomization.yaml'));
  expect(docs).toHaveLength(1);
  kustomization = docs[0] as Kustomization;
  rendered = render(kustomization);
});

describe('deploy/kubernetes: the kustomize base', () => {
  it('is a Kustomization that uses only what this renderer (and kustomize) does, and holds no secret', () => {
    expect(kustomization.apiVersion).toBe('kustomize.config.k8s.io/v1beta1');
    expect(kustomization.kind).toBe('Kustomization');
    expect(Object.keys(kustomization).filter((k) => !SUPPORTED.has(k))).toEqual([]);
    // No secretGenerator (it holds the values), no generators at all.
    expect(kustomization).not.toHaveProperty('secretGenerator');
    for (const l of kustomization.labels ?? []) {
      expect(Object.keys(l).filter((k) => !['pairs', 'includeSelectors'].includes(k))).toEqual([]);
      expect(l.includeSelectors ?? false).toBe(false); // selectors are immutable once applied
    }
  });

  it('lists exactly the manifests present, each a local file that exists', () => {
    const files = readdirSync(base).filter((f) => /\.ya?ml$/.test(f) && !/^kustomization\.ya?ml$/.test(f));
    expect([...kustomization.resources].sort()).toEqual(files.sort());
    expect(new Set(kustomization.resources).size).toBe(kustomization.resources.length);
    for (const r of kustomization.resources) {
      expect(r, 'a local file, not a URL or a directory').not.toMatch(/^[a-z]+:\/\/|^\/|\.\./);
      expect(existsSync(path.join(base, r)) && statSync(path.join(base, r)).isFile(), r).toBe(true);
    }
  });

  it('renders the objects this deployment needs, each once', () => {
    expect(rendered.map(id).sort()).toEqual(
      [
        'ConfigMap/token-gateway',
        'Deployment/token-gateway',
        'HorizontalPodAutoscaler/token-gateway',
        'NetworkPolicy/token-gateway',
        'NetworkPolicy/token-gateway-redis',
        'PodDisruptionBudget/token-gateway',
        'Service/token-gateway',
        'Service/token-gateway-redis',
        'StatefulSet/token-gateway-redis',
      ].sort(),
    );
    for (const m of rendered) expect(m.metadata).not.toHaveProperty('namespace'); // the base takes the one it is applied to
  });

  it.skipIf(!hasKubectl())('renders as `kubectl kustomize` does', () => {
    const out = execFileSync('kubectl', ['kustomize', base], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
    const theirs = parseAllDocuments(out).map((d) => d.toJS() as Manifest);
    const byId = (list: Manifest[]) => Object.fromEntries(list.map((m) => [id(m), m]));
    expect(byId(rendered)).toEqual(byId(theirs));
  });
});

describe('deploy/kubernetes: every manifest against the Kubernetes schemas', () => {
  it('validates with kubernetes-models', async () => {
    const errors = (await Promise.all(rendered.map(schemaErrors))).filter(Boolean);
    expect(errors).toEqual([]);
  });

  it('has no field the API server would reject as unknown', () => {
    const unknown = unknownFieldFinder(rendered);
    expect(rendered.flatMap(unknown)).toEqual([]);
  });

  it('names only the objects it ships, or optional ones the operator creates', () => {
    const gw = find<IDeployment>('Deployment', 'token-gateway');
    const redis = find<IStatefulSet>('StatefulSet', 'token-gateway-redis');
    const pods = rendered.flatMap((m) => podTemplates(m).map((t) => ({ owner: id(m), labels: t.metadata?.labels })));
    // Every selector picks some pods, and each workload's selector its own template.
    expect(matches(gw.spec!.selector.matchLabels, gw.spec!.template.metadata!.labels)).toBe(true);
    expect(matches(redis.spec!.selector.matchLabels, redis.spec!.template.metadata!.labels)).toBe(true);
    expect(matches(gw.spec!.selector.matchLabels, redis.spec!.template.metadata!.labels)).toBe(false);
    for (const s of rendered.filter((m) => m.kind === 'Service') as unknown as IService[]) {
      expect(pods.filter((p) => matches(s.spec!.selector, p.labels)), `Service ${s.metadata!.name}`).toHaveLength(1);
    }
    for (const n of rendered.filter((m) => m.kind === 'NetworkPolicy') as unknown as INetworkPolicy[]) {
      expect(pods.filter((p) => matches(n.spec!.podSelector.matchLabels, p.labels)), `NetworkPolicy ${n.metadata!.name}`).toHaveLength(1);
    }
    const pdb = find<IPodDisruptionBudget>('PodDisruptionBudget', 'token-gateway');
    expect(matches(pdb.spec!.selector!.matchLabels, gw.spec!.template.metadata!.labels)).toBe(true);
    expect(redis.spec!.serviceName).toBe('token-gateway-redis');
    expect(find<IService>('Service', 'token-gateway-redis').spec!.clusterIP).toBe('None');
    // ConfigMaps and Secrets the pods use: shipped here, or marked optional.
    const shipped = new Set(rendered.filter((m) => m.kind === 'ConfigMap').map((m) => m.metadata.name));
    for (const t of [gw.spec!.template, redis.spec!.template]) {
      for (const v of t.spec!.volumes ?? []) {
        if (v.configMap && !shipped.has(v.configMap.name!)) expect(v.configMap.optional, v.name).toBe(true);
        if (v.secret) expect(v.secret.optional, v.name).toBe(true);
      }
      for (const c of containersOf(t)) {
        for (const e of c.envFrom ?? []) {
          if (e.configMapRef && !shipped.has(e.configMapRef.name!)) expect(e.configMapRef.optional).toBe(true);
          if (e.secretRef) expect(e.secretRef.optional).toBe(true);
        }
        for (const e of c.env ?? []) {
          const ref = e.valueFrom?.configMapKeyRef;
          if (ref && !shipped.has(ref.name!)) expect(ref.optional, e.name).toBe(true);
        }
      }
    }
  });
});

describe('deploy/kubernetes: security and availability', () => {
  const gateway = () => find<IDeployment>('Deployment', 'token-gateway');
  const gatewayContainer = () => gateway().spec!.template.spec!.containers.find((c) => c.name === 'gateway')!;
  const settings = () => find<IConfigMap>('ConfigMap', 'token-gateway').data!;
  const workloads = () => rendered.filter((m) => m.kind === 'Deployment' || m.kind === 'StatefulSet');

  it('runs at least two gateway replicas: the Deployment, or the autoscaler that owns its count', () => {
    const d = gateway();
    const hpa = find<IHorizontalPodAutoscaler>('HorizontalPodAutoscaler', 'token-gateway');
    expect(hpa.spec!.scaleTargetRef).toMatchObject({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'token-gateway' });
    expect(hpa.spec!.minReplicas).toBeGreaterThanOrEqual(2);
    expect(hpa.spec!.maxReplicas).toBeGreaterThan(hpa.spec!.minReplicas!);
    expect(hpa.spec!.metrics).toContainEqual(
      expect.objectContaining({ type: 'Resource', resource: expect.objectContaining({ name: 'cpu', target: expect.objectContaining({ type: 'Utilization' }) }) }),
    );
    if (d.spec!.replicas !== undefined) expect(d.spec!.replicas).toBeGreaterThanOrEqual(2);
    // A rollout never drops below the running count, and a drain takes one pod at a time.
    expect(d.spec!.strategy?.rollingUpdate?.maxUnavailable).toBe(0);
    const pdb = find<IPodDisruptionBudget>('PodDisruptionBudget', 'token-gateway').spec!;
    expect(pdb.maxUnavailable === 1 || pdb.minAvailable === 1).toBe(true);
  });

  it('runs every pod non-root, read-only, without privilege escalation or capabilities, under RuntimeDefault seccomp', () => {
    for (const w of workloads()) {
      for (const t of podTemplates(w)) {
        const pod = t.spec!;
        expect(pod.securityContext?.runAsNonRoot, id(w)).toBe(true);
        expect(pod.securityContext?.seccompProfile?.type, id(w)).toBe('RuntimeDefault');
        expect(pod.hostNetwork ?? false).toBe(false);
        expect(pod.hostPID ?? false).toBe(false);
        expect(pod.hostIPC ?? false).toBe(false);
        expect(pod.automountServiceAccountToken, id(w)).toBe(false);
        expect((pod.volumes ?? []).filter((v) => v.hostPath)).toEqual([]);
        for (const c of containersOf(t)) {
          const sc = c.securityContext ?? {};
          const where = `${id(w)} ${c.name}`;
          expect(sc.runAsNonRoot ?? pod.securityContext?.runAsNonRoot, where).toBe(true);
          expect(sc.runAsUser ?? pod.securityContext?.runAsUser, where).toBeGreaterThan(0);
          expect(sc.allowPrivilegeEscalation, where).toBe(false);
          expect(sc.readOnlyRootFilesystem, where).toBe(true);
          expect(sc.privileged ?? false, where).toBe(false);
          expect(sc.capabilities?.drop, where).toContain('ALL');
          expect(sc.capabilities?.add ?? [], where).toEqual([]);
        }
      }
    }
    // The image's `node` user (Dockerfile: USER node, uid 1000).
    const gw = gateway().spec!.template.spec!;
    expect(gatewayContainer().securityContext?.runAsUser ?? gw.securityContext?.runAsUser).toBe(1000);
  });

  it('gives a read-only root filesystem the writable places it needs', () => {
    const pod = gateway().spec!.template.spec!;
    const c = gatewayContainer();
    const volumeAt = (dir: string) => {
      const mount = (c.volumeMounts ?? []).find((m) => m.mountPath === dir);
      expect(mount, `a volume at ${dir}`).toBeDefined();
      return pod.volumes!.find((v) => v.name === mount!.name)!;
    };
    expect(volumeAt('/tmp').emptyDir).toBeDefined();
    // Broker mode: the audit log's directory is writable, the policy comes from a ConfigMap.
    expect(volumeAt(path.posix.dirname(settings().AUDIT_LOG!)).emptyDir).toBeDefined();
    const policy = volumeAt(path.posix.dirname(settings().POLICY_FILE!));
    expect(policy.configMap?.optional).toBe(true);
    expect(policy.configMap?.items ?? [{ key: 'policy.cedar', path: 'policy.cedar' }]).toContainEqual(
      expect.objectContaining({ path: path.posix.basename(settings().POLICY_FILE!) }),
    );
    // Redis writes only to its data volume (a volumeClaimTemplate or a pod volume).
    const redis = find<IStatefulSet>('StatefulSet', 'token-gateway-redis').spec!;
    const data = redis.template.spec!.containers[0]!.volumeMounts!.find((m) => m.mountPath === '/data');
    expect(data).toBeDefined();
    const claims = (redis.volumeClaimTemplates ?? []).map((v) => v.metadata!.name);
    const volumes = (redis.template.spec!.volumes ?? []).map((v) => v.name);
    expect([...claims, ...volumes]).toContain(data!.name);
  });

  it('probes /health (liveness) and /ready (readiness) on the named port 4000', () => {
    const c = gatewayContainer();
    expect(c.ports).toContainEqual(expect.objectContaining({ name: 'http', containerPort: 4000 }));
    expect(Number(settings().PORT)).toBe(4000);
    expect(settings().HOST).toBe('0.0.0.0');
    expect(c.livenessProbe?.httpGet).toMatchObject({ path: '/health', port: 'http' });
    expect(c.readinessProbe?.httpGet).toMatchObject({ path: '/ready', port: 'http' });
    if (c.startupProbe) expect(c.startupProbe.httpGet?.path).toBe('/health');
    const svc = find<IService>('Service', 'token-gateway').spec!;
    expect(svc.type ?? 'ClusterIP').toBe('ClusterIP');
    expect(svc.ports).toContainEqual(expect.objectContaining({ port: 80, targetPort: 'http' }));
    const redis = find<IStatefulSet>('StatefulSet', 'token-gateway-redis').spec!.template.spec!.containers[0]!;
    expect(redis.livenessProbe?.exec?.command?.join(' ')).toMatch(/redis-cli.*ping/);
    expect(redis.readinessProbe?.exec?.command?.join(' ')).toMatch(/redis-cli.*ping/);
  });

  it('sets resource requests and limits on every container, above the gateway\'s ~200 MB peak', () => {
    for (const w of workloads()) {
      for (const t of podTemplates(w)) {
        for (const c of containersOf(t)) {
          const r = c.resources ?? {};
          const where = `${id(w)} ${c.name}`;
          expect(millicores(r.requests?.cpu), where).toBeGreaterThan(0);
          expect(bytes(r.requests?.memory), where).toBeGreaterThan(0);
          expect(bytes(r.limits?.memory), where).toBeGreaterThanOrEqual(bytes(r.requests?.memory));
        }
      }
    }
    const r = gatewayContainer().resources!;
    expect(bytes(r.requests!.memory)).toBeGreaterThanOrEqual(200e6);
    expect(bytes(r.limits!.memory)).toBeGreaterThanOrEqual(2 * 200e6);
  });

  it('pauses in preStop, then drains within SHUTDOWN_GRACE_MS, all before terminationGracePeriodSeconds', () => {
    const pod = gateway().spec!.template.spec!;
    const preStop = gatewayContainer().lifecycle?.preStop;
    const command = preStop?.exec?.command ?? [];
    const pauseSeconds = preStop?.sleep ? preStop.sleep.seconds : /(^|\/)sleep$/.test(command[0] ?? '') ? Number(command[1]) : NaN;
    expect(pauseSeconds).toBeGreaterThan(0);
    const graceMs = Number(settings().SHUTDOWN_GRACE_MS ?? 10_000);
    expect(graceMs).toBeGreaterThan(0);
    expect(pauseSeconds * 1000 + graceMs).toBeLessThan((pod.terminationGracePeriodSeconds ?? 30) * 1000);
  });

  it('spreads the gateway pods across zones and nodes', () => {
    const t = gateway().spec!.template;
    const spread = t.spec!.topologySpreadConstraints ?? [];
    expect(spread.map((s) => s.topologyKey).sort()).toEqual(['kubernetes.io/hostname', 'topology.kubernetes.io/zone']);
    for (const s of spread) {
      expect(s.maxSkew).toBe(1);
      expect(matches(s.labelSelector?.matchLabels, t.metadata!.labels)).toBe(true);
    }
  });

  it('holds no secret value: Secrets by reference only, optional where the setting is', () => {
    for (const m of rendered) {
      if (m.kind === 'Secret') {
        expect(m, id(m)).not.toHaveProperty('data');
        expect(m, id(m)).not.toHaveProperty('stringData');
      }
    }
    for (const w of workloads()) {
      for (const t of podTemplates(w)) {
        for (const c of containersOf(t)) {
          for (const e of c.env ?? []) {
            if (looksSecret(e.name)) {
              expect(e, `${id(w)} ${c.name} env ${e.name}`).not.toHaveProperty('value');
              expect(e.valueFrom?.secretKeyRef, `${id(w)} ${c.name} env ${e.name}`).toBeDefined();
            }
          }
          expect([...(c.args ?? []), ...(c.command ?? [])].filter((a) => /pass(word)?|requirepass/i.test(a))).toEqual([]);
        }
      }
    }
    for (const cm of rendered.filter((m) => m.kind === 'ConfigMap') as unknown as IConfigMap[]) {
      expect(Object.keys(cm.data ?? {}).filter(looksSecret), cm.metadata!.name).toEqual([]);
      // No credentials inside a URL either (a managed Redis's REDIS_URL goes in the Secret).
      for (const [k, v] of Object.entries(cm.data ?? {})) {
        for (const url of v.match(/\b[a-z][a-z0-9+.-]*:\/\/[^\s,]+/g) ?? []) {
          const u = new URL(url);
          expect(u.username + u.password, `${cm.metadata!.name} ${k}`).toBe('');
        }
      }
    }
    const env = Object.fromEntries((gatewayContainer().env ?? []).map((e) => [e.name, e]));
    for (const name of ['CURSOR_SECRET', 'IDAAS_CLIENT_SECRET', 'AUDIT_HMAC_KEY']) {
      expect(env[name]?.valueFrom?.secretKeyRef, name).toMatchObject({ key: name, optional: true });
    }
    expect(gatewayContainer().envFrom).toContainEqual({ configMapRef: { name: 'token-gateway' } });
  });

  it('carries gateway settings that the gateway accepts, shares state through the Redis it ships, and runs off the emulator', () => {
    const data = settings();
    // Every key is a setting the gateway reads (REDIS_URL: issue 12, until src/ reads it).
    const sources = readdirSync(path.join(root, 'src'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .map((f) => readFileSync(path.join(root, 'src', f), 'utf8'))
      .join('\n');
    const announced = new Set(['REDIS_URL']);
    expect(Object.keys(data).filter((k) => !announced.has(k) && !new RegExp(`\\b${k}\\b`).test(sources))).toEqual([]);
    const config = loadConfig({ ...data });
    expect(config.emulator.enabled).toBe(false);
    expect(config.host).toBe('0.0.0.0');
    expect(config.port).toBe(4000);
    const redis = new URL(data.REDIS_URL!);
    expect(redis.protocol).toBe('redis:');
    const redisService = find<IService>('Service', redis.hostname).spec!;
    expect(redisService.ports!.map((p) => p.port)).toContain(Number(redis.port || 6379));
    const redisPod = find<IStatefulSet>('StatefulSet', redis.hostname).spec!;
    expect(redisPod.template.spec!.containers[0]!.image).toMatch(/^redis:7/);
  });

  it('lets in only port 4000, and out only DNS, Redis and HTTPS', () => {
    const np = find<INetworkPolicy>('NetworkPolicy', 'token-gateway').spec!;
    expect(np.policyTypes?.sort()).toEqual(['Egress', 'Ingress']);
    for (const rule of np.ingress ?? []) {
      expect(rule.ports?.map((p) => p.port)).toEqual(['http']);
      expect(rule.from?.length).toBeGreaterThan(0); // never "from anywhere"
    }
    const egressPorts = (np.egress ?? []).flatMap((r) => (r.ports ?? [{ port: 'any' }]).map((p) => p.port));
    expect([...new Set(egressPorts)].sort()).toEqual([53, 443, 6379].sort());
    const redis = find<INetworkPolicy>('NetworkPolicy', 'token-gateway-redis').spec!;
    expect(redis.ingress?.flatMap((r) => r.from ?? [])).toEqual([
      { podSelector: { matchLabels: gateway().spec!.selector.matchLabels } },
    ]);
  });
});

function hasKubectl(): boolean {
  try {
    execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore', timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
}
