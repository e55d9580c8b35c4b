// A real control plane for the end-to-end suite: etcd and the v1.20 kube-apiserver of
// ../shared/tools/kube-apiserver (its start.sh), a small HTTPS client for its API, and the
// sample cluster loaded into it. Used by apiserver_e2e.mjs and by bench/soak.sh.
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import https from "node:https";
import net from "node:net";
import path from "node:path";

export const ADMIN_TOKEN = "admin-token";  // start.sh's token, group system:masters

export function startControlPlane(sharedDir, dir) {
  const start = path.join(sharedDir, "tools", "kube-apiserver", "start.sh");
  if (!fs.existsSync(start)) throw new Error(`no ${start}: the real API server comes from ../shared`);
  execFileSync(start, [dir], { stdio: ["ignore", "ignore", "inherit"] });
  return ControlPlane.fromDir(dir);
}

export class ControlPlane {
  // One that start.sh started in `dir` (its env file names the port and the admin kubeconfig).
  static fromDir(dir) {
    const env = Object.fromEntries(fs.readFileSync(path.join(dir, "env"), "utf8").trim().split("\n")
      .map((line) => line.split("=", 2)));
    return new ControlPlane(dir, Number(env.APIPORT), env.KUBECONFIG);
  }

  constructor(dir, port, kubeconfig) {
    this.dir = dir;
    this.port = port;
    this.kubeconfig = kubeconfig;  // admin
    this.ca = fs.readFileSync(path.join(dir, "pki", "apiserver.crt"));
  }

  // SIGKILL: a v1.20 API server whose etcd went first never finishes a graceful stop.
  stop() {
    for (const name of ["apiserver.pid", "etcd.pid"]) {
      try { process.kill(Number(fs.readFileSync(path.join(this.dir, name), "utf8")), "SIGKILL"); } catch {}
    }
  }

  // SIGKILL the API server (etcd keeps its data) and start it again with the same arguments;
  // resolves once it serves again.
  async restartApiServer() {
    const pidFile = path.join(this.dir, "apiserver.pid");
    const pid = Number(fs.readFileSync(pidFile, "utf8"));
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0$/, "").split("\0");
    process.kill(pid, "SIGKILL");
    while (fs.existsSync(`/proc/${pid}`)) await new Promise((r) => setTimeout(r, 100));
    const log = fs.openSync(path.join(this.dir, "apiserver.log"), "a");
    const child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", log, log], detached: true });
    child.unref();
    fs.writeFileSync(pidFile, `${child.pid}\n`);
    for (let i = 0; i < 240; i++) {
      try { if ((await this.request("GET", "/readyz")).status === 200) return; } catch {}
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error("the API server did not serve again within 60 s");
  }

  // One API call: {status, body (parsed JSON or text), warnings (the Warning headers' texts)}.
  request(method, apiPath, body, { token = ADMIN_TOKEN, contentType = "application/json" } = {}) {
    return new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = https.request({
        host: "127.0.0.1", port: this.port, method, path: apiPath, ca: this.ca, timeout: 60000,
        headers: { Authorization: `Bearer ${token}`, Accept: "application/json",
                   ...(data ? { "Content-Type": contentType, "Content-Length": data.length } : {}) },
      }, (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString();
          let parsed = text;
          try { parsed = JSON.parse(text); } catch {}
          resolve({ status: res.statusCode, body: parsed, warnings: warningTexts(res.headers.warning) });
        });
      });
      req.on("timeout", () => req.destroy(new Error(`${method} ${apiPath}: no answer in 60 s`)));
      req.on("error", reject);
      if (data) req.write(data);
      req.end();
    });
  }

  // Like request, but anything other than 2xx (or 409 where exists is fine) throws.
  async call(method, apiPath, body, options = {}) {
    const r = await this.request(method, apiPath, body, options);
    if (r.status >= 300 && !(options.existsOk && r.status === 409))
      throw new Error(`${method} ${apiPath}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
    return r;
  }

  // A kubeconfig for a bearer token, trusting the API server's certificate; `port` may name a
  // proxy in front of it (its certificate names 127.0.0.1, whatever the port).
  writeKubeconfig(file, token, port = this.port) {
    fs.writeFileSync(file, [
      "apiVersion: v1", "kind: Config",
      "clusters:", "- name: local",
      `  cluster: {server: "https://127.0.0.1:${port}", certificate-authority: "${path.join(this.dir, "pki", "apiserver.crt")}"}`,
      "users:", "- name: user", `  user: {token: "${token}"}`,
      "contexts:", "- name: local", "  context: {cluster: local, user: user}",
      "current-context: local", ""].join("\n"));
    return file;
  }

  // The sample cluster (kubectl get nodes,pods,namespaces -o json): namespaces, nodes with their
  // status (through the status subresource) and their own taints (not the not-ready taint the
  // API server puts on a new node), and pods bound to nodes.
  async loadCluster(snapshot) {
    const clean = (item) => {
      const { uid, resourceVersion, creationTimestamp, managedFields, ...metadata } = item.metadata;
      return { ...item, metadata };
    };
    const merge = { contentType: "application/merge-patch+json" };
    for (const item of snapshot.items.filter((i) => i.kind === "Namespace"))
      await this.call("POST", "/api/v1/namespaces", clean(item), { existsOk: true });
    for (const item of snapshot.items.filter((i) => i.kind === "Node")) {
      const name = item.metadata.name;
      await this.call("POST", "/api/v1/nodes", clean(item));
      await this.call("PATCH", `/api/v1/nodes/${name}/status`, { status: item.status ?? {} }, merge);
      await this.call("PATCH", `/api/v1/nodes/${name}`, { spec: { taints: item.spec?.taints ?? [] } }, merge);
    }
    // A pod's status (its phase: Succeeded and Failed pods hold no GPUs) only goes in through
    // the status subresource.
    for (const item of snapshot.items.filter((i) => i.kind === "Pod")) {
      const { status, ...pod } = clean(item);
      const url = `/api/v1/namespaces/${pod.metadata.namespace ?? "default"}/pods`;
      await this.call("POST", url, pod);
      if (status) await this.call("PATCH", `${url}/${pod.metadata.name}/status`, { status }, merge);
    }
  }
}

// A TCP proxy in front of the API server that can hold back what the server sends, so a client's
// watch lags on demand: hold() keeps the answers, release() delivers them, in order.
export async function laggingProxy(targetPort) {
  let holding = false;
  const links = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, "127.0.0.1");
    const link = { client, held: [] };
    links.add(link);
    client.pipe(upstream);
    upstream.on("data", (data) => (holding ? link.held.push(data) : client.write(data)));
    const close = () => { links.delete(link); client.destroy(); upstream.destroy(); };
    client.on("error", close).on("close", close);
    upstream.on("error", close).on("close", close);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: server.address().port,
    hold() { holding = true; },
    release() {
      holding = false;
      for (const link of links) { for (const data of link.held) link.client.write(data); link.held = []; }
    },
    close() { for (const link of links) link.client.destroy(); server.close(); },
  };
}

// `299 - "text"` (RFC 7234, as the API server writes a webhook's warnings) → text.
function warningTexts(header) {
  if (!header) return [];
  const out = [];
  const re = /\d{3} [^ ]+ "((?:[^"\\]|\\.)*)"/g;
  for (let m; (m = re.exec(header));) out.push(m[1].replace(/\\(.)/g, "$1"));
  return out;
}

// `kubectl kustomize manifests/base`, changed only where a local API server must (each change says
// why): {setup: the namespace and RBAC, webhooks: both webhook configurations calling
// https://127.0.0.1:port with caBundle}. The Deployment, Service, ConfigMap and
// PodDisruptionBudget are left out: no controllers or kubelet run, so gpu-admit is a local process.
// `YAML` is the oracle's yaml package.
export function renderBase(source, YAML, port, caBundle) {
  const rendered = execFileSync("kubectl", ["kustomize", path.join(source, "manifests", "base")], { encoding: "utf8" });
  const setup = [], webhooks = [];
  for (const object of YAML.parseAllDocuments(rendered).map((d) => d.toJS()).filter(Boolean)) {
    if (["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"].includes(object.kind)) {
      if (object.kind === "Namespace")  // v1.20 does not add this label itself (1.21+); the webhooks' namespaceSelector reads it
        object.metadata.labels = { ...object.metadata.labels, "kubernetes.io/metadata.name": object.metadata.name };
      setup.push(object);
    } else if (object.kind.endsWith("WebhookConfiguration")) {
      for (const hook of object.webhooks) {
        // A Service needs a cluster network: call the local process, trusting its dev CA.
        hook.clientConfig = { url: `https://127.0.0.1:${port}${hook.clientConfig.service.path}`, caBundle };
        delete hook.matchConditions;  // 1.27+; v1.20 rejects the field
      }
      webhooks.push(object);
    }
  }
  return { setup, webhooks };
}

// A published CRD as v1.20 accepts it. Today's controller-gen writes `default: ""` on every
// name field of the embedded pod specs, which v1.20's CRD validation reads as a null default and
// refuses; the defaults are dropped, and a list-map key that relied on one (imagePullSecrets'
// `name`) becomes required instead. Nothing else in the schema changes.
export function crdForV120(crd) {
  const strip = (schema, listMapKeys = []) => {
    if (!schema || typeof schema !== "object") return;
    for (const [name, prop] of Object.entries(schema.properties ?? {})) {
      if (prop.default === "") {
        delete prop.default;
        if (listMapKeys.includes(name)) schema.required = [...new Set([...(schema.required ?? []), name])];
      }
      strip(prop);
    }
    if (schema.items) strip(schema.items, schema["x-kubernetes-list-map-keys"] ?? []);
    if (typeof schema.additionalProperties === "object") strip(schema.additionalProperties);
    for (const junctor of ["allOf", "anyOf", "oneOf"]) for (const part of schema[junctor] ?? []) strip(part);
  };
  for (const version of crd.spec.versions) strip(version.schema?.openAPIV3Schema);
  return crd;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => { const { port } = server.address(); server.close(() => resolve(port)); });
  });
}
