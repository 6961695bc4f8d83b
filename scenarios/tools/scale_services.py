#!/usr/bin/env python3
"""Writes scenarios/scale-10000-services.json: a node with 10,000 Services, most of whose endpoints
are on other nodes (remote endpoints answered by two stand-in pods, docs/scenario-format.md).

Ten Services have two local pods and two remote endpoints each; the other 9,990 one remote
endpoint each. Clients reach a few of them by NodePort while the rules are in place; after the
clients stop, one Service loses a local endpoint, so kube-proxy rewrites all 10,000 Services once
more. Both syncs' wall times are the report's `proxy.rule_sync_ms` (docs/proxy-iptables.md).
"""
import json
import pathlib

SERVICES = 10_000
LOCAL = 10  # services with local pods as well
FIRST_NODE_PORT = 20_000  # 10,000 NodePorts do not fit in Kubernetes' 30000-32767


def name(i):
    return f"scale/svc-{i:05d}:http"


def service(i):
    s = {
        "name": name(i),
        "node_port": FIRST_NODE_PORT + i,
        "cluster_ip": f"10.96.{i // 250}.{i % 250 + 1}",
        "remote_endpoints": {"count": 2 if i < LOCAL else 1,
                             "stand_in": "node-b" if i % 2 == 0 else "node-c"},
    }
    if i < LOCAL:
        s["endpoints"] = ["web-0", "web-1"]
    return s


TARGETS = [0, 1, 4_999, 5_000, 9_998, 9_999]

scenario = {
    "name": "scale-10000-services",
    "description": (
        "10,000 Services on one node, as a large cluster has them: 9,990 with one endpoint on "
        "another node, 10 with two local pods and two remote endpoints. Remote endpoints are "
        "addresses of 198.19.0.0/16 routed from the node to two stand-in pods (one per 'other "
        "node') that answer for all of them. kube-proxy 1.24 (no held ports) installs about "
        "65,000 lines of rules in one iptables-restore, then rewrites them all when one Service "
        "changes: each sync takes seconds, and for that long the node's rules are the old ones "
        "(the window of kubernetes#106713). Clients reach six Services by NodePort, local and "
        "remote endpoints alike."),
    "duration_ms": 1500,
    "drain_ms": 100,
    "sample_interval_ms": 500,
    "seed": 13,
    "topology": {"kind": "nodeport"},
    "proxy": {"mode": "iptables", "preset": "1.24", "sync_delay_ms": 0},
    "backends": [
        {"name": "web-0", "port": 8080},
        {"name": "web-1", "port": 8080},
        {"name": "node-b", "port": 8080},
        {"name": "node-c", "port": 8080},
    ],
    "services": [service(i) for i in range(SERVICES)],
    "clients": [
        {"name": f"to-{i:05d}", "target_service": name(i), "arrival": "constant",
         "rate_per_s": 20, "stop_ms": 1000, "connect_timeout_ms": 1000,
         "response_timeout_ms": 1000}
        for i in TARGETS
    ],
    "timeline": [
        {"at_ms": 1200, "action": "set-endpoints", "target": name(0), "endpoints": ["web-0"]},
    ],
    "expectations": [
        {"metric": "proxy.rule_syncs", "op": "==", "value": 2,
         "description": "the install and one full rewrite after the endpoint change"},
        {"metric": "proxy.rule_sync_ms.install", "op": ">=", "value": 300,
         "description": "installing 10,000 Services' rules takes kube-proxy's sync far beyond "
                        "a packet's time: a window in which the node's rules are not yet what "
                        "the API says"},
        {"metric": "proxy.rule_sync_ms.last", "op": ">=", "value": 300,
         "description": "so does every later sync: iptables mode rewrites every Service for one "
                        "changed endpoint"},
        {"metric": "min:clients.*.answered_share", "op": "==", "value": 1,
         "description": "every connection to a NodePort is answered, through local pods and "
                        "through the routed remote endpoints alike"},
        {"metric": "backend.node-b.accepted", "op": ">", "value": 0,
         "description": "the stand-in of one other node answers for its endpoints"},
        {"metric": "backend.node-c.accepted", "op": ">", "value": 0,
         "description": "and the other's"},
        {"metric": "counter.node.TcpExtListenOverflows", "op": "==", "value": 0,
         "description": "nothing overflows: scale alone costs sync time, not queues"},
    ],
}

out = pathlib.Path(__file__).resolve().parent.parent / "scale-10000-services.json"
with out.open("w") as f:
    f.write("{\n")
    items = list(scenario.items())
    for k, (key, value) in enumerate(items):
        end = ",\n" if k + 1 < len(items) else "\n"
        if key == "services":
            f.write(f'  "services": [\n')
            f.write(",\n".join("    " + json.dumps(s, separators=(", ", ": ")) for s in value))
            f.write("\n  ]" + end)
        else:
            f.write(f"  {json.dumps(key)}: {json.dumps(value, indent=2).replace(chr(10), chr(10) + '  ')}{end}")
    f.write("}\n")
