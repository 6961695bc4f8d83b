#pragma once
// The scenario model: plain data read from a scenario file (docs/scenario-format.md) and handed
// to the actors. No I/O here; reader.hpp builds it and reports errors with JSON paths.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "harness/scenario/enums.hpp"
#include "harness/scenario/exec_spec.hpp"

namespace backlog_lab::scenario {

/// Sysctls per namespace role: "clients", "node", "pods" (every pod namespace).
using sysctls_by_role = std::map<std::string, std::map<std::string, std::string>>;

/// How the lab's namespaces are wired. `nodeport`: a client namespace linked to a node
/// namespace (198.51.100.0/24, node 198.51.100.1, client group k at 198.51.100.(10+k)); the node
/// holds a bridge cbr0 at 203.0.113.1/24 with one namespace per backend ("pod") at
/// 203.0.113.(10+i).
struct topology_spec {
  topology_kind kind = topology_kind::nodeport; ///< the only kind so far
};

/// A fake pod (backends/).
struct backend_spec {
  std::string name;                       ///< unique; used by services and timeline events
  backend_kind kind = backend_kind::http; ///< a fake pod's protocol, or the user's program
  uint16_t port = 8080;                   ///< listening port inside the pod
  int backlog = 128;                      ///< listen() backlog (capped by the pod's somaxconn)
  uint32_t service_time_ms = 0;           ///< http: delay before each response
  bool keep_alive = false;                ///< http: keep the connection open after a response
  uint32_t response_bytes = 64;           ///< http: body size of each response
  exec_spec exec;                         ///< exec: the program (it must listen on `port`)
};

/// Endpoints on other nodes: `count` addresses in the lab's remote range (198.19.0.0/16), all
/// routed from the node to one stand-in pod that answers for every one of them
/// (docs/scenario-format.md#remote-endpoints).
struct remote_endpoints_spec {
  uint32_t count = 0;   ///< endpoints; 0 = none
  std::string stand_in; ///< the backend whose pod answers (on its port) for these addresses
};

/// A Kubernetes Service of type NodePort or LoadBalancer.
struct service_spec {
  std::string name; ///< "namespace/name:port", as kube-proxy's comments show
  service_type type = service_type::node_port; ///< the same node rules for both here
  uint16_t node_port = 0;                      ///< NodePort on the node (30000-32767 in Kubernetes)
  uint16_t port = 80;                          ///< ClusterIP port (rules only)
  std::string cluster_ip;             ///< optional ClusterIP (rules only), e.g. "10.96.0.10"
  std::vector<std::string> endpoints; ///< backend names, in order
  /// externalTrafficPolicy: Local sends NodePort traffic to this node's endpoints only.
  traffic_policy external_traffic_policy = traffic_policy::cluster;
  /// Ready endpoints on other nodes (outside the lab, at 10.244.1.10 + i): they make the Service
  /// one "with endpoints" in the rules but are never local (docs/proxy-iptables.md).
  uint32_t other_node_endpoints = 0;
  remote_endpoints_spec remote; ///< endpoints on other nodes, after the local ones
};

/// The kube-proxy simulator (proxy_sim/).
struct proxy_spec {
  proxy_mode mode = proxy_mode::iptables;   ///< proxy_sim's mode, or exec (the user's own proxy)
  proxy_preset preset = proxy_preset::v1_5; ///< behaviour by version (docs/reference/kube-proxy.md)
  int backlog = -1;           ///< listen() backlog for NodePort sockets; -1 = somaxconn (Go)
  uint32_t sync_delay_ms = 0; ///< iptables: delay between an endpoint change and the rules
  /// iptables: time between a sync's filter and nat commits (a big nat table's restore time)
  uint32_t nat_commit_delay_ms = 0;
  std::vector<uint32_t> dial_timeouts_ms = {250, 500, 1000, 2000}; ///< userspace: per try
  bool half_close = false; ///< userspace: pre-#18524 CloseWrite/CloseRead behaviour
  scenario::session_affinity session_affinity =
      scenario::session_affinity::none; ///< None or ClientIP
  uint32_t affinity_timeout_s = 10800;  ///< ClientIP affinity TTL (3 h)
  bool masquerade_all = false;          ///< iptables: --masquerade-all
  /// nftables 1.37: the KubeProxyNFTablesLocalhostNodePorts gate with `localhost` in
  /// nodePortAddresses: an accepting proxy on 127.0.0.1:NodePort (docs/proxy-nftables.md)
  bool localhost_node_ports = false;
  exec_spec exec; ///< exec: the program (it listens on the NodePorts)
};

/// A request size: fixed, or uniform in [min, max]; `large` adds occasional bodies.
struct size_spec {
  uint32_t min = 0;
  uint32_t max = 0;
};

/// A population of clients in the client namespace.
struct client_group_spec {
  std::string name;
  client_kind kind = client_kind::builtin;     ///< our own client population, or exec
  client_origin from = client_origin::clients; ///< node: dials from the node's namespace
  exec_spec exec;             ///< exec: the program (wrk, curl, nginx as a front proxy)
  uint16_t listen_port = 0;   ///< exec: a port it listens on (readiness; target_client)
  std::string target_client;  ///< connect to this exec client's address:listen_port
  std::string target_service; ///< connect to the node's NodePort of this service, or
  std::string target;         ///< "ADDR:PORT" within the lab (overrides target_service)
  scenario::arrival arrival = scenario::arrival::constant; ///< how connections are spaced
  double rate_per_s = 10;            ///< constant/poisson: connections per second
  uint32_t concurrency = 1;          ///< closed: connections kept in flight
  uint32_t interval_ms = 20000;      ///< heartbeat: one connection per interval per checker
  uint32_t checkers = 1;             ///< heartbeat: independent checkers (each its own address)
  size_spec request_bytes{100, 100}; ///< bytes sent after connecting (0 = send nothing)
  scenario::request_kind request_kind =
      scenario::request_kind::http;    ///< GET/POST of that size, raw, none
  uint32_t connect_timeout_ms = 5000;  ///< give up connecting after this
  uint32_t response_timeout_ms = 2000; ///< after sending, wait this long, then close (FIN)
  uint32_t start_ms = 0;               ///< when the group starts, from the run's start
  std::optional<uint32_t> stop_ms;     ///< when it stops making new connections
  uint32_t max_connections = 0;        ///< stop after this many (0 = unlimited)
};

/// One event on the timeline.
struct event_spec {
  uint32_t at_ms = 0;
  event_action action = event_action::kill;
  std::string target;                 ///< backend, service or client group name
  std::vector<std::string> endpoints; ///< set-endpoints: the service's new backends
};

/// An assertion on a named metric (docs/metrics.md): `metric op value` or `metric op other`.
struct expectation_spec {
  std::string metric;
  compare_op op = compare_op::eq;   ///< ==, !=, <, <=, >, >=
  std::optional<double> value;      ///< compare with a number, or
  std::optional<std::string> other; ///< with another metric
  std::string description;          ///< what it shows, printed in the report
};

/// Packets dropped on the link between the clients and the node, by nftables in the node's
/// namespace (the kernel here has no netem; docs/scenario-format.md#loss).
struct loss_spec {
  loss_direction direction = loss_direction::to_node; ///< clients -> node, or node -> clients
  std::optional<uint16_t> port; ///< the server's port: dport to-node, sport from-node; unset: any
  tcp_flag_set tcp_flags = tcp_flag_set::any; ///< which packets: by flags, or any
  double share = 0;                           ///< fraction of matching packets dropped, in [0, 1]
};

/// What one lab holds, set by its address plan (harness/lab/topology.hpp checks they agree):
/// pods get two /24s of 240 addresses and then 198.18.0.0/16 (bounded by the bridge's 1,024
/// ports, not by addresses), clients one /24 less the node's and routers', remote
/// endpoints 198.19.0.0/16 (each stand-in's share rounded up to a power of two).
struct limits {
  static constexpr std::size_t max_backends = 1023;
  static constexpr std::size_t max_client_addresses = 245;
  static constexpr std::size_t max_remote_endpoints = 65536;
};

/// A whole scenario file.
struct scenario {
  std::string name;
  std::string description;
  std::string source;           ///< file path or "builtin:NAME", for error messages
  uint32_t duration_ms = 10000; ///< the run stops then; every run is bounded
  uint32_t sample_interval_ms = 100;
  uint32_t drain_ms = 0;        ///< after clients stop, wait this long before the final census
  std::optional<uint64_t> seed; ///< random choices; default from the clock, printed
  topology_spec topology;
  sysctls_by_role sysctls;
  std::optional<proxy_spec> proxy;
  std::vector<service_spec> services;
  std::vector<backend_spec> backends;
  std::vector<client_group_spec> clients;
  std::vector<event_spec> timeline;
  std::vector<loss_spec> loss;
  std::vector<expectation_spec> expectations;
};

} // namespace backlog_lab::scenario
