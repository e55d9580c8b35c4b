// The webhooks' matchConditions, evaluated by an independent CEL implementation on every golden
// request: the API server skips the call where a condition is false, so a condition that is false
// for a request gpu-admit would have patched loses that mutation in a cluster without any error
// (DRA and KAI pods did, until the condition learnt them). Also: the condition is true for GPU
// pods of each kind and false for a plain CPU pod, so the test can fail both ways.
//   node tests/match_conditions.mjs BUILD SOURCE
import fs from 'fs';
import path from 'path';
import { createRequire } from 'module';
import { pathToFileURL } from 'url';

const [build, source] = process.argv.slice(2);
// From the build folder's installs: the CEL evaluator (tests/cel) and the oracle's YAML parser.
const from = (dir) => createRequire(path.resolve(build, dir, 'node_modules', 'x.js'));
for (const dir of ['cel', 'oracle'])
  if (!fs.existsSync(path.join(build, dir, 'node_modules'))) {
    console.error(`${path.join(build, dir)} is not installed: run scripts/setup.sh`);
    process.exit(1);
  }
const { evaluate } = await import(pathToFileURL(from('cel').resolve('@marcbachmann/cel-js')).href);
const YAML = await import(pathToFileURL(from('oracle').resolve('yaml')).href);

const configs = YAML.parseAllDocuments(fs.readFileSync(path.join(source, 'manifests/base/webhooks.yaml'), 'utf8'))
  .map((d) => d.toJS());
const mutating = configs.find((c) => c.kind === 'MutatingWebhookConfiguration');
let failures = 0, checked = 0, skipped = 0;
const fail = (message) => { console.error(`not ok ${message}`); ++failures; };

// The webhook whose rules match the request, as the API server picks it.
function webhookFor(config, request) {
  return config.webhooks.find((hook) => hook.rules.some((rule) =>
    rule.apiGroups.includes(request.resource.group) && rule.resources.includes(request.resource.resource) &&
    (rule.operations.includes(request.operation) || rule.operations.includes('*'))));
}

function conditionsHold(hook, request) {
  return (hook.matchConditions || []).every((c) =>
    evaluate(c.expression, { object: request.object, oldObject: request.oldObject, request }) === true);
}

for (const name of fs.readdirSync(path.join(source, 'tests/golden')).sort()) {
  const dir = path.join(source, 'tests/golden', name);
  if (!fs.existsSync(path.join(dir, 'request.json'))) continue;
  let review;
  try { review = JSON.parse(fs.readFileSync(path.join(dir, 'request.json'), 'utf8')); } catch { ++skipped; continue; }
  const request = review && review.request;
  // The API server sends only objects: a golden case of another shape tests gpu-admit, not this.
  if (!request || !request.resource || !request.object || typeof request.object !== 'object' ||
      Array.isArray(request.object)) { ++skipped; continue; }
  const hook = webhookFor(mutating, request);
  if (!hook) { ++skipped; continue; }
  const expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8'));
  const patched = Array.isArray(expected.decodedPatch) && expected.decodedPatch.length > 0;
  let holds;
  try { holds = conditionsHold(hook, request); } catch (error) { fail(`${name}: the condition fails to evaluate: ${error.message}`); continue; }
  ++checked;
  if (patched && !holds) fail(`${name}: gpu-admit patches it, but ${hook.name}'s matchConditions skip the call`);
}

// Both ways, on small objects of each shape the condition reads.
const gpu = { resources: { limits: { 'nvidia.com/gpu': '1' } } };
const pod = (spec, metadata = {}) => ({ metadata, spec });
const shapes = {
  Pod: (p) => ({ kind: 'Pod', ...p }),
  Deployment: (p) => ({ kind: 'Deployment', spec: { template: p } }),
  CronJob: (p) => ({ kind: 'CronJob', spec: { jobTemplate: { spec: { template: p } } } }),
  PodTemplate: (p) => ({ kind: 'PodTemplate', template: p }),
};
const hook = mutating.webhooks[0];
for (const [kind, wrap] of Object.entries(shapes)) {
  const cases = [
    [true, 'a GPU container', pod({ containers: [gpu] })],
    [true, 'a GPU init container', pod({ containers: [{ name: 'c' }], initContainers: [gpu] })],
    [true, 'a DRA claim', pod({ containers: [{ name: 'c' }], resourceClaims: [{ name: 'g' }] })],
    [true, 'a KAI fraction', pod({ containers: [{ name: 'c' }] }, { annotations: { 'gpu-fraction': '0.5' } })],
    [true, 'a toleration of every taint', pod({ containers: [{ name: 'c' }], tolerations: [{ operator: 'Exists' }] })],
    [true, 'a GPU nodeSelector', pod({ containers: [{ name: 'c' }], nodeSelector: { 'nvidia.com/gpu.present': 'true' } })],
    [false, 'a CPU pod', pod({ containers: [{ name: 'c', resources: { limits: { cpu: '1' } } }],
                             tolerations: [{ key: 'dedicated', operator: 'Exists' }], nodeSelector: { pool: 'cpu' } },
                           { annotations: { a: 'b' } })],
  ];
  for (const [want, what, p] of cases) {
    const request = { operation: 'CREATE', object: wrap(p) };
    let got;
    try { got = conditionsHold(hook, request); } catch (error) { got = `error: ${error.message}`; }
    if (got !== want) fail(`${kind} with ${what}: matchConditions give ${got}, want ${want}`);
    ++checked;
  }
}

console.log(`${checked} requests checked against the matchConditions, ${skipped} golden cases not for this webhook`);
process.exit(failures ? 1 : 0);
