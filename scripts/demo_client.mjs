// The demo's client: wraps every object in the given manifest files as an AdmissionReview
// (CREATE), sends it over HTTPS (keep-alive, the dev CA trusted) to the webhook's /mutate and
// /validate, and prints each decision. As the API server does, /validate gets the object with
// the /mutate patch applied. Uses the `yaml` and `fast-json-patch` packages of the admission
// oracle that scripts/setup.sh installs in build/oracle.
//   node scripts/demo_client.mjs ORACLE_DIR CA_FILE BASE_URL FILE...
import fs from "node:fs";
import https from "node:https";
import { createRequire } from "node:module";
import crypto from "node:crypto";
import path from "node:path";

const [oracleDir, caFile, baseUrl, ...files] = process.argv.slice(2);
const requireFromOracle = createRequire(path.resolve(oracleDir, "package.json"));
const YAML = requireFromOracle("yaml");
const jsonpatch = requireFromOracle("fast-json-patch");
const agent = new https.Agent({ keepAlive: true, ca: fs.readFileSync(caFile) });

function admissionReview(object) {
  const [group, version] = object.apiVersion.includes("/") ? object.apiVersion.split("/") : ["", object.apiVersion];
  const resource = object.kind.toLowerCase() + "s";
  const namespace = object.metadata.namespace ?? "default";
  return {
    apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview",
    request: {
      uid: crypto.randomUUID(), kind: { group, version, kind: object.kind },
      resource: { group, version, resource }, requestKind: { group, version, kind: object.kind },
      name: object.metadata.name, namespace, operation: "CREATE",
      userInfo: { username: "demo-user", groups: ["system:authenticated"] },
      object, oldObject: null, dryRun: false,
      options: { apiVersion: "meta.k8s.io/v1", kind: "CreateOptions" },
    },
  };
}

function post(path, body) {
  return new Promise((resolve, reject) => {
    const request = https.request(`${baseUrl}${path}`, {
      method: "POST", agent, headers: { "Content-Type": "application/json" },
    }, (response) => {
      let text = "";
      response.on("data", (chunk) => (text += chunk));
      response.on("end", () => resolve({ status: response.statusCode, text }));
    });
    request.on("error", reject);
    request.end(body);
  });
}

let failures = 0;
for (const file of files) {
  for (const doc of YAML.parseAllDocuments(fs.readFileSync(file, "utf8"))) {
    const object = doc.toJS();
    if (!object || !object.kind) continue;
    let current = object;
    console.log(`\n${object.kind} ${object.metadata.namespace ?? "default"}/${object.metadata.name}  (${file})`);
    for (const path of ["/mutate", "/validate"]) {
      const { status, text } = await post(path, JSON.stringify(admissionReview(current)));
      if (status !== 200) { failures++; console.log(`  ${path}: HTTP ${status}: ${text.trim()}`); continue; }
      const answer = JSON.parse(text).response;
      const patch = answer.patch ? JSON.parse(Buffer.from(answer.patch, "base64").toString()) : [];
      const decision = answer.allowed ? "allowed" : `DENIED (${answer.status?.code}): ${answer.status?.message}`;
      console.log(`  ${path.padEnd(9)} ${decision}${patch.length ? `, patch of ${patch.length} operations:` : ""}`);
      for (const op of patch) console.log(`      ${op.op} ${op.path}`);
      if (patch.length) current = jsonpatch.applyPatch(structuredClone(current), patch).newDocument;
      for (const warning of answer.warnings ?? []) console.log(`      warning: ${warning}`);
    }
  }
}
agent.destroy();
process.exit(failures ? 1 : 0);
