#pragma once
// JSON forms of the observer's results (documented in docs/observe-json.md). Output only.
#include <nlohmann/json.hpp>

#include "harness/observer/census.hpp"
#include "harness/observer/counters.hpp"
#include "harness/observer/sampler.hpp"

namespace backlog_lab::observer {

/// "inet" or "inet6".
const char* family_name(std::uint8_t family) noexcept;

/// ss's shutdown marker: "<->" (neither side shut), "-->" (peer's FIN received), "<--", "---".
std::string shutdown_marker(std::uint8_t shutdown);

/// A socket: state, recv_q, send_q, local/peer as ss prints them and split, inode, uid, ...
nlohmann::json to_json(const tcp_socket& s);
/// A listener summary: accept_queue, backlog, full, children by state, un-accepted, peers.
nlohmann::json to_json(const listener_summary& l);
/// A census; `with_sockets` adds the socket list (when the census has one).
nlohmann::json to_json(const census& c, bool with_sockets = true);
/// Counters as an object {name: value}, in name order.
nlohmann::json to_json(const counter_map& counters);
/// Non-zero per-state counts as {"ESTAB": n, ...}.
nlohmann::json to_json(const state_counts& counts);
/// A sampler's timeline: listeners with derived stats, and every sample.
nlohmann::json to_json(const timeline& t);

} // namespace backlog_lab::observer
