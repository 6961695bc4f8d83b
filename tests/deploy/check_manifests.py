#!/usr/bin/env python3
"""Offline checks of deploy/kubernetes/backlog-lab-exporter.yaml (no cluster needed).

kubectl's client-side dry run still asks an API server for its schema, so this parses the YAML
(python3-yaml) and checks what the DaemonSet must be: host PID and network namespaces, exactly
the capabilities the exporter needs (docs/exporter.md), a read-only root file system, resource
limits, probes and Prometheus annotations on the port it listens on, a Service selecting its
pods. Then it starts the real binary with the container's arguments (the listen address moved to
127.0.0.1:0) and checks that it serves /healthz and /metrics.

usage: check_manifests.py MANIFEST BACKLOG_LAB_BINARY
"""
import subprocess
import sys
import urllib.request

import yaml

NEEDED_CAPS = {"SYS_ADMIN", "SYS_PTRACE", "DAC_READ_SEARCH"}
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def main(manifest, binary):
    with open(manifest) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    for d in docs:
        for key in ("apiVersion", "kind", "metadata"):
            check(key in d, f"a document lacks {key}: {d}")
    by_kind = {d["kind"]: d for d in docs}
    ds, svc = by_kind.get("DaemonSet"), by_kind.get("Service")
    check(ds is not None and ds["apiVersion"] == "apps/v1", "an apps/v1 DaemonSet")
    check(svc is not None and svc["apiVersion"] == "v1", "a v1 Service")
    if ds is None or svc is None:
        return
    spec = ds["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    check(spec["selector"]["matchLabels"].items() <= labels.items(),
          "the DaemonSet's selector matches its pod labels")
    check(pod.get("hostPID") is True, "hostPID: true")
    check(pod.get("hostNetwork") is True, "hostNetwork: true")
    check(pod.get("automountServiceAccountToken") is False, "no service account token")
    check(len(pod["containers"]) == 1, "one container")
    c = pod["containers"][0]
    sc = c.get("securityContext", {})
    check(sc.get("privileged") is not True, "not privileged")
    check(sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation: false")
    check(sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem: true")
    caps = sc.get("capabilities", {})
    check(caps.get("drop") == ["ALL"], "capabilities.drop: [ALL]")
    check(set(caps.get("add", [])) == NEEDED_CAPS,
          f"capabilities.add is exactly {sorted(NEEDED_CAPS)}, got {caps.get('add')}")
    limits = c.get("resources", {}).get("limits", {})
    check("cpu" in limits and "memory" in limits, "cpu and memory limits")
    args = c["args"]
    check(args[:1] == ["export"] and "--all-netns" in args, "args: export --all-netns ...")
    listen = args[args.index("--listen") + 1] if "--listen" in args else ""
    port = int(listen.rsplit(":", 1)[1]) if ":" in listen else -1
    ports = {p["name"]: p for p in c.get("ports", [])}
    check(ports.get("metrics", {}).get("containerPort") == port,
          f"the metrics port is the --listen port {port}")
    for probe in ("livenessProbe", "readinessProbe"):
        get = c.get(probe, {}).get("httpGet", {})
        check(get.get("path") == "/healthz" and get.get("port") == port,
              f"{probe} on /healthz:{port}")
    for where, meta in (("pod", spec["template"]["metadata"]), ("Service", svc["metadata"])):
        ann = meta.get("annotations", {})
        check(ann.get("prometheus.io/scrape") == "true" and
              ann.get("prometheus.io/port") == str(port) and
              ann.get("prometheus.io/path") == "/metrics",
              f"{where} annotations prometheus.io/scrape, port {port}, path /metrics")
    check(svc["spec"]["selector"].items() <= labels.items(),
          "the Service selects the DaemonSet's pods")
    check(svc["metadata"]["namespace"] == ds["metadata"]["namespace"], "same namespace")
    check(any(p.get("targetPort") in ("metrics", port) for p in svc["spec"]["ports"]),
          "the Service targets the metrics port")

    # The container's arguments, run for real (on loopback, any port).
    run_args = list(args)
    run_args[run_args.index("--listen") + 1] = "127.0.0.1:0"
    proc = subprocess.Popen([binary] + run_args, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        check("serving http://127.0.0.1:" in line, f"the binary starts with {args}: {line}")
        if "serving http://" in line:
            base = line.split("serving ")[1].split("/metrics")[0]
            with urllib.request.urlopen(base + "/healthz", timeout=10) as r:
                check(r.status == 200, "/healthz answers 200")
            with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
                body = r.read().decode()
                check("backlog_lab_exporter_namespaces" in body, "/metrics answers")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    check(proc.returncode == 0, f"exit 0 on SIGTERM, got {proc.returncode}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
    for f in failures:
        print("FAIL:", f)
    print("ok" if not failures else f"{len(failures)} failure(s)")
    sys.exit(1 if failures else 0)
