#pragma once
// JSON forms of the observer's results (documented in docs/observe-json.md). Output only.
// The census's forms are written once, by the write_json functions through json_writer (dump(2)
// text, streamed); the to_json trees are that text parsed back, so both always agree.
#include <nlohmann/json.hpp>

#include "harness/observer/census.hpp"
#include "harness/observer/counters.hpp"
#include "harness/observer/json_writer.hpp"
#include "harness/observer/sampler.hpp"

namespace backlog_lab::observer {

/// "inet" or "inet6".
const char* family_name(std::uint8_t family) noexcept;

/// ss's shutdown marker: "<->" (neither side shut), "-->" (peer's FIN received), "<--", "---".
std::string shutdown_marker(std::uint8_t shutdown);

/// Writes a socket as to_json(s) prints it.
void write_json(json_writer& w, const tcp_socket& s);
/// Writes a listener summary as to_json(l) prints it.
void write_json(json_writer& w, const listener_summary& l);
/// Writes a census as to_json(c, with_sockets) prints it.
void write_json(json_writer& w, const census& c, bool with_sockets = true);
/// Writes a census whose "sockets" come from a second walk of `sockets`'s namespace as they
/// arrive, none kept (census_reader::walk_pipelined: the dump runs beside the writing);
/// `summary` gives the rest (a summary_only census).
void write_json(json_writer& w, const census& summary, census_reader& sockets);
/// Writes counters as to_json(counters) prints them.
void write_json(json_writer& w, const counter_map& counters);
/// Writes per-state counts as to_json(counts) prints them.
void write_json(json_writer& w, const state_counts& counts);

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
