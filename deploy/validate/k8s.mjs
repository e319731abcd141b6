// Validates Kubernetes objects (YAML on stdin: `kubectl kustomize deploy/k8s | node k8s.mjs`) against the
// Kubernetes and KEDA schemas bundled in kubernetes-models; offline. Exits 1 on any invalid or
// unknown object, naming it.
import { readFileSync } from "node:fs";
import yaml from "js-yaml";

const GROUPS = { "keda.sh": "@kubernetes-models/keda/keda.sh" };

async function modelFor(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const base = GROUPS[group] ?? `kubernetes-models/${group ? `${group}/` : ""}`;
  const path = GROUPS[group] ? `${base}/${version}/${kind}` : `${base}${version}/${kind}`;
  const module = await import(path);
  return module[kind];
}

let failures = 0;
let checked = 0;
for (const doc of yaml.loadAll(readFileSync(0, "utf8"))) {
  if (!doc) continue;
  const name = `${doc.kind}/${doc.metadata?.name}`;
  try {
    const Model = await modelFor(doc.apiVersion, doc.kind);
    new Model(doc).validate();
    checked += 1;
  } catch (error) {
    failures += 1;
    console.error(`${name}: ${error.message}`);
  }
}
console.log(`${checked} valid, ${failures} invalid`);
process.exit(failures || !checked ? 1 : 0);
