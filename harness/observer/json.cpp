#include "harness/observer/json.hpp"

#include <sys/socket.h>

namespace backlog_lab::observer {

using nlohmann::json;

const char* family_name(std::uint8_t family) noexcept {
  return family == AF_INET6 ? "inet6" : family == AF_INET ? "inet" : "unknown";
}

std::string shutdown_marker(std::uint8_t shutdown) {
  // iproute2 misc/ss.c: bit 0 (RCV_SHUTDOWN) turns '<' into '-', bit 1 (SEND_SHUTDOWN) '>'.
  std::string m = "<->";
  if (shutdown & 1) m[0] = '-';
  if (shutdown & 2) m[2] = '-';
  return m;
}

json to_json(const state_counts& counts) {
  json j = json::object();
  for (std::uint8_t i = 1; i < tcp_state_slots; ++i) {
    auto s = static_cast<tcp_state>(i);
    if (counts[s]) j[std::string(state_name(s))] = counts[s];
  }
  return j;
}

json to_json(const tcp_socket& s) {
  return json{
      {"state", state_name(s.state)},
      {"recv_q", s.recv_q},
      {"send_q", s.send_q},
      {"local", format_endpoint(s.local, s.v6only)},
      {"peer", format_endpoint(s.remote, s.v6only)},
      {"family", family_name(s.family)},
      {"local_address", s.local.address.to_string()},
      {"local_port", s.local.port},
      {"peer_address", s.remote.address.to_string()},
      {"peer_port", s.remote.port},
      {"inode", s.inode},
      {"uid", s.uid},
      {"v6only", s.v6only},
      {"shutdown", shutdown_marker(s.shutdown)},
      {"ifindex", s.ifindex},
  };
}

json to_json(const listener_summary& l) {
  json queued = json::array();
  for (const auto& q : l.queued)
    queued.push_back({{"state", state_name(q.state)}, {"recv_q", q.recv_q}, {"count", q.count}});
  json peers = json::array();
  for (const auto& p : l.peers)
    peers.push_back({{"address", p.address.to_string()}, {"count", p.count}, {"bytes", p.bytes}});
  return json{
      {"local", format_endpoint(l.local, l.v6only)},
      {"family", family_name(l.local.address.family)},
      {"address", l.local.address.to_string()},
      {"port", l.local.port},
      {"v6only", l.v6only},
      {"inode", l.inode},
      {"uid", l.uid},
      {"accept_queue", l.accept_queue},
      {"backlog", l.backlog},
      {"full", l.full},
      {"drops", l.drops},
      {"children", to_json(l.children)},
      {"unaccepted",
       {{"count", l.unaccepted()},
        {"bytes", l.unaccepted_bytes()},
        {"established", l.unaccepted_established},
        {"established_bytes", l.unaccepted_established_bytes},
        {"close_wait", l.unaccepted_close_wait},
        {"close_wait_bytes", l.unaccepted_close_wait_bytes},
        {"queued", std::move(queued)},
        {"peers", std::move(peers)}}},
      {"owned", l.owned},
      {"kernel_only", l.kernel_only},
  };
}

json to_json(const census& c, bool with_sockets) {
  json listeners = json::array();
  for (const auto& l : c.listeners)
    listeners.push_back(to_json(l));
  json j{
      {"socket_count", c.socket_count},
      {"totals", to_json(c.totals)},
      {"unaccepted_close_wait", c.unaccepted_close_wait},
      {"listeners", std::move(listeners)},
  };
  if (with_sockets) {
    json sockets = json::array();
    for (const auto& s : c.sockets)
      sockets.push_back(to_json(s));
    j["sockets"] = std::move(sockets);
  }
  return j;
}

json to_json(const counter_map& counters) {
  json j = json::object();
  for (const auto& [name, value] : counters)
    j[name] = value;
  return j;
}

json to_json(const timeline& t) {
  json listeners = json::array();
  for (const auto& l : t.listeners) {
    json jl{
        {"namespace", t.namespaces.at(l.ns)},
        {"local", format_endpoint(l.local, l.v6only)},
        {"address", l.local.address.to_string()},
        {"port", l.local.port},
        {"backlog", l.backlog},
        {"peak_accept_queue", l.peak_accept_queue},
        {"drops", l.drops},
        {"time_full_ms", l.time_full_ms},
        {"first_full_ms", l.first_full_ms ? json(*l.first_full_ms) : json(nullptr)},
        {"first_seen_ms", l.first_seen_ms},
        {"last_seen_ms", l.last_seen_ms},
    };
    listeners.push_back(std::move(jl));
  }
  json samples = json::array();
  for (const auto& s : t.samples) {
    json ns = json::array();
    for (const auto& p : s.namespaces) {
      json counters = json::object();
      for (std::size_t i = 0; i < p.counters.size() && i < t.counter_names.size(); ++i)
        counters[t.counter_names[i]] = p.counters[i];
      ns.push_back({{"totals", to_json(p.totals)},
                    {"unaccepted_close_wait", p.unaccepted_close_wait},
                    {"counters", std::move(counters)}});
    }
    json ls = json::array();
    for (const auto& l : s.listeners)
      ls.push_back({{"listener", l.listener},
                    {"accept_queue", l.accept_queue},
                    {"backlog", l.backlog},
                    {"drops", l.drops}});
    samples.push_back(
        {{"t_ms", s.t_ms}, {"namespaces", std::move(ns)}, {"listeners", std::move(ls)}});
  }
  return json{
      {"interval_ms", t.interval.count()}, {"namespaces", t.namespaces},
      {"counter_names", t.counter_names},  {"listeners", std::move(listeners)},
      {"samples", std::move(samples)},
  };
}

} // namespace backlog_lab::observer
