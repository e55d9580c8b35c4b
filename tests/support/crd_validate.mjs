#!/usr/bin/env node
// Validate Kubernetes custom resources against their CRD's openAPIV3Schema, the way the
// API server's structural schema sees them. Unknown fields are ERRORS here: the API server
// would silently prune them, so a webhook mutation that writes one is lost.
// usage: node crd_validate.mjs ORACLE_NODE_MODULES CRD_DIR FILE.json|FILE.yaml...
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const [nodeModules, crdDir, ...inputs] = process.argv.slice(2);
if (!nodeModules || !crdDir || inputs.length === 0) {
  console.error('usage: node crd_validate.mjs ORACLE_NODE_MODULES CRD_DIR FILE.json|FILE.yaml...');
  process.exit(2);
}
// The script lives outside that node_modules, so resolve the packages from there.
const req = createRequire(path.join(path.resolve(nodeModules), 'x.js'));
let Ajv, addFormats, YAML;
try {
  const a = req('ajv'); Ajv = a.default || a;
  const f = req('ajv-formats'); addFormats = f.default || f;
  YAML = req('yaml');
} catch (e) { console.error(`cannot load ajv/ajv-formats/yaml from ${nodeModules}: ${e.message}`); process.exit(2); }

const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);
// Formats whose meaning is the same for ajv-formats and the API server; others (duration,
// uri, quantity...) differ or are unknown there, so they are not checked.
const FORMATS = new Set(['int32', 'int64', 'float', 'double', 'date-time', 'uuid', 'ipv4', 'ipv6']);
// Value keywords copied unchanged into the JSON Schema.
const COPY = ['required', 'enum', 'pattern', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum',
  'multipleOf', 'minLength', 'maxLength', 'minItems', 'maxItems', 'uniqueItems', 'minProperties', 'maxProperties'];
const ANY_OBJECT = { type: 'object' };

function goRegexOk(p) { try { new RegExp(p, 'u'); return true; } catch { return false; } }

// OpenAPI v3 (structural) -> JSON Schema. `junctor` is true inside allOf/anyOf/oneOf/not:
// those only add value checks, so they must not close objects to unknown fields.
// `member` is true for an object's field values: the API server drops (or defaults) a null
// there even when not nullable (PruneNonNullableNullsWithoutDefaults), so null is accepted.
function convert(s, { top = false, junctor = false, member = false } = {}) {
  if (s === true || s === false) return s;
  if (!s || typeof s !== 'object') return {};
  const out = {};
  for (const k of COPY) if (k in s) out[k] = s[k];
  // OpenAPI 3.0 uses boolean exclusiveMinimum/Maximum; JSON Schema draft 7 wants numbers.
  for (const [ex, lim] of [['exclusiveMinimum', 'minimum'], ['exclusiveMaximum', 'maximum']]) {
    if (typeof s[ex] === 'boolean') { delete out[ex]; if (s[ex] && lim in s) { out[ex] = s[lim]; delete out[lim]; } }
  }
  if ('pattern' in out && !goRegexOk(out.pattern)) delete out.pattern; // RE2-only syntax: skip
  if (s.format && FORMATS.has(s.format)) out.format = s.format;
  const nullable = s.nullable === true || member;
  if (s['x-kubernetes-int-or-string']) out.type = ['integer', 'string'];
  else if (s.type) out.type = s.type;
  if (nullable && out.type) out.type = [].concat(out.type, 'null');
  if (nullable && out.enum) out.enum = [...out.enum, null];
  for (const j of ['allOf', 'anyOf', 'oneOf']) {
    if (!Array.isArray(s[j])) continue;
    // int-or-string's anyOf [{type: integer}, {type: string}] only repeats `type`; skip it for clearer errors.
    if (s['x-kubernetes-int-or-string'] && s[j].every(x => Object.keys(x).join() === 'type')) continue;
    out[j] = s[j].map(x => convert(x, { junctor: true }));
  }
  if (nullable && out.anyOf) out.anyOf.push({ type: 'null' });
  if (nullable && out.oneOf) out.oneOf.push({ type: 'null' });
  if (s.not) out.not = convert(s.not, { junctor: true });
  if (s.items) out.items = Array.isArray(s.items) ? s.items.map(x => convert(x, { junctor })) : convert(s.items, { junctor });
  const props = {};
  for (const [k, v] of Object.entries(s.properties || {})) props[k] = convert(v, { junctor, member: true });
  // Embedded resources and the top level always accept apiVersion/kind/metadata;
  // metadata is ObjectMeta, which the CRD schema does not describe.
  if (top || s['x-kubernetes-embedded-resource']) {
    props.apiVersion ??= { type: 'string' };
    props.kind ??= { type: 'string' };
    props.metadata = ANY_OBJECT;
  }
  if (Object.keys(props).length) out.properties = props;
  const preserve = s['x-kubernetes-preserve-unknown-fields'] === true;
  if (s.additionalProperties !== undefined) out.additionalProperties = convert(s.additionalProperties, { junctor, member: true });
  else if (!preserve && !junctor && (s.type === 'object' || top || s.properties)) out.additionalProperties = false;
  return out;
}

// Index CRDs by group/version/kind; compile each schema lazily (some are large).
const crds = new Map();
let crdFiles;
try { crdFiles = fs.readdirSync(crdDir).filter(f => /\.(ya?ml|json)$/.test(f)); }
catch (e) { console.error(`cannot read CRD_DIR ${crdDir}: ${e.message}`); process.exit(2); }
for (const f of crdFiles) {
  let docs;
  try {
    const text = fs.readFileSync(path.join(crdDir, f), 'utf8');
    docs = f.endsWith('.json') ? [JSON.parse(text)] : YAML.parseAllDocuments(text).map(d => d.toJS());
  }
  catch (e) { console.error(`cannot read CRD ${f}: ${e.message}`); process.exit(2); }
  for (const crd of docs) {
    if (crd?.kind !== 'CustomResourceDefinition') continue;
    for (const v of crd.spec.versions || []) {
      crds.set(`${crd.spec.group}/${v.name}/${crd.spec.names.kind}`,
        { file: f, served: v.served !== false, schema: v.schema?.openAPIV3Schema, validate: null });
    }
  }
}

function errorText(e) {
  const where = e.instancePath || '/';
  if (e.keyword === 'additionalProperties') return `${where}: unknown field '${e.params.additionalProperty}'`;
  // Null is implicitly allowed for field values (see `member`); do not list it as a type.
  if (e.keyword === 'type') return `${where}: must be ${[].concat(e.params.type).filter(t => t !== 'null').join(' or ')}`;
  if (e.keyword === 'enum') return `${where}: ${e.message} ${JSON.stringify(e.params.allowedValues.filter(v => v !== null))}`;
  return `${where}: ${e.message}`;
}

function check(obj) {
  const apiVersion = obj?.apiVersion, kind = obj?.kind;
  const res = { ok: false, apiVersion, kind, name: obj?.metadata?.name ?? obj?.metadata?.generateName, errors: [] };
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') { res.errors.push('/: missing apiVersion or kind'); return res; }
  const slash = apiVersion.lastIndexOf('/');
  const group = slash < 0 ? '' : apiVersion.slice(0, slash), version = apiVersion.slice(slash + 1);
  // Built-in groups ("", apps, batch...) have no dot and are not custom resources.
  if (!group.includes('.')) return { ...res, ok: true, status: 'not-a-custom-resource' };
  const c = crds.get(`${group}/${version}/${kind}`);
  if (!c) { res.errors.push(`no CRD for ${apiVersion} ${kind}`); return res; }
  if (!c.served) { res.errors.push(`version ${version} of ${kind} is not served`); return res; }
  if (!c.validate) c.validate = ajv.compile(c.schema ? convert(c.schema, { top: true }) : {});
  if (c.validate(obj)) res.ok = true;
  else res.errors = [...new Set(c.validate.errors.map(errorText))];
  return res;
}

// An AdmissionReview carries the object in request.object (response.patch is not applied).
const unwrap = o => (o?.kind === 'AdmissionReview' && o.request?.object ? o.request.object : o);

let failed = false;
for (const file of inputs) {
  let docs;
  try {
    const text = fs.readFileSync(file, 'utf8');
    if (file.endsWith('.json')) docs = [JSON.parse(text)];
    else {
      const parsed = YAML.parseAllDocuments(text);
      const bad = parsed.find(d => d.errors.length);
      if (bad) throw new Error(bad.errors[0].message);
      docs = parsed.map(d => d.toJS());
    }
  } catch (e) { console.error(`cannot read ${file}: ${e.message}`); process.exit(2); }
  docs.forEach((d, i) => {
    if (d === null || d === undefined) return; // empty YAML document
    const r = check(unwrap(d));
    if (!r.ok) failed = true;
    console.log(JSON.stringify({ ok: r.ok, file, doc: i, apiVersion: r.apiVersion, kind: r.kind, name: r.name,
      ...(r.status ? { status: r.status } : {}), errors: r.errors }));
  });
}
process.exit(failed ? 1 : 0);
