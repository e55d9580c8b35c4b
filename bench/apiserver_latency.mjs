// What a pod create pays behind a real kube-apiserver (v1.20.2 of ../shared/tools/kube-apiserver,
// Debian's etcd): creates through the API server at concurrency 1, 4 and 16, in one run, with
//   none      no webhook configured;
//   echo      both webhooks pointed at a minimal HTTPS webhook that only echoes the uid (a
//             separate Node.js process): the floor of any webhook;
//   echo-patch  the same webhook, answering every /mutate call with the patch gpu-admit's default
//             policies give the benchmark's pod (computed once, before the rounds, by `gpu-admit
//             review` of a request the API server sent): the floor of any webhook that makes
//             this mutation, since the API server then applies the patch and decodes the pod;
//   off       gpu-admit with every policy `mode: off`;
//   default   gpu-admit with the shipped policies;
//   default-normal   the same with `--scheduling normal` (threads not SCHED_BATCH).
// gpu-admit runs `serve --kubeconfig` against the same API server (the sample cluster loaded).
// For each cell: p50/p90/p99 of a create (client side), creates/s, CPU per create of the API
// server, etcd and the webhook (from /proc), and the API server's own mean time per webhook call
// (apiserver_admission_webhook_admission_duration_seconds), overall and for the mutating and the
// validating calls apart. Results go in bench/README.md.
//
//   default-base     the default policies served by BASE_BUILD's gpu-admit (a build of an earlier
//                    commit), for a before-and-after in one run.
//   node bench/apiserver_latency.mjs [BUILD_DIR] [CREATES_PER_CELL]     (defaults: build, 200)
//   KINDS="default default-normal" CONCURRENCY=1 ROUNDS=3 node bench/apiserver_latency.mjs ...
//   BASE_BUILD=/tmp/base KINDS="none echo default-base default" CONCURRENCY=1 ROUNDS=3 node ...
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import https from "node:https";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";

import { freePort, renderBase, startControlPlane } from "../tests/e2e/apiserver/control_plane.mjs";

const source = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const build = path.resolve(process.argv[2] ?? "build");
const creates = Number(process.argv[3] ?? 200);
const shared = path.resolve(source, "..", "shared");
const YAML = createRequire(path.join(build, "oracle", "package.json"))("yaml");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const work = fs.mkdtempSync(path.join(os.tmpdir(), "gpuadmit-latency-"));
const kube = startControlPlane(shared, path.join(work, "kube"));
const children = [];
process.on("exit", () => { for (const c of children) c.kill("SIGKILL"); kube.stop(); fs.rmSync(work, { recursive: true, force: true }); });
process.on("SIGINT", () => process.exit(130));

execFileSync(path.join(source, "certs", "make-dev-certs.sh"), [path.join(work, "certs")], { stdio: "ignore" });
const cert = (name) => path.join(work, "certs", name);
const caBundle = fs.readFileSync(cert("ca.crt")).toString("base64");
await kube.loadCluster(JSON.parse(fs.readFileSync(path.join(source, "manifests", "examples", "cluster.json"), "utf8")));
await kube.call("POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace",
  metadata: { name: "bench", labels: { "kubernetes.io/metadata.name": "bench" } } });

// The shipped webhook configurations and RBAC, as tests/e2e/apiserver installs them, at `port`.
const hookConfigs = (port) => renderBase(source, YAML, port, caBundle).webhooks;
const kubectl = (args, input) => execFileSync("kubectl", ["--kubeconfig", kube.kubeconfig, ...args], { input, encoding: "utf8" });
kubectl(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List",
  items: renderBase(source, YAML, 0, caBundle).setup }));
const token = (await kube.call("POST", "/api/v1/namespaces/gpu-admit/serviceaccounts/gpu-admit/token",
  { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { expirationSeconds: 7200 } })).body.status.token;
const saKubeconfig = kube.writeKubeconfig(path.join(work, "sa.kubeconfig"), token);

const defaultConfig = fs.readFileSync(path.join(source, "policies", "default.yaml"), "utf8");
fs.writeFileSync(path.join(work, "off.yaml"), defaultConfig.replace(/^( {4}mode:) \w+/gm, "$1 off"));
fs.writeFileSync(path.join(work, "default.yaml"), defaultConfig);

// argv: port, certificate, key, then optional files: the base64 patch to answer /mutate with
// (empty: none), and where to record the first /mutate request's body.
const ECHO = `
const https = require("https"), fs = require("fs");
const patch = process.argv[4] ? fs.readFileSync(process.argv[4], "utf8").trim() : "";
let record = process.argv[5];
https.createServer({ cert: fs.readFileSync(process.argv[2]), key: fs.readFileSync(process.argv[3]) }, (req, res) => {
  if (req.method !== "POST") return res.end("ok\\n");
  const chunks = []; req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    const mutate = req.url.startsWith("/mutate");
    if (mutate && record) { fs.writeFileSync(record, body); record = null; }
    const response = { uid: JSON.parse(body).request.uid, allowed: true };
    if (mutate && patch) Object.assign(response, { patchType: "JSONPatch", patch });
    res.setHeader("Content-Type", "application/json");
    res.end(JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response }));
  });
}).listen(Number(process.argv[1]), "127.0.0.1");`;

const patchFile = path.join(work, "patch.b64"), recordedRequest = path.join(work, "mutate-request.json");

async function startWebhook(kind, port) {
  const log = fs.openSync(path.join(work, `${kind}.log`), "w");
  const echoFiles = { echo: [], "echo-patch": [patchFile], "echo-record": ["", recordedRequest] }[kind];
  const child = echoFiles
    ? spawn(process.execPath, ["-e", ECHO, String(port), cert("tls.crt"), cert("tls.key"), ...echoFiles],
        { stdio: ["ignore", log, log] })
    : spawn(path.join(kind.endsWith("-base") ? baseBuild : build, "gpu-admit"), ["serve", "--addr", `127.0.0.1:${port}`,
        "--tls-cert", cert("tls.crt"), "--tls-key", cert("tls.key"),
        "--config", path.join(work, `${kind.replace(/-(normal|base)$/, "")}.yaml`),
        "--kubeconfig", saKubeconfig, ...(kind.endsWith("-normal") ? ["--scheduling", "normal"] : [])],
        { stdio: ["ignore", log, log] });
  children.push(child);
  const ca = fs.readFileSync(cert("ca.crt"));
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise((resolve) => {
      https.get({ host: "127.0.0.1", port, path: echoFiles ? "/" : "/readyz", ca },
        (res) => { res.resume(); resolve(res.statusCode === 200); }).on("error", () => resolve(false));
    });
    if (ok) return child;
    await sleep(100);
  }
  throw new Error(`${kind} webhook did not start; see ${work}/${kind}.log`);
}

// CPU seconds (user + system) of a process so far.
function cpuSeconds(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;  // utime, stime in clock ticks (USER_HZ 100)
}
const pidOf = (name) => Number(fs.readFileSync(path.join(kube.dir, name), "utf8"));

// The API server's time in webhook calls so far: all, and the mutating (type "admit") and the
// validating calls apart.
async function webhookCallSeconds() {
  const text = (await kube.request("GET", "/metrics")).body;
  const totals = { all: { sum: 0, count: 0 }, admit: { sum: 0, count: 0 }, validating: { sum: 0, count: 0 } };
  for (const line of String(text).split("\n")) {
    if (!line.startsWith("apiserver_admission_webhook_admission_duration_seconds_")) continue;
    const value = Number(line.split(" ").pop());
    const field = line.includes("_sum{") ? "sum" : line.includes("_count{") ? "count" : null;
    if (!field) continue;
    totals.all[field] += value;
    const type = /type="(\w+)"/.exec(line)?.[1];
    if (totals[type]) totals[type][field] += value;
  }
  return totals;
}

const pod = (name) => ({ apiVersion: "v1", kind: "Pod", metadata: { name, namespace: "bench" },
  spec: { containers: [{ name: "cuda", image: "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04",
    resources: { limits: { "nvidia.com/gpu": "1", cpu: "2", memory: "8Gi" } } }] } });

let serial = 0;
async function cell(kind, concurrency, webhookPid) {
  // Warm-up: connections opened, caches filled.
  for (let i = 0; i < 10; i++) await kube.call("POST", "/api/v1/namespaces/bench/pods", pod(`warm-${serial++}`));
  const pids = { apiserver: pidOf("apiserver.pid"), etcd: pidOf("etcd.pid"), ...(webhookPid ? { webhook: webhookPid } : {}) };
  const cpu0 = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, cpuSeconds(p)]));
  const calls0 = await webhookCallSeconds();
  const latencies = [];
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < creates) {
      next++;
      const t0 = process.hrtime.bigint();
      const r = await kube.request("POST", "/api/v1/namespaces/bench/pods", pod(`p-${serial++}`));
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (r.status !== 201) throw new Error(`${kind}: create answered ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
    }
  }));
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  const calls1 = await webhookCallSeconds();
  latencies.sort((a, b) => a - b);
  const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  const cpu = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, ((cpuSeconds(p) - cpu0[k]) / creates) * 1e6]));
  const perCallMs = (type) => {
    const n = calls1[type].count - calls0[type].count;
    return n ? ((calls1[type].sum - calls0[type].sum) / n) * 1000 : null;
  };
  const calls = calls1.all.count - calls0.all.count;
  // Empty the namespace, so every cell starts from the same number of pods.
  await kube.call("DELETE", "/api/v1/namespaces/bench/pods?gracePeriodSeconds=0");
  return { kind, concurrency, p50: at(0.5), p90: at(0.9), p99: at(0.99), rate: creates / wall, cpu,
           webhookCallMs: perCallMs("all"), mutateCallMs: perCallMs("admit"), validateCallMs: perCallMs("validating"),
           callsPerCreate: calls / creates };
}

// KINDS, CONCURRENCY and ROUNDS pick a subset and repeat it in turn, for alternating runs of two
// set-ups on one warm API server (ROUNDS=3 KINDS="default default-normal" CONCURRENCY=1).
const kinds = (process.env.KINDS ?? "none echo off default default-normal").split(/\s+/).filter(Boolean);
const levels = (process.env.CONCURRENCY ?? "1 4 16").split(/\s+/).filter(Boolean).map(Number);
const rounds = Number(process.env.ROUNDS ?? 1);
const baseBuild = process.env.BASE_BUILD ? path.resolve(process.env.BASE_BUILD) : null;
const known = ["none", "echo", "echo-patch", "off", "default", "default-normal", ...(baseBuild ? ["default-base"] : [])];
for (const kind of kinds) if (!known.includes(kind)) throw new Error(`KINDS: unknown set-up ${kind} (${known.join(", ")})`);

// Install `kind` on both webhook configurations at a fresh port; returns the process.
async function install(kind) {
  const port = await freePort();
  const child = await startWebhook(kind, port);
  kubectl(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items: hookConfigs(port) }));
  await sleep(1500);  // the API server picks up new webhook configurations from its informer
  return child;
}
async function uninstall(child) {
  kubectl(["delete", "mutatingwebhookconfiguration,validatingwebhookconfiguration", "gpu-admit"]);
  await sleep(1500);
  child.kill("SIGTERM");
}

// echo-patch's patch: gpu-admit's answer to a /mutate request the API server sent for the pod.
let patchOps = null;
if (kinds.includes("echo-patch")) {
  const recorder = await install("echo-record");
  await kube.call("POST", "/api/v1/namespaces/bench/pods", pod(`record-${serial++}`));
  await uninstall(recorder);
  await kube.call("DELETE", "/api/v1/namespaces/bench/pods?gracePeriodSeconds=0");
  const answer = JSON.parse(execFileSync(path.join(build, "gpu-admit"), ["review", "--config", path.join(work, "default.yaml"),
    "--cluster", path.join(source, "manifests", "examples", "cluster.json"), recordedRequest], { encoding: "utf8" }));
  if (!answer.response.patch) throw new Error("gpu-admit review gave the benchmark's pod no patch");
  fs.writeFileSync(patchFile, answer.response.patch);
  patchOps = JSON.parse(Buffer.from(answer.response.patch, "base64").toString()).length;
}

const rows = [];
for (const kind of Array.from({ length: rounds }, () => kinds).flat()) {
  const child = kind === "none" ? null : await install(kind);
  for (const concurrency of levels) rows.push(await cell(kind, concurrency, child?.pid));
  if (child) await uninstall(child);
}

const f = (x, d = 1) => (x === null || x === undefined ? "" : x.toFixed(d));
console.log(`# ${creates} pod creates per cell; ${os.cpus().length} CPUs; load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`);
if (patchOps !== null) console.log(`# echo-patch answers /mutate with ${patchOps} operations (${fs.readFileSync(patchFile, "utf8").trim().length} base64 bytes)`);
console.log("| webhook | conc. | p50 ms | p90 ms | p99 ms | creates/s | API server µs CPU/create | etcd µs | webhook µs | API server's time per webhook call, ms: all | mutating | validating | calls/create |");
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const r of rows)
  console.log(`| ${r.kind} | ${r.concurrency} | ${f(r.p50)} | ${f(r.p90)} | ${f(r.p99)} | ${f(r.rate, 0)} | ${f(r.cpu.apiserver, 0)} | ${f(r.cpu.etcd, 0)} | ${f(r.cpu.webhook, 0)} | ${f(r.webhookCallMs, 2)} | ${f(r.mutateCallMs, 2)} | ${f(r.validateCallMs, 2)} | ${f(r.callsPerCreate, 2)} |`);
