#pragma once
// The census's JSON as it was built before it was streamed (an nlohmann tree, then dump(2)),
// frozen here as the reference the streamed writer must equal byte for byte. Test-only: do not
// change it to follow the writer; a change of the format changes both, deliberately.
#include <nlohmann/json.hpp>

#include "harness/observer/census.hpp"
#include "harness/observer/json.hpp"

namespace backlog_lab::observer::reference {

inline nlohmann::json tree(const state_counts& counts) {
  nlohmann::json j = nlohmann::json::object();
  for (std::uint8_t i = 1; i < tcp_state_slots; ++i) {
    auto s = static_cast<tcp_state>(i);
    if (counts[s]) j[std::string(state_name(s))] = counts[s];
  }
  return j;
}

inline nlohmann::json tree(const tcp_socket& s) {
  return nlohmann::json{
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

inline nlohmann::json tree(const listener_summary& l) {
  nlohmann::json queued = nlohmann::json::array();
  for (const auto& q : l.queued)
    queued.push_back({{"state", state_name(q.state)}, {"recv_q", q.recv_q}, {"count", q.count}});
  nlohmann::json peers = nlohmann::json::array();
  for (const auto& p : l.peers)
    peers.push_back({{"address", p.address.to_string()}, {"count", p.count}, {"bytes", p.bytes}});
  return nlohmann::json{
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
      {"children", tree(l.children)},
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

inline nlohmann::json tree(const census& c, bool with_sockets) {
  nlohmann::json listeners = nlohmann::json::array();
  for (const auto& l : c.listeners)
    listeners.push_back(tree(l));
  nlohmann::json j{
      {"socket_count", c.socket_count},
      {"totals", tree(c.totals)},
      {"unaccepted_close_wait", c.unaccepted_close_wait},
      {"listeners", std::move(listeners)},
  };
  if (with_sockets) {
    nlohmann::json sockets = nlohmann::json::array();
    for (const auto& s : c.sockets)
      sockets.push_back(tree(s));
    j["sockets"] = std::move(sockets);
  }
  return j;
}

inline nlohmann::json tree(const counter_map& counters) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, value] : counters)
    j[name] = value;
  return j;
}

} // namespace backlog_lab::observer::reference
