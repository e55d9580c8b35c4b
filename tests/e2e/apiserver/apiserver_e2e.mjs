// The end-to-end suite behind a real kube-apiserver (v1.20.2, ../shared/tools/kube-apiserver):
// the shipped manifests installed as rendered, gpu-admit serving the API server's calls with
// the shipped ServiceAccount's token, and every golden case and example created through the API
// server, whose own JSON Patch library, defaulting, validation, warnings, failure policies and
// reinvocation are the ones a cluster runs.
//
//   node tests/e2e/apiserver/apiserver_e2e.mjs BUILD_DIR SOURCE_DIR SHARED_DIR
//
// Prints one line per check ("ok" or "FAIL" with the difference) and exits 1 when any failed.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import https from "node:https";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";

import { crdForV120, freePort, laggingProxy, renderBase, startControlPlane } from "./control_plane.mjs";

const [build, source, shared] = process.argv.slice(2).map((p) => path.resolve(p));
if (!shared) { console.error("usage: apiserver_e2e.mjs BUILD_DIR SOURCE_DIR SHARED_DIR"); process.exit(2); }
for (const [tool, pkg] of [["etcd", "etcd-server"], ["kubectl", "kubernetes-client"]]) {
  if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) {
    console.error(`FAIL ${tool} is not installed: scripts/setup.sh installs ${pkg}`);
    process.exit(1);
  }
}
// The oracle's pinned packages: a standard RFC 6902 implementation and a YAML parser.
const oracleRequire = createRequire(path.join(build, "oracle", "package.json"));
const jsonpatch = oracleRequire("fast-json-patch");
const YAML = oracleRequire("yaml");

let failures = 0;
function check(condition, what, detail = "") {
  if (condition) console.log(`ok   ${what}`);
  else { failures++; console.log(`FAIL ${what}${detail ? `\n     ${detail.replace(/\n/g, "\n     ")}` : ""}`); }
  return condition;
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), "gpuadmit-apiserver-e2e-"));
const kube = startControlPlane(shared, path.join(work, "kube"));
let webhook = null;
let sidecar = null;
let lag = null;
const auditReplicas = [];
function cleanup() {
  webhook?.kill();
  for (const replica of auditReplicas) replica.kill();
  sidecar?.close();
  lag?.close();
  kube.stop();
  if (!failures) fs.rmSync(work, { recursive: true, force: true });
  else console.log(`# kept ${work} (API server and webhook logs)`);
}
process.on("exit", cleanup);
process.on("SIGINT", () => process.exit(130));
process.on("SIGTERM", () => process.exit(143));

const kubectl = (args, input) => spawnSync("kubectl", ["--kubeconfig", kube.kubeconfig, ...args],
                                           { input, encoding: "utf8" });
const clone = (x) => JSON.parse(JSON.stringify(x));

// ---- The webhook process -------------------------------------------------------------------
execFileSync(path.join(source, "certs", "make-dev-certs.sh"), [path.join(work, "certs")], { stdio: "ignore" });
const certs = (name) => path.join(work, "certs", name);
const caPem = fs.readFileSync(certs("ca.crt"));
const port = await freePort();  // fixed for the run: the webhook configurations name it

class Webhook {
  constructor(extraArgs, servePort = port) {
    this.port = servePort;
    this.log = fs.openSync(path.join(work, `webhook-${Date.now()}-${servePort}.log`), "w");
    this.process = spawn(path.join(build, "gpu-admit"), ["serve", "--addr", `127.0.0.1:${servePort}`,
      "--tls-cert", certs("tls.crt"), "--tls-key", certs("tls.key"), ...extraArgs],
      { stdio: ["ignore", this.log, this.log] });
    this.exited = new Promise((resolve) => this.process.on("exit", resolve));
  }
  async ready() {
    for (let i = 0; i < 150; i++) {
      if ((await get(`https://127.0.0.1:${this.port}/readyz`, caPem)) === 200) return true;
      await sleep(200);
    }
    return false;
  }
  async stop() { this.process.kill("SIGTERM"); await this.exited; }
  kill() { this.process.kill("SIGKILL"); }
  // SIGSTOP, and then wait until every thread is stopped: kill() returns once the signal is
  // sent, and a thread stops only when it next runs. Once (CI, 2026-12-07) a review that began
  // right after the kill was answered at once. False if some thread has not stopped in 5 s.
  async freeze() {
    this.process.kill("SIGSTOP");
    const tasks = `/proc/${this.process.pid}/task`;
    const state = (tid) => {
      try { return fs.readFileSync(`${tasks}/${tid}/stat`, "utf8").replace(/^.*\) /s, "")[0]; } catch { return "T"; }
    };
    for (const deadline = Date.now() + 5000; Date.now() < deadline; await sleep(10))
      if (fs.readdirSync(tasks).every((tid) => state(tid) === "T")) return true;
    return false;
  }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function get(url, ca) {
  return new Promise((resolve) => {
    https.get(url, { ca, timeout: 2000 }, (res) => { res.resume(); resolve(res.statusCode); })
      .on("error", () => resolve(0)).on("timeout", function () { this.destroy(); });
  });
}

// The sample cluster goes in first, before any webhook can judge its pods.
const clusterFile = path.join(source, "manifests", "examples", "cluster.json");
await kube.loadCluster(JSON.parse(fs.readFileSync(clusterFile, "utf8")));

// ---- The operators' CRDs -------------------------------------------------------------------------
// The published CRDs of KServe, KubeRay, LWS, JobSet, Kubeflow and Volcano (tests/data/crds/), so
// custom resources reach the webhooks as in a cluster with those operators, and the API server
// itself validates and prunes each mutated one against its schema.
const customPlurals = new Map();  // "group/Kind" → plural
const crdDir = path.join(source, "tests", "data", "crds");
const crdNames = [];
for (const file of fs.readdirSync(crdDir).filter((f) => f.endsWith(".json")).sort()) {
  const crd = crdForV120(JSON.parse(fs.readFileSync(path.join(crdDir, file), "utf8")));
  await kube.call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd);
  customPlurals.set(`${crd.spec.group}/${crd.spec.names.kind}`, crd.spec.names.plural);
  crdNames.push(crd.metadata.name);
}
// The PolicyReport CRDs as shipped (manifests/policy-reports/), for the background audit (section 6).
for (const file of ["wgpolicyk8s.io_policyreports.yaml", "wgpolicyk8s.io_clusterpolicyreports.yaml"]) {
  const crd = crdForV120(YAML.parse(fs.readFileSync(path.join(source, "manifests", "policy-reports", file), "utf8")));
  await kube.call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd);
  crdNames.push(crd.metadata.name);
}
for (const name of crdNames) {
  let established = false;
  for (let i = 0; i < 100 && !established; i++) {
    const r = await kube.request("GET", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
    established = (r.body?.status?.conditions ?? []).some((c) => c.type === "Established" && c.status === "True");
    if (!established) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (!check(established, `CRD ${name} is established`)) process.exit(1);
}

// ---- What runs before gpu-admit is installed: the background audit's subject (section 6) -------
// No controller runs here, so a Deployment makes no pods: each is judged through its template.
const auditDeployment = (namespace, name, image) => ({ apiVersion: "apps/v1", kind: "Deployment",
  metadata: { name, namespace }, spec: { replicas: 2, selector: { matchLabels: { app: name } },
  template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "server", image,
    resources: { limits: { "nvidia.com/gpu": "1", cpu: "2", memory: "8Gi" } } }] } } } });
for (const ns of ["audit-e2e", "audit-e2e-gone"])
  await kube.call("POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace",
    metadata: { name: ns, labels: { "kubernetes.io/metadata.name": ns } } });
for (const [ns, name, image] of [["audit-e2e", "floating", "nvcr.io/nvidia/cuda:latest"],
                                 ["audit-e2e", "pinned", "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04"],
                                 ["audit-e2e-gone", "floating-too", "nvcr.io/nvidia/cuda:latest"]])
  await kube.call("POST", `/apis/apps/v1/namespaces/${ns}/deployments`, auditDeployment(ns, name, image));

// ---- Install as shipped --------------------------------------------------------------------
// The rendered base, applied as an operator would (control_plane.mjs's renderBase says what a
// local test changes, and why).
const { setup, webhooks } = renderBase(source, YAML, port, caPem.toString("base64"));
const install = [...setup, ...webhooks];
check(install.filter((o) => o.kind.endsWith("WebhookConfiguration")).length === 2,
      "the rendered base holds both webhook configurations");
// v1.20 labels no namespace with its name; the exclusions of kube-system and gpu-admit rely on it.
for (const ns of ["kube-system", "default"])
  await kube.call("PATCH", `/api/v1/namespaces/${ns}`, { metadata: { labels: { "kubernetes.io/metadata.name": ns } } },
                  { contentType: "application/merge-patch+json" });
const applied = kubectl(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items: install }));
if (!check(applied.status === 0, "kubectl apply of the rendered namespace, RBAC and webhook configurations", applied.stderr))
  process.exit(1);

// ---- The shipped ServiceAccount's token, and nothing more than its ClusterRole ----------------
const tokenRequest = await kube.call("POST", "/api/v1/namespaces/gpu-admit/serviceaccounts/gpu-admit/token",
  { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { expirationSeconds: 3600 } });
const saToken = tokenRequest.body.status.token;
// gpu-admit reaches the API server through a proxy that can make its watch lag (section 5).
lag = await laggingProxy(kube.port);
const saKubeconfig = kube.writeKubeconfig(path.join(work, "gpu-admit.kubeconfig"), saToken, lag.port);
for (const resource of ["nodes", "pods", "namespaces"]) {
  const r = await kube.request("GET", `/api/v1/${resource}?limit=1`, undefined, { token: saToken });
  check(r.status === 200, `the gpu-admit ServiceAccount may list ${resource}`, `${r.status} ${JSON.stringify(r.body)}`);
}
// v1.20 serves no resource.k8s.io, but the ClusterRole grants it: not served (404), not forbidden
// (403), which would keep gpu-admit unready.
for (const resource of ["resourceclaims", "resourceclaimtemplates"]) {
  const r = await kube.request("GET", `/apis/resource.k8s.io/v1/${resource}?limit=1`, undefined, { token: saToken });
  check(r.status === 404, `the gpu-admit ServiceAccount may list ${resource} (not served here: 404)`, `${r.status}`);
}
// Disruption budgets: v1.20 serves policy/v1beta1 only, so policy/v1 is not served (404, not a
// 403: the rule covers every version) and gpu-admit falls back. Priority classes at v1.
for (const [apiPath, status] of [["/apis/policy/v1beta1/poddisruptionbudgets", 200], ["/apis/policy/v1/poddisruptionbudgets", 404],
                                 ["/apis/scheduling.k8s.io/v1/priorityclasses", 200]]) {
  const r = await kube.request("GET", `${apiPath}?limit=1`, undefined, { token: saToken });
  check(r.status === status, `the gpu-admit ServiceAccount may list ${apiPath} (${status})`, `${r.status}`);
}
// The background audit's reads and writes (section 6), and no Lease outside gpu-admit's namespace.
for (const [method, apiPath, status] of [["GET", "/apis/apps/v1/deployments", 200], ["GET", "/apis/batch/v1/jobs", 200],
                                         ["GET", "/apis/wgpolicyk8s.io/v1alpha2/policyreports", 200],
                                         ["GET", "/apis/coordination.k8s.io/v1/namespaces/gpu-admit/leases/gpu-admit-audit", 404],
                                         ["GET", "/apis/coordination.k8s.io/v1/namespaces/default/leases/gpu-admit-audit", 403],
                                         ["GET", "/apis/coordination.k8s.io/v1/namespaces/gpu-admit/leases/another", 403]]) {
  const r = await kube.request(method, apiPath, undefined, { token: saToken });
  check(r.status === status, `the gpu-admit ServiceAccount: ${method} ${apiPath} (${status})`, `${r.status}`);
}
for (const [method, apiPath] of [["GET", "/api/v1/secrets"], ["GET", "/api/v1/configmaps"],
                                 ["POST", "/api/v1/namespaces/default/pods"], ["DELETE", "/api/v1/nodes/any"],
                                 ["GET", "/apis/policy/v1beta1/namespaces/default/poddisruptionbudgets/any"],
                                 ["DELETE", "/apis/scheduling.k8s.io/v1/priorityclasses/any"]]) {
  const r = await kube.request(method, apiPath, method === "POST" ? { apiVersion: "v1", kind: "Pod" } : undefined, { token: saToken });
  check(r.status === 403, `the gpu-admit ServiceAccount is refused ${method} ${apiPath}`, `${r.status}`);
}

// ---- Objects through the API server --------------------------------------------------------
const RESOURCES = {  // kind → its API path prefix and plural
  Pod: "api/v1/pods", ReplicationController: "api/v1/replicationcontrollers", PodTemplate: "api/v1/podtemplates",
  Deployment: "apis/apps/v1/deployments", ReplicaSet: "apis/apps/v1/replicasets",
  StatefulSet: "apis/apps/v1/statefulsets", DaemonSet: "apis/apps/v1/daemonsets", Job: "apis/batch/v1/jobs",
};
// `what`: a built-in kind's name, or an object (a custom resource's path comes from its CRD).
function collection(what, namespace) {
  // Autoscalers are posted in the version they are written in (v1.20 serves autoscaling/v1,
  // v2beta1 and v2beta2).
  if (typeof what === "object" && what.kind === "HorizontalPodAutoscaler")
    return `/apis/${what.apiVersion}/namespaces/${namespace}/horizontalpodautoscalers`;
  const group = typeof what === "object" ? what.apiVersion.split("/").slice(0, -1).join("/") : "";
  if (group.includes("."))
    return `/apis/${what.apiVersion}/namespaces/${namespace}/${customPlurals.get(`${group}/${what.kind}`)}`;
  const kind = typeof what === "object" ? what.kind : what;
  const parts = RESOURCES[kind].split("/");
  const plural = parts.pop();
  return `/${parts.join("/")}/namespaces/${namespace}/${plural}`;
}
// What the API server adds to every object that is not a default: identity and bookkeeping.
// A pod's tolerations are compared as a set: DefaultTolerationSeconds adds the not-ready and
// unreachable ones before the webhooks run (gpu-admit's toleration comes after them) and after
// the patched object of the dry run without webhooks (where it comes first). Order has no meaning.
function comparable(object) {
  const o = clone(object);
  for (const key of ["namespace", "uid", "resourceVersion", "creationTimestamp", "managedFields", "selfLink"])
    delete o.metadata[key];
  if (o.kind === "Pod" && o.spec?.tolerations)
    o.spec.tolerations.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  // A Job's generated selector: a new controller-uid on every create, and the labels the Job
  // strategy derives from it, which v1.20 copies to metadata only when no webhook ran.
  if (o.kind === "Job") {
    const holders = [[o.metadata, "labels"], [o.spec?.selector, "matchLabels"], [o.spec?.template?.metadata, "labels"]];
    for (const [holder, key] of holders) {
      if (!holder?.[key]) continue;
      delete holder[key]["controller-uid"];
      delete holder[key]["job-name"];
      if (!Object.keys(holder[key]).length) delete holder[key];
    }
  }
  return o;
}
const ensured = new Set(["kube-system", "default", "gpu-admit"]);
async function ensureNamespace(name) {
  if (ensured.has(name)) return;
  await kube.call("POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace",
    metadata: { name, labels: { "kubernetes.io/metadata.name": name } } }, { existsOk: true });
  ensured.add(name);
}
// The object as the API server stores it without any webhook: a dry-run create in gpu-admit,
// the namespace both webhooks exclude. Its defaults are what the real create must show too.
async function withoutWebhooks(object) {
  const o = clone(object);
  o.metadata.namespace = "gpu-admit";
  const r = await kube.request("POST", `${collection(o, "gpu-admit")}?dryRun=All`, o);
  if (r.status !== 201) throw new Error(`dry-run of the expected object: ${r.status} ${JSON.stringify(r.body).slice(0, 400)}`);
  return r.body;
}
function differences(actual, expected, where = "") {
  if (isDeepStrictEqual(actual, expected)) return [];
  if (actual && expected && typeof actual === "object" && typeof expected === "object" &&
      Array.isArray(actual) === Array.isArray(expected)) {
    const keys = new Set([...Object.keys(actual), ...Object.keys(expected)]);
    return [...keys].flatMap((k) => differences(actual[k], expected[k], `${where}/${k}`));
  }
  return [`${where || "/"}: stored ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`];
}

// Creates `object` through the webhooks (a server dry-run first) and checks the answer against
// `expected`: {allowed, patch (RFC 6902), warnings, message}.
async function admitAndCompare(label, object, expected) {
  const namespace = object.metadata.namespace;
  await ensureNamespace(namespace);
  const url = collection(object, namespace);
  const dry = await kube.request("POST", `${url}?dryRun=All`, object);
  const created = await kube.request("POST", url, object);
  const name = object.metadata.name;
  // Objects the API server refuses on its own (a quantity it cannot parse, a fractional GPU)
  // never reach the validating webhook: gpu-admit's denial is for `gpu-admit check` in CI.
  const own = await kube.request("POST", `${collection(object, "gpu-admit")}?dryRun=All`,
                                 { ...object, metadata: { ...object.metadata, namespace: "gpu-admit" } });
  if (own.status >= 400 && !expected.allowed) {
    check(created.status === own.status && dry.status === own.status,
          `${label}: refused by the API server's own validation (${own.status}), as without gpu-admit`,
          `${created.status} ${JSON.stringify(created.body?.message)}`);
    return;
  }
  if (!expected.allowed) {
    const message = String(created.body?.message ?? created.body);
    check(created.status >= 400 && /admission webhook "validate(-custom-resources)?\.gpu-admit\.io" denied the request/.test(message) &&
          message.includes(expected.message), `${label}: denied with its message`,
          `status ${created.status}: ${message}\nexpected message: ${expected.message}`);
    check(dry.status === created.status && dry.body?.message === created.body?.message,
          `${label}: --dry-run=server gives the same denial`, `${dry.status} ${JSON.stringify(dry.body?.message)}`);
  } else if (check(created.status === 201, `${label}: created`, `${created.status} ${JSON.stringify(created.body).slice(0, 600)}`)) {
    const want = await withoutWebhooks(jsonpatch.applyPatch(clone(object), clone(expected.patch)).newDocument);
    const diff = differences(comparable(created.body), comparable(want));
    check(!diff.length, `${label}: the stored object holds exactly the expected patch, and the API server's defaults`,
          diff.slice(0, 8).join("\n"));
    check(dry.status === 201 && isDeepStrictEqual(comparable(dry.body), comparable(created.body)),
          `${label}: --dry-run=server gives the same object`, differences(comparable(dry.body), comparable(created.body)).slice(0, 4).join("\n"));
  }
  const missing = expected.warnings.filter((w) => !created.warnings.includes(w));
  const extra = created.warnings.filter((w) => !expected.warnings.includes(w));
  check(!missing.length && !extra.length, `${label}: warnings reach the client`,
        `missing ${JSON.stringify(missing)}\nunexpected ${JSON.stringify(extra)}`);
  if (created.status === 201) {
    // Background: no orphan finalizer, which nothing would remove without a garbage collector.
    await kube.call("DELETE", `${url}/${name}?gracePeriodSeconds=0&propagationPolicy=Background`);
  } else {
    const stored = await kube.request("GET", `${url}/${name}`);
    check(stored.status === 404, `${label}: nothing stored`, `GET ${stored.status}`);
  }
}

// ---- 1. Every golden case the API server can send ----------------------------------------------
// Reviewed with the default config and no cluster, as tests/unit/engine/golden_test.cpp does.
// Left out, each for a reason: cases with their own config.yaml or cluster.json (one server, one
// config), operations other than CREATE (UPDATE needs the object stored first; DELETE and the
// status subresource match no rule), malformed bodies (the API server never sends them), and
// CronJobs (v1.20 serves batch/v1beta1 only, and `matchPolicy: Equivalent` finds no batch/v1 to
// convert to, so CronJobs never reach the webhook).
webhook = new Webhook([]);
if (!check(await webhook.ready(), "gpu-admit serve (no cluster) is ready")) process.exit(1);
const goldenDir = path.join(source, "tests", "golden");
let goldenRun = 0, customRun = 0;
for (const name of fs.readdirSync(goldenDir).sort()) {
  const dir = path.join(goldenDir, name);
  if (name.startsWith("malformed--") || fs.existsSync(path.join(dir, "config.yaml")) ||
      fs.existsSync(path.join(dir, "cluster.json"))) continue;
  const request = JSON.parse(fs.readFileSync(path.join(dir, "request.json"), "utf8")).request;
  const answer = JSON.parse(fs.readFileSync(path.join(dir, "expected.json"), "utf8"));
  if (request.operation !== "CREATE" || request.kind.kind === "CronJob") continue;
  const object = clone(request.object);
  object.metadata = { ...object.metadata, namespace: request.namespace };
  await admitAndCompare(`golden ${name}`, object, {
    allowed: answer.response.allowed, patch: answer.decodedPatch ?? [],
    warnings: answer.response.warnings ?? [], message: answer.response.status?.message ?? "",
  });
  goldenRun++;
  if (request.kind.group.includes(".")) customRun++;
}
check(goldenRun >= 20, `golden cases run behind the API server: ${goldenRun}`);
check(customRun >= 10, `of them custom resources, mutated through their CRDs: ${customRun}`);
await webhook.stop();

// ---- 2. Live cluster: the examples, as `gpu-admit check` judges them offline ------------------
// The sample cluster is in the API server; gpu-admit watches it with the ServiceAccount's
// token and must answer each example as `gpu-admit check --cluster cluster.json` does in CI.
// A PriorityClass and a policy/v1beta1 PodDisruptionBudget exist before gpu-admit starts.
const priorityClass = (name) => ({ apiVersion: "scheduling.k8s.io/v1", kind: "PriorityClass", metadata: { name }, value: 1000 });
const disruptionBudget = (name) => ({ apiVersion: "policy/v1beta1", kind: "PodDisruptionBudget",
  metadata: { name, namespace: "default" }, spec: { minAvailable: 1, selector: { matchLabels: { app: name } } } });
await kube.call("POST", "/apis/scheduling.k8s.io/v1/priorityclasses", priorityClass("e2e-before"));
await kube.call("POST", "/apis/policy/v1beta1/namespaces/default/poddisruptionbudgets", disruptionBudget("e2e-before"));
webhook = new Webhook(["--kubeconfig", saKubeconfig]);
if (!check(await webhook.ready(), "gpu-admit serve --kubeconfig (the ServiceAccount's token) synced and ready")) process.exit(1);
// What the watch holds equals what the API server lists (v1.20 adds two system priority classes),
// then follows creations.
const listed = async (apiPath) => (await kube.call("GET", apiPath)).body.items.length;
const watched = (kind) => metricSum((l) => l.startsWith(`gpuadmit_watch_objects{kind="${kind}"}`));
async function watchedWithin(seconds, kind, count) {
  for (const deadline = Date.now() + seconds * 1000; Date.now() < deadline; await sleep(200))
    if ((await watched(kind)) === count) return true;
  return false;
}
const budgetsPath = "/apis/policy/v1beta1/poddisruptionbudgets", classesPath = "/apis/scheduling.k8s.io/v1/priorityclasses";
let budgets = await listed(budgetsPath), classes = await listed(classesPath);
check(budgets >= 1 && await watchedWithin(5, "poddisruptionbudget", budgets),
      `watch: the policy/v1beta1 disruption budgets (${budgets}) are in the model, read after policy/v1's 404`,
      `${await watched("poddisruptionbudget")}`);
check(classes >= 3 && await watchedWithin(5, "priorityclass", classes),
      `watch: the priority classes (${classes}) are in the model`, `${await watched("priorityclass")}`);
await kube.call("POST", "/apis/scheduling.k8s.io/v1/priorityclasses", priorityClass("e2e-after"));
await kube.call("POST", "/apis/policy/v1beta1/namespaces/default/poddisruptionbudgets", disruptionBudget("e2e-after"));
check(await watchedWithin(20, "poddisruptionbudget", budgets + 1) && await watchedWithin(20, "priorityclass", classes + 1),
      "watch: a disruption budget and a priority class created later reach the model",
      `${await watched("poddisruptionbudget")} ${await watched("priorityclass")}`);
check(await metricSum((l) => l.startsWith('gpuadmit_watch_failures_total{kind="poddisruptionbudget"}')) === 0,
      "watch: the fallback to policy/v1beta1 is no failure");
// `gpu-admit watch` says where it read them. Run without blocking this process's event loop,
// which the lagging proxy of the running webhook needs; straight to the API server.
const directKubeconfig = kube.writeKubeconfig(path.join(work, "gpu-admit-direct.kubeconfig"), saToken);
const watchRun = await new Promise((resolve) => {
  const child = spawn(path.join(build, "gpu-admit"), ["watch", "--kubeconfig", directKubeconfig, "--duration", "5", "--quiet"]);
  let stdout = "", stderr = "";
  child.stdout.on("data", (c) => (stdout += c));
  child.stderr.on("data", (c) => (stderr += c));
  child.on("close", (status) => resolve({ status, stdout, stderr }));
});
const watchStatus = JSON.parse(watchRun.stdout.trim().split("\n").pop() || "{}").status ?? {};
check(watchRun.status === 0 && watchStatus.PodDisruptionBudget?.apiVersion === "policy/v1beta1" &&
      watchStatus.PodDisruptionBudget?.served === true && watchStatus.PriorityClass?.apiVersion === "scheduling.k8s.io/v1",
      "gpu-admit watch: synced, disruption budgets read at policy/v1beta1",
      `${watchRun.status} ${JSON.stringify(watchStatus.PodDisruptionBudget)} ${watchRun.stderr.slice(-600)}`);
const examplesDir = path.join(source, "manifests", "examples");
const offline = JSON.parse(spawnSync(path.join(build, "gpu-admit"),
  ["check", "-o", "json", "--cluster", clusterFile, examplesDir], { encoding: "utf8" }).stdout);
for (const verdict of offline) {
  if (verdict.kind === "CronJob") continue;  // see above: v1.20 sends no batch/v1 CronJob
  const docs = YAML.parseAllDocuments(fs.readFileSync(verdict.file, "utf8")).map((d) => d.toJS());
  const object = docs[verdict.document];
  object.metadata.namespace ??= verdict.namespace;
  await admitAndCompare(`example ${path.basename(verdict.file)}`, object, {
    allowed: verdict.allowed, patch: verdict.patch, warnings: verdict.warnings,
    message: (verdict.message ?? "").replace(/^gpu-admit denied [^:]*: /, ""),
  });
}

// kubectl itself: warnings on its stderr, a denial's message, and --dry-run=server storing nothing.
const training = path.join(examplesDir, "training-job.yaml");
const expectedTraining = offline.find((v) => v.file.endsWith("training-job.yaml"));
const dryRun = kubectl(["create", "--dry-run=server", "-o", "json", "-f", training]);
check(dryRun.status === 0 && expectedTraining.warnings.every((w) => dryRun.stderr.includes(`Warning: ${w}`)),
      "kubectl create --dry-run=server: allowed, and every warning on kubectl's stderr", dryRun.stderr);
check(kubectl(["get", "-f", training]).status !== 0, "kubectl create --dry-run=server stored nothing");
const vllm = path.join(examplesDir, "vllm-deployment.yaml");
const denied = kubectl(["apply", "-f", vllm]);
check(denied.status !== 0 && denied.stderr.includes('admission webhook "validate.gpu-admit.io" denied the request') &&
      denied.stderr.includes("[gpu-quota]"), "kubectl apply: a denial prints the policy's message", denied.stderr);

// ---- 3. Failure policies, as manifests/README.md promises ---------------------------------------
const gpuResources = { limits: { "nvidia.com/gpu": "1", cpu: "2", memory: "8Gi" } };
const gpuPod = (name) => ({ apiVersion: "v1", kind: "Pod", metadata: { name, namespace: "ml-team" },
  spec: { containers: [{ name: "cuda", image: "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04",
                         resources: clone(gpuResources) }] } });
await ensureNamespace("ml-team");
const podUrl = collection("Pod", "ml-team");
await webhook.stop();
let r = await kube.request("POST", podUrl, gpuPod("while-down"));
check(r.status >= 500 && String(r.body?.message).includes('failed calling webhook "validate.gpu-admit.io"'),
      "webhook down: the validating webhook fails closed (failurePolicy Fail)", `${r.status} ${r.body?.message}`);
// The mutating webhook alone: with validation set to Ignore for a moment, the pod is admitted
// as written, unmutated (failurePolicy Ignore).
const merge = { contentType: "application/json-patch+json" };
const vwc = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/gpu-admit";
// The API server reads webhook configurations through an informer: a change takes effect a moment
// after the PATCH returns, so each side of the switch is awaited by its effect.
async function createdWithin(seconds, name) {
  let answer;
  for (const deadline = Date.now() + seconds * 1000; Date.now() < deadline; await sleep(200))
    if ((answer = await kube.request("POST", podUrl, gpuPod(name))).status === 201) break;
  return answer;
}
async function refusedWithin(seconds, name) {
  for (const deadline = Date.now() + seconds * 1000; Date.now() < deadline; await sleep(200)) {
    const answer = await kube.request("POST", podUrl, gpuPod(name));
    if (answer.status === 201) await kube.call("DELETE", `${podUrl}/${name}?gracePeriodSeconds=0`);
    else if (answer.status >= 500) return true;
  }
  return false;
}
await kube.call("PATCH", vwc, [{ op: "replace", path: "/webhooks/0/failurePolicy", value: "Ignore" }], merge);
r = await createdWithin(10, "while-down");
if (check(r.status === 201, "webhook down: the mutating webhook fails open (failurePolicy Ignore)", `${r.status} ${r.body?.message}`)) {
  const diff = differences(comparable(r.body), comparable(await withoutWebhooks(gpuPod("while-down"))));
  check(!diff.length, "webhook down: the pod is stored unmutated", diff.join("\n"));
  await kube.call("DELETE", `${podUrl}/while-down?gracePeriodSeconds=0`);
}
await kube.call("PATCH", vwc, [{ op: "replace", path: "/webhooks/0/failurePolicy", value: "Fail" }], merge);
check(await refusedWithin(10, "while-down-again"), "webhook down: failurePolicy Fail is back in effect");
webhook = new Webhook(["--kubeconfig", saKubeconfig]);
check(await webhook.ready(), "webhook back: ready again");
r = await kube.request("POST", podUrl, gpuPod("after-restart"));
check(r.status === 201 && (r.body.spec.tolerations ?? []).some((t) => t.key === "nvidia.com/gpu"),
      "webhook back: a GPU pod is created, and mutated", `${r.status} ${JSON.stringify(r.body?.spec?.tolerations)}`);
if (r.status === 201) await kube.call("DELETE", `${podUrl}/after-restart?gracePeriodSeconds=0`);
// A server that answers later than timeoutSeconds (5 s): stopped, it accepts connections and never answers.
check(await webhook.freeze(), "webhook hung: every thread of the server is stopped");
const started = Date.now();
r = await kube.request("POST", podUrl, gpuPod("while-hung"));
const waited = (Date.now() - started) / 1000;
webhook.process.kill("SIGCONT");
check(r.status >= 500 && String(r.body?.message).includes('failed calling webhook "validate.gpu-admit.io"') && waited >= 5,
      `webhook hung: refused after timeoutSeconds (${waited.toFixed(1)} s; the mutating call is ignored, the validating one fails)`, `${r.status} ${r.body?.message}`);

// ---- 4. Reinvocation: another webhook adds a GPU container after gpu-admit ----------------------
// Mutating webhooks run in order of their configurations' names; "zz-e2e-sidecar" runs after
// "gpu-admit", and the API server calls gpu-admit again (reinvocationPolicy: IfNeeded). The result
// must be what one review of the final pod gives: gpu-admit's mutations are idempotent.
const sidecarContainer = { name: "sidecar", image: "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04",
                           resources: clone(gpuResources) };
let sidecarCalls = 0;
sidecar = https.createServer({ cert: fs.readFileSync(certs("tls.crt")), key: fs.readFileSync(certs("tls.key")) }, (req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    sidecarCalls++;
    const review = JSON.parse(Buffer.concat(chunks).toString());
    const containers = review.request.object.spec.containers;
    const response = { uid: review.request.uid, allowed: true };
    if (!containers.some((c) => c.name === "sidecar")) {
      response.patchType = "JSONPatch";
      response.patch = Buffer.from(JSON.stringify([{ op: "add", path: "/spec/containers/-", value: sidecarContainer }])).toString("base64");
    }
    res.setHeader("Content-Type", "application/json");
    res.end(JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response }));
  });
});
const sidecarPort = await new Promise((resolve) => sidecar.listen(0, "127.0.0.1", () => resolve(sidecar.address().port)));
await ensureNamespace("e2e-reinvocation");
await kube.call("PATCH", "/api/v1/namespaces/e2e-reinvocation", { metadata: { labels: { "e2e-sidecar": "yes" } } },
                { contentType: "application/merge-patch+json" });
await kube.call("POST", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", {
  apiVersion: "admissionregistration.k8s.io/v1", kind: "MutatingWebhookConfiguration", metadata: { name: "zz-e2e-sidecar" },
  webhooks: [{ name: "sidecar.e2e.gpu-admit.io", admissionReviewVersions: ["v1"], sideEffects: "None", timeoutSeconds: 5,
    failurePolicy: "Fail", reinvocationPolicy: "Never",
    clientConfig: { url: `https://127.0.0.1:${sidecarPort}/`, caBundle: caPem.toString("base64") },
    rules: [{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["pods"] }],
    namespaceSelector: { matchLabels: { "e2e-sidecar": "yes" } } }],
});
const pod = { ...gpuPod("reinvoked"), metadata: { name: "reinvoked", namespace: "e2e-reinvocation" } };
const mutateCallsBefore = await mutateReviews();
r = await kube.request("POST", collection("Pod", "e2e-reinvocation"), pod);
const mutateCalls = (await mutateReviews()) - mutateCallsBefore;
if (check(r.status === 201, "reinvocation: the pod is created", `${r.status} ${r.body?.message}`)) {
  const final = clone(pod);
  final.spec.containers.push(sidecarContainer);
  const once = runCheck(final);
  const want = await withoutWebhooks(jsonpatch.applyPatch(final, once.patch).newDocument);
  const diff = differences(comparable(r.body), comparable(want));
  check(!diff.length, "reinvocation: the sidecar is mutated too, and the result equals one review of the final pod",
        diff.slice(0, 8).join("\n"));
  check(sidecarCalls === 1 && mutateCalls === 2, `reinvocation: gpu-admit was called twice (${mutateCalls}), the sidecar once (${sidecarCalls})`);
}

// ---- 5. The live watch against the real server -----------------------------------------------
// A pod that selects a GPU product no node has is denied ("no node can ever run it"); once a node
// of that product is created, the watch delivers it and the same pod is allowed.
const productPod = (product) => ({ ...gpuPod(`wants-${product.toLowerCase()}`),
  spec: { ...gpuPod("x").spec, nodeSelector: { "nvidia.com/gpu.product": product } } });
async function nodeOfProduct(product) {
  const name = `e2e-${product.toLowerCase()}`;
  const labels = { "nvidia.com/gpu.product": product, "nvidia.com/gpu.count": "8", "nvidia.com/gpu.memory": "183359" };
  await kube.call("POST", "/api/v1/nodes", { apiVersion: "v1", kind: "Node", metadata: { name, labels } });
  const resources = { cpu: "224", memory: "2Ti", pods: "110", "nvidia.com/gpu": "8" };
  await kube.call("PATCH", `/api/v1/nodes/${name}/status`, { status: { capacity: resources, allocatable: resources,
    conditions: [{ type: "Ready", status: "True" }] } }, { contentType: "application/merge-patch+json" });
  await kube.call("PATCH", `/api/v1/nodes/${name}`, { spec: { taints: [] } }, { contentType: "application/merge-patch+json" });
}
async function allowedWithin(seconds, object) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const r = await kube.request("POST", `${collection("Pod", object.metadata.namespace)}?dryRun=All`, object);
    if (r.status === 201) return { allowed: true, after: (seconds * 1000 - (deadline - Date.now())) / 1000 };
    if (Date.now() > deadline) return { allowed: false, last: `${r.status} ${r.body?.message}` };
    await sleep(250);
  }
}
let before = await kube.request("POST", `${podUrl}?dryRun=All`, productPod("NVIDIA-B200"));
check(before.status === 403 && String(before.body?.message).includes("[gpu-capacity]"),
      "watch: a pod for a product no node has is denied by gpu-capacity", `${before.status} ${before.body?.message}`);
await nodeOfProduct("NVIDIA-B200");
let seen = await allowedWithin(20, productPod("NVIDIA-B200"));
check(seen.allowed, `watch: a node created later reaches the model (allowed after ${seen.after?.toFixed(1)} s)`, seen.last);

// A create storm while the watch lags: ml-serving uses 11 of its 12 GPUs, and six one-GPU pods
// arrive while the proxy holds back every watch event. Pods allowed but not yet seen through the
// watch count toward the budget (--admission-ttl), so exactly one is allowed.
lag.hold();
const storm = await Promise.all([0, 1, 2, 3, 4, 5].map((i) =>
  kube.request("POST", collection("Pod", "ml-serving"), { ...gpuPod(`storm-${i}`), metadata: { name: `storm-${i}`, namespace: "ml-serving" } })));
lag.release();
const stormAllowed = storm.filter((x) => x.status === 201).length;
const stormQuota = storm.filter((x) => x.status === 403 && String(x.body?.message).includes("[gpu-quota]")).length;
check(stormAllowed === 1 && stormQuota === 5, `burst admission: six pods at once into the last free GPU, ${stormAllowed} allowed, ${stormQuota} denied by gpu-quota`,
      storm.map((x) => `${x.status} ${x.status === 201 ? "" : x.body?.message}`).join("\n"));
for (let i = 0; i < 6; i++) await kube.request("DELETE", `${collection("Pod", "ml-serving")}/storm-${i}?gracePeriodSeconds=0`);

// An API server restart: its watch cache starts over, so the watch's resourceVersion is too old
// (410) and it relists; a node created after the restart must reach the model.
await kube.restartApiServer();
before = await kube.request("POST", `${podUrl}?dryRun=All`, productPod("NVIDIA-GB200"));
check(before.status === 403, "API server restarted: a pod for another new product is denied first", `${before.status}`);
await nodeOfProduct("NVIDIA-GB200");
seen = await allowedWithin(90, productPod("NVIDIA-GB200"));
check(seen.allowed, `API server restarted: the watch resumed, a node created after it reached the model in ${seen.after?.toFixed(1)} s`, seen.last);
const relists = await metricSum((l) => l.startsWith("gpuadmit_watch_relists_total{"));
// A kind whose last resourceVersion predates the restarted watch cache gets 410 and lists again
// (which kinds depends on where each watch stood when the server went down).
check(relists >= 1, `API server restarted: 410 "too old resource version" led to a relist (${relists})`);

function runCheck(object) {
  const file = path.join(work, "check-input.json");
  fs.writeFileSync(file, JSON.stringify(object));
  return JSON.parse(spawnSync(path.join(build, "gpu-admit"), ["check", "-o", "json", "--cluster", clusterFile, file],
                              { encoding: "utf8" }).stdout)[0];
}
// The sum of the webhook's metric lines that `wanted` picks.
async function metricSum(wanted) {
  const text = await new Promise((resolve) => {
    https.get(`https://127.0.0.1:${port}/metrics`, { ca: caPem }, (res) => {
      let body = ""; res.on("data", (c) => (body += c)); res.on("end", () => resolve(body));
    }).on("error", () => resolve(""));
  });
  return text.split("\n").filter(wanted).reduce((sum, l) => sum + Number(l.split(" ").pop()), 0);
}
function mutateReviews() {
  return metricSum((l) => l.startsWith("gpuadmit_http_requests_total{") && l.includes('route="mutate"'));
}

// ---- 6. The background audit: PolicyReports, and a Lease that moves when its holder dies --------
// Two more replicas, on ports of their own (the first webhook keeps answering the API server),
// audit every 2 s with a 3 s lease: one writes, the other stands by.
const reportsApi = "/apis/wgpolicyk8s.io/v1alpha2";
const leasePath = "/apis/coordination.k8s.io/v1/namespaces/gpu-admit/leases/gpu-admit-audit";
const auditors = {};  // killed by cleanup() too
for (const name of ["replica-a", "replica-b"]) {
  const auditPort = await freePort();
  auditors[name] = { port: auditPort, webhook: new Webhook(["--kubeconfig", saKubeconfig, "--audit-interval", "2",
    "--audit-min-interval", "1", "--audit-lease-duration", "3", "--audit-identity", name,
    // CI runs this beside other tests: at SCHED_IDLE the audit would wait for an idle CPU.
    "--audit-scheduling", "batch"], auditPort) };
  auditReplicas.push(auditors[name].webhook);
}
for (const [name, a] of Object.entries(auditors)) check(await a.webhook.ready(), `audit: ${name} ready`);
async function reportWithin(seconds, ns, wanted) {
  let last;
  for (const deadline = Date.now() + seconds * 1000; Date.now() < deadline; await sleep(250)) {
    last = await kube.request("GET", `${reportsApi}/namespaces/${ns}/policyreports/gpu-admit`);
    if (wanted(last)) return { ok: true, last };
  }
  return { ok: false, last };
}
const resultsFor = (r, name, policy) => (r.body?.results ?? []).filter((x) => x.resources?.[0]?.name === name && (!policy || x.policy === policy));
// Created before gpu-admit was installed, so admission never saw it: the audit does.
let polled = await reportWithin(30, "audit-e2e", (r) => r.status === 200 && resultsFor(r, "floating", "image-tags").length === 1);
if (check(polled.ok, "audit: the Deployment created before gpu-admit is in its namespace's PolicyReport, failing image-tags",
          JSON.stringify(polled.last?.body ?? polled.last).slice(0, 2000))) {
  const [result] = resultsFor(polled.last, "floating", "image-tags");
  check(result.result === "fail" && result.source === "gpu-admit" && result.properties.deniedToday === "true" &&
        result.resources[0].kind === "Deployment" && result.resources[0].uid,
        "audit: the result says it is denied if created today, and names the object", JSON.stringify(result));
  const summary = polled.last.body.summary;
  check(summary.fail >= 1 && summary.pass >= 1, `audit: the report's summary counts every result (${JSON.stringify(summary)})`);
  // The same objects offline: `gpu-admit audit` finds the same policies failing.
  const objects = path.join(work, "audit-objects.json");
  fs.writeFileSync(objects, JSON.stringify({ apiVersion: "v1", kind: "List",
                                             items: [auditDeployment("audit-e2e", "floating", "nvcr.io/nvidia/cuda:latest")] }));
  const offline = JSON.parse(spawnSync(path.join(build, "gpu-admit"), ["audit", "-o", "json", "--cluster", clusterFile,
                                                                       "--cluster", objects], { encoding: "utf8" }).stdout);
  const offlineFloating = offline.objects.find((o) => o.name === "floating");
  const failing = (names) => [...new Set(names)].sort().join(",");
  check(offlineFloating && failing(offlineFloating.results.filter((r) => r.result === "fail").map((r) => r.policy)) ===
        failing(resultsFor(polled.last, "floating").filter((r) => r.result === "fail").map((r) => r.policy)),
        "audit: the policies failing in the report are those `gpu-admit audit` finds offline",
        `${JSON.stringify(offlineFloating?.results?.map((r) => r.policy))} vs ${JSON.stringify(resultsFor(polled.last, "floating").map((r) => r.policy))}`);
}
// Written after every namespace's report: it may come a moment later.
let cluster;
for (const deadline = Date.now() + 30000; Date.now() < deadline; await sleep(250))
  if ((cluster = await kube.request("GET", `${reportsApi}/clusterpolicyreports/gpu-admit`)).status === 200) break;
check(cluster.status === 200 && cluster.body.summary?.fail >= 2, "audit: the ClusterPolicyReport holds the cluster's totals",
      `${cluster.status} ${JSON.stringify(cluster.body)}`.slice(0, 2000));
polled = await reportWithin(15, "audit-e2e-gone", (r) => r.status === 200);
check(polled.ok, "audit: a second namespace has its own report");
// Fixed: the image pinned (through the webhook, which allows it), the result goes.
const fixed = await kube.request("PATCH", "/apis/apps/v1/namespaces/audit-e2e/deployments/floating",
  [{ op: "replace", path: "/spec/template/spec/containers/0/image", value: "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04" }],
  { contentType: "application/json-patch+json" });
check(fixed.status === 200, "audit: the floating image is pinned", `${fixed.status} ${fixed.body?.message}`);
polled = await reportWithin(30, "audit-e2e", (r) => r.status === 200 && resultsFor(r, "floating", "image-tags").length === 0);
check(polled.ok, "audit: once fixed, its image-tags result leaves the report");
// Deleted: the namespace's only workload goes, and its report with it.
await kube.call("DELETE", "/apis/apps/v1/namespaces/audit-e2e-gone/deployments/floating-too");
polled = await reportWithin(30, "audit-e2e-gone", (r) => r.status === 404);
check(polled.ok, "audit: once its only workload is deleted, the namespace's report is deleted", `${polled.last?.status}`);
// Failover: the holder is killed (no release); the other takes the lease within one lease period
// (3 s) and a retry, and goes on writing.
const holder = (await kube.call("GET", leasePath)).body.spec.holderIdentity;
if (check(holder in auditors, `audit: the Lease is held by one replica (${holder})`)) {
  const other = Object.keys(auditors).find((n) => n !== holder);
  const metricText = async (p) => new Promise((resolve) => {
    https.get(`https://127.0.0.1:${p}/metrics`, { ca: caPem }, (res) => {
      let body = ""; res.on("data", (c) => (body += c)); res.on("end", () => resolve(body));
    }).on("error", () => resolve(""));
  });
  const leaderLine = async (p) => (await metricText(p)).split("\n").find((l) => l.startsWith("gpuadmit_audit_leader")) ?? "";
  check((await leaderLine(auditors[holder].port)).endsWith(" 1") && (await leaderLine(auditors[other].port)).endsWith(" 0"),
        "audit: gpuadmit_audit_leader is 1 on the holder, 0 on the other");
  check(/gpuadmit_audit_runs_total\{result="ok"\} [1-9]/.test(await metricText(auditors[holder].port)),
        "audit: the holder counts its successful audits");
  auditors[holder].webhook.kill();
  const killed = Date.now();
  let taken = null;
  for (const deadline = killed + 15000; Date.now() < deadline && !taken; await sleep(100)) {
    const lease = await kube.request("GET", leasePath);
    if (lease.body?.spec?.holderIdentity === other) taken = (Date.now() - killed) / 1000;
  }
  // One lease period (3 s), the follower's retry (0.4 s, jittered up to 2.2×) and slack for a
  // loaded machine.
  check(taken !== null && taken <= 3 + 0.9 + 1.5, `audit: after the holder died, ${other} took the Lease in ${taken?.toFixed(1)} s`);
  // The new writer writes: an object admitted now with a warn-mode finding (one replica, so
  // gpu-availability's minReplicas fails) appears in the report.
  const single = auditDeployment("audit-e2e", "single", "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04");
  single.spec.replicas = 1;
  const created = await kube.request("POST", "/apis/apps/v1/namespaces/audit-e2e/deployments", single);
  check(created.status === 201, "audit: a one-replica GPU Deployment is admitted (gpu-availability warns)", `${created.status} ${created.body?.message}`);
  polled = await reportWithin(30, "audit-e2e", (r) => r.status === 200 && resultsFor(r, "single", "gpu-availability").some((x) => x.properties?.deniedIfEnforced === "true"));
  check(polled.ok, `audit: ${other}, the new writer, reports it: gpu-availability would deny it if enforce`);
  await auditors[other].webhook.stop();
  const released = await kube.call("GET", leasePath);
  check(released.body.spec.holderIdentity === "" || released.body.spec.leaseDurationSeconds === 1,
        "audit: a writer stopped with SIGTERM hands the Lease back", JSON.stringify(released.body.spec));
}

console.log(failures ? `# ${failures} check(s) failed` : "# all checks passed");
process.exit(failures ? 1 : 0);
