#!/usr/bin/env python3
"""Offline checks of the sharded sweep's deployments (no cluster, no GitHub needed).

deploy/kubernetes/backlog-lab-sweep.yaml (ConfigMap, PersistentVolumeClaim, Indexed Job) and
backlog-lab-sweep-merge.yaml (the merge Job), and .github/workflows/sweep-shards.yml:

- the YAML as the API server would see it: kinds and apiVersions, an Indexed Job whose
  completions and parallelism equal the ConfigMap's SHARDS, a privileged shard container with the
  results volume and /lib/modules, every volume's claim and every envFrom's ConfigMap defined;
  the workflow's matrix 1..SHARDS, the merge job after the shards, artifact names that match;
- `kubectl kustomize` renders the manifests (kubectl's offline renderer: `create --dry-run=client`
  still asks an API server for its resource list), when kubectl is installed;
- then the real thing: each shard's container command, with its completion index, is run through
  /bin/sh with the real binary and a small scenario instead of the README's 12 x 3 sweep (the
  results directory moved to a temp dir), and the merge Job's command joins them: every shard's
  report, a merged JSON with all cells and seeds, exit 0 or 1 as the sweep's.

usage: check_sweep_job.py REPO_DIR BACKLOG_LAB_BINARY
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import yaml

failures = []

# Two cells x two repeats of a frozen pod: about a second per run.
SCENARIO = {
    "name": "deploy-check", "duration_ms": 300, "drain_ms": 500, "sample_interval_ms": 10,
    "backends": [{"name": "p", "backlog": 4}],
    "clients": [{"name": "c", "target": "203.0.113.10:8080", "rate_per_s": 200,
                 "max_connections": 10, "connect_timeout_ms": 500, "response_timeout_ms": 200}],
    "timeline": [{"at_ms": 0, "action": "freeze", "target": "p"},
                 {"at_ms": 20, "action": "start-clients", "target": "c"}],
    "expectations": [{"metric": "clients.c.answered", "op": "==", "value": 0}],
}


def check(cond, what):
    if not cond:
        failures.append(what)
    return cond


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def container_command(c):
    """The container's command line as a list (command + args)."""
    return list(c.get("command", [])) + list(c.get("args", []))


def check_kubernetes(repo):
    job_docs = load(os.path.join(repo, "deploy/kubernetes/backlog-lab-sweep.yaml"))
    merge_docs = load(os.path.join(repo, "deploy/kubernetes/backlog-lab-sweep-merge.yaml"))
    for d in job_docs + merge_docs:
        for key in ("apiVersion", "kind", "metadata"):
            check(key in d, f"a document lacks {key}")
        check("name" in d.get("metadata", {}), f"a {d.get('kind')} without metadata.name")
    kinds = {d["kind"]: d for d in job_docs}
    cm, pvc, job = kinds.get("ConfigMap"), kinds.get("PersistentVolumeClaim"), kinds.get("Job")
    merge = merge_docs[0] if merge_docs else None
    if not (check(cm and cm["apiVersion"] == "v1", "a v1 ConfigMap")
            and check(pvc and pvc["apiVersion"] == "v1", "a v1 PersistentVolumeClaim")
            and check(job and job["apiVersion"] == "batch/v1", "a batch/v1 Job")
            and check(merge and merge["kind"] == "Job" and merge["apiVersion"] == "batch/v1",
                      "a batch/v1 merge Job")):
        return None
    shards = int(cm["data"]["SHARDS"])
    spec = job["spec"]
    check(spec.get("completionMode") == "Indexed", "completionMode: Indexed")
    check(spec.get("completions") == shards, f"completions = SHARDS ({shards})")
    check(spec.get("parallelism") == shards, f"parallelism = SHARDS ({shards})")
    check("ReadWriteMany" in pvc["spec"]["accessModes"], "the results claim is ReadWriteMany")
    for j in (job, merge):
        pod = j["spec"]["template"]["spec"]
        name = j["metadata"]["name"]
        check(pod.get("restartPolicy") in ("Never", "OnFailure"), f"{name}: a Job's restartPolicy")
        check(pod.get("automountServiceAccountToken") is False, f"{name}: no service account token")
        check(len(pod["containers"]) == 1, f"{name}: one container")
        c = pod["containers"][0]
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for m in c.get("volumeMounts", []):
            check(m["name"] in volumes, f"{name}: volume {m['name']} is defined")
        results = volumes.get("results", {}).get("persistentVolumeClaim", {}).get("claimName")
        check(results == pvc["metadata"]["name"], f"{name}: results on the claim")
        check(any(m["mountPath"] == "/results" for m in c.get("volumeMounts", [])),
              f"{name}: /results mounted")
        for e in c.get("envFrom", []):
            check(e.get("configMapRef", {}).get("name") == cm["metadata"]["name"],
                  f"{name}: envFrom the sweep's ConfigMap")
    shard_c = job["spec"]["template"]["spec"]["containers"][0]
    check(shard_c.get("securityContext", {}).get("privileged") is True,
          "the shard container is privileged (namespaces, netfilter, sysctls)")
    check(any(m["mountPath"] == "/lib/modules" and m.get("readOnly")
              for m in shard_c.get("volumeMounts", [])), "/lib/modules mounted read-only")
    merge_c = merge["spec"]["template"]["spec"]["containers"][0]
    check(merge_c.get("securityContext", {}).get("privileged") is not True,
          "the merge container is not privileged")
    return {"shards": shards, "shard": container_command(shard_c),
            "merge": container_command(merge_c), "sweep_args": cm["data"]["SWEEP_ARGS"]}


def check_workflow(repo):
    with open(os.path.join(repo, ".github/workflows/sweep-shards.yml")) as f:
        wf = yaml.safe_load(f)
    # PyYAML reads the key `on` as True (YAML 1.1).
    trigger = wf.get("on", wf.get(True))
    check(trigger is not None and "workflow_dispatch" in trigger, "started by hand")
    shards = int(wf["env"]["SHARDS"])
    jobs = wf["jobs"]
    check(jobs["shard"]["strategy"]["matrix"]["shard"] == list(range(1, shards + 1)),
          f"the matrix is 1..SHARDS ({shards})")
    check("--privileged" in jobs["shard"]["container"].get("options", ""),
          "the shard job's container is privileged")
    runs = " ".join(s.get("run", "") for s in jobs["shard"]["steps"])
    check("--shard ${{ matrix.shard }}/$SHARDS" in runs, "each matrix entry runs its shard")
    check("--seed" in runs, "an explicit seed (shards of one sweep)")
    check(jobs["merge"].get("needs") == "shard", "merge runs after the shards")
    uploads = [s for s in jobs["shard"]["steps"] if s.get("uses", "").startswith("actions/upload")]
    downloads = [s for s in jobs["merge"]["steps"]
                 if s.get("uses", "").startswith("actions/download")]
    check(len(uploads) == 1 and len(downloads) == 1, "shards uploaded, merge downloads them")
    if uploads and downloads:
        check(uploads[0]["with"]["name"].startswith("shard-")
              and downloads[0]["with"]["pattern"] == "shard-*", "artifact names match")
    merge_runs = " ".join(s.get("run", "") for s in jobs["merge"]["steps"])
    check("backlog-lab merge shards/shard-*.json" in merge_runs, "merge reads every shard")


def kustomize(repo):
    kubectl = shutil.which("kubectl")
    if not kubectl:
        print("kubectl not installed: rendering skipped (YAML checks only)")
        return
    with tempfile.TemporaryDirectory() as d:
        for name in ("backlog-lab-sweep.yaml", "backlog-lab-sweep-merge.yaml"):
            shutil.copy(os.path.join(repo, "deploy/kubernetes", name), d)
        with open(os.path.join(d, "kustomization.yaml"), "w") as f:
            f.write("resources: [backlog-lab-sweep.yaml, backlog-lab-sweep-merge.yaml]\n")
        r = subprocess.run([kubectl, "kustomize", d], capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, KUBECONFIG=os.devnull))
        if not check(r.returncode == 0, f"kubectl kustomize renders the manifests: {r.stderr}"):
            return
        rendered = [x for x in yaml.safe_load_all(r.stdout) if x]
        check(sorted(x["kind"] for x in rendered) ==
              ["ConfigMap", "Job", "Job", "PersistentVolumeClaim"],
              "rendered: a ConfigMap, a claim and two Jobs")


def run_for_real(k, binary):
    with tempfile.TemporaryDirectory() as d:
        scenario = os.path.join(d, "scenario.json")
        with open(scenario, "w") as f:
            json.dump(SCENARIO, f)
        results = os.path.join(d, "results")
        os.mkdir(results)
        args = f"{scenario} --set /backends/0/backlog=4,6 --repeat 2 --seed 5"

        def shell(cmd, index):
            check(cmd[:2] == ["/bin/sh", "-c"] and len(cmd) == 3, "a /bin/sh -c command")
            text = cmd[2].replace("/usr/local/bin/backlog-lab", binary).replace("/results", results)
            env = dict(os.environ, SHARDS=str(k["shards"]), SWEEP_ARGS=args)
            if index is not None:
                env["JOB_COMPLETION_INDEX"] = str(index)
            return subprocess.run(["/bin/sh", "-c", text], env=env, capture_output=True,
                                  text=True, timeout=300)

        for index in range(k["shards"]):
            r = shell(k["shard"], index)
            check(r.returncode in (0, 1), f"shard index {index}: exit {r.returncode}: {r.stderr}")
        names = sorted(os.listdir(results))
        want = sorted(f"shard-{i}-of-{k['shards']}.json" for i in range(1, k["shards"] + 1))
        check(names == want, f"one report per shard: {names}")
        r = shell(k["merge"], None)
        check(r.returncode in (0, 1), f"merge: exit {r.returncode}: {r.stderr}")
        merged = os.path.join(results, "merged.json")
        if check(os.path.exists(merged), "merged.json written"):
            with open(merged) as f:
                m = json.load(f)
            check(m["cells_finished"] == 2 and m["runs_finished"] == 4,
                  f"all cells and runs merged: {m['cells_finished']}, {m['runs_finished']}")
            check(all(len(c["seeds"]) == 2 for c in m["cells"]), "two seeds per cell")
        for ext in ("csv", "html", "xml"):
            check(os.path.getsize(os.path.join(results, "merged." + ext)) > 0, f"merged.{ext}")


def main(repo, binary):
    k = check_kubernetes(repo)
    check_workflow(repo)
    kustomize(repo)
    if k:
        run_for_real(k, binary)
    for f in failures:
        print("FAIL:", f)
    if not failures:
        print("OK: sweep Job, merge Job and workflow")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
