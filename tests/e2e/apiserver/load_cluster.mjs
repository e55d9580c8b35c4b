// Loads a cluster snapshot (kubectl get nodes,pods,namespaces -o json) into an API server that
// ../shared/tools/kube-apiserver/start.sh started in KUBE_DIR. bench/soak.sh uses it.
//   node tests/e2e/apiserver/load_cluster.mjs KUBE_DIR SNAPSHOT
import fs from "node:fs";

import { ControlPlane } from "./control_plane.mjs";

const [dir, file] = process.argv.slice(2);
if (!file) { console.error("usage: load_cluster.mjs KUBE_DIR SNAPSHOT"); process.exit(2); }
const snapshot = JSON.parse(fs.readFileSync(file, "utf8"));
await ControlPlane.fromDir(dir).loadCluster(snapshot);
const count = (kind) => snapshot.items.filter((i) => i.kind === kind).length;
console.error(`${count("Node")} nodes and ${count("Pod")} pods in the API server`);
