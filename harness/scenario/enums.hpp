#pragma once
// The closed sets of the scenario format (docs/scenario-format.md) as enums, each with the one
// table of its spellings. The reader turns text into these once; actors switch on them and never
// parse strings again; reports print name_of().
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace backlog_lab::scenario {

/// How the lab's namespaces are wired (topology_spec::kind).
enum class topology_kind : std::uint8_t { nodeport };

/// A Kubernetes Service's type; both are served by the same node rules in the lab.
enum class service_type : std::uint8_t { node_port, load_balancer };

/// Which way a loss rule's packets travel on the clients' link.
enum class loss_direction : std::uint8_t { to_node, from_node };

/// The TCP packets a loss rule picks: any, or by flags ("ack" is ACK alone: the handshake's
/// final ACK and pure ACKs).
enum class tcp_flag_set : std::uint8_t { any, syn, syn_ack, ack, fin, rst };

/// What a backend is: one of our fake pods' protocols, or the user's program.
enum class backend_kind : std::uint8_t { http, grpc_preface, echo, sink, exec };

/// Who proxies the NodePorts: proxy_sim in one of kube-proxy's modes, or the user's program.
enum class proxy_mode : std::uint8_t { iptables, userspace, exec, nftables };

/// Which kube-proxy release's behaviour to reproduce (docs/reference/kube-proxy.md section 4).
enum class proxy_preset : std::uint8_t {
  v1_5,   ///< no NodePort REJECT: traffic of a service without endpoints reaches the held port
  v1_6_5, ///< REJECT in filter KUBE-SERVICES, jumped from INPUT and OUTPUT
  v1_20,  ///< REJECT in KUBE-EXTERNAL-SERVICES, KUBE-XLB, ports held per IP family (0.0.0.0:N)
  v1_24,  ///< no port holding; REJECT in KUBE-EXTERNAL-SERVICES (1.10 layout)
  v1_29,  ///< nftables mode, alpha layout (docs/proxy-nftables.md)
  v1_33,  ///< nftables mode, GA layout (docs/proxy-nftables.md)
  v1_37,  ///< nftables mode, 1.33 layout; may add the localhost NodePort proxy (alpha gate)
};

/// A Service's externalTrafficPolicy: NodePort traffic to any endpoint, or to this node's only.
enum class traffic_policy : std::uint8_t { cluster, local };

/// A Service's sessionAffinity.
enum class session_affinity : std::uint8_t { none, client_ip };

/// Whose client population it is: ours, or the user's program.
enum class client_kind : std::uint8_t { builtin, exec };

/// Where a client group runs: the clients' namespace (across the veth link), or the node's own
/// (a node-local program dialling a NodePort on 127.0.0.1).
enum class client_origin : std::uint8_t { clients, node };

/// How a built-in client group spaces its connections.
enum class arrival : std::uint8_t { constant, poisson, closed, heartbeat };

/// What a built-in client sends after connecting.
enum class request_kind : std::uint8_t { http, raw, none };

/// What a timeline event does.
enum class event_action : std::uint8_t {
  kill,
  freeze,
  resume,
  vanish,
  restart,
  close_listener,
  reset_all,
  set_endpoints,
  start_clients,
  stop_clients,
};

/// An expectation's comparison.
enum class compare_op : std::uint8_t { eq, ne, lt, le, gt, ge };

/// The spellings of enum E in scenario files, in the order docs list them.
template <class E> struct enum_names;

template <> struct enum_names<topology_kind> {
  static constexpr std::array<std::pair<topology_kind, std::string_view>, 1> table{
      {{topology_kind::nodeport, "nodeport"}}};
};
template <> struct enum_names<service_type> {
  static constexpr std::array<std::pair<service_type, std::string_view>, 2> table{
      {{service_type::node_port, "NodePort"}, {service_type::load_balancer, "LoadBalancer"}}};
};
template <> struct enum_names<loss_direction> {
  static constexpr std::array<std::pair<loss_direction, std::string_view>, 2> table{
      {{loss_direction::to_node, "to-node"}, {loss_direction::from_node, "from-node"}}};
};
template <> struct enum_names<tcp_flag_set> {
  static constexpr std::array<std::pair<tcp_flag_set, std::string_view>, 6> table{
      {{tcp_flag_set::any, "any"},
       {tcp_flag_set::syn, "syn"},
       {tcp_flag_set::syn_ack, "syn-ack"},
       {tcp_flag_set::ack, "ack"},
       {tcp_flag_set::fin, "fin"},
       {tcp_flag_set::rst, "rst"}}};
};
template <> struct enum_names<backend_kind> {
  static constexpr std::array<std::pair<backend_kind, std::string_view>, 5> table{
      {{backend_kind::http, "http"},
       {backend_kind::grpc_preface, "grpc-preface"},
       {backend_kind::echo, "echo"},
       {backend_kind::sink, "sink"},
       {backend_kind::exec, "exec"}}};
};
template <> struct enum_names<proxy_mode> {
  static constexpr std::array<std::pair<proxy_mode, std::string_view>, 4> table{
      {{proxy_mode::iptables, "iptables"},
       {proxy_mode::userspace, "userspace"},
       {proxy_mode::exec, "exec"},
       {proxy_mode::nftables, "nftables"}}};
};
template <> struct enum_names<proxy_preset> {
  static constexpr std::array<std::pair<proxy_preset, std::string_view>, 7> table{
      {{proxy_preset::v1_5, "1.5"},
       {proxy_preset::v1_6_5, "1.6.5"},
       {proxy_preset::v1_20, "1.20"},
       {proxy_preset::v1_24, "1.24"},
       {proxy_preset::v1_29, "1.29"},
       {proxy_preset::v1_33, "1.33"},
       {proxy_preset::v1_37, "1.37"}}};
};
template <> struct enum_names<traffic_policy> {
  static constexpr std::array<std::pair<traffic_policy, std::string_view>, 2> table{
      {{traffic_policy::cluster, "Cluster"}, {traffic_policy::local, "Local"}}};
};
template <> struct enum_names<session_affinity> {
  static constexpr std::array<std::pair<session_affinity, std::string_view>, 2> table{
      {{session_affinity::none, "None"}, {session_affinity::client_ip, "ClientIP"}}};
};
template <> struct enum_names<client_kind> {
  static constexpr std::array<std::pair<client_kind, std::string_view>, 2> table{
      {{client_kind::builtin, "builtin"}, {client_kind::exec, "exec"}}};
};
template <> struct enum_names<client_origin> {
  static constexpr std::array<std::pair<client_origin, std::string_view>, 2> table{
      {{client_origin::clients, "clients"}, {client_origin::node, "node"}}};
};
template <> struct enum_names<arrival> {
  static constexpr std::array<std::pair<arrival, std::string_view>, 4> table{
      {{arrival::constant, "constant"},
       {arrival::poisson, "poisson"},
       {arrival::closed, "closed"},
       {arrival::heartbeat, "heartbeat"}}};
};
template <> struct enum_names<request_kind> {
  static constexpr std::array<std::pair<request_kind, std::string_view>, 3> table{
      {{request_kind::http, "http"}, {request_kind::raw, "raw"}, {request_kind::none, "none"}}};
};
template <> struct enum_names<event_action> {
  static constexpr std::array<std::pair<event_action, std::string_view>, 10> table{
      {{event_action::kill, "kill"},
       {event_action::freeze, "freeze"},
       {event_action::resume, "resume"},
       {event_action::vanish, "vanish"},
       {event_action::restart, "restart"},
       {event_action::close_listener, "close-listener"},
       {event_action::reset_all, "reset-all"},
       {event_action::set_endpoints, "set-endpoints"},
       {event_action::start_clients, "start-clients"},
       {event_action::stop_clients, "stop-clients"}}};
};
template <> struct enum_names<compare_op> {
  static constexpr std::array<std::pair<compare_op, std::string_view>, 6> table{
      {{compare_op::eq, "=="},
       {compare_op::ne, "!="},
       {compare_op::lt, "<"},
       {compare_op::le, "<="},
       {compare_op::gt, ">"},
       {compare_op::ge, ">="}}};
};

/// The spelling of `value` in scenario files and reports.
template <class E> constexpr std::string_view name_of(E value) noexcept {
  for (const auto& [e, name] : enum_names<E>::table)
    if (e == value) return name;
  return "?";
}

/// The value spelled `text`, if it is one.
template <class E> constexpr std::optional<E> enum_from_name(std::string_view text) noexcept {
  for (const auto& [e, name] : enum_names<E>::table)
    if (name == text) return e;
  return std::nullopt;
}

/// Every spelling of E, quoted and comma-separated, for error messages.
template <class E> std::string enum_choices() {
  std::string list;
  for (const auto& [e, name] : enum_names<E>::table)
    list += (list.empty() ? "\"" : ", \"") + std::string(name) + "\"";
  return list;
}

} // namespace backlog_lab::scenario
