#pragma once
// What a client group measured: every connection's outcome, classified by where it failed
// (docs/clients.md), connect and response latency from each connection's intended start, and a
// bounded list of per-connection records.
#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "harness/clients/latency_histogram.hpp"

namespace backlog_lab::clients {

/// How one connection ended, by where it failed (docs/clients.md has the kernel sites).
enum class outcome : std::uint8_t {
  answered,       ///< a complete response (or, with nothing to wait for, the connect itself)
  syn_unanswered, ///< connect timed out: every SYN was dropped (e.g. a full accept queue)
  unanswered,     ///< connected, request sent, no complete response before the timeout
  closed_early,   ///< connected, then the peer closed (FIN) before a complete response
  refused,        ///< ECONNREFUSED: a RST answered the SYN (no listener, REJECT)
  reset,          ///< ECONNRESET/EPIPE after connecting (backend killed, abort_on_overflow)
  other,          ///< anything else; the errno is kept (EHOSTUNREACH, EMFILE, EPROTO, ...)
  aborted,        ///< still in flight when the group was aborted at the end of the run
};
inline constexpr std::size_t outcome_count = 8;

/// "answered", "syn_unanswered", ... as used in metrics and reports.
std::string_view to_string(outcome kind) noexcept;

/// Connections per outcome.
struct outcome_counts {
  std::array<std::uint64_t, outcome_count> by_kind{};

  /// The count of one outcome.
  std::uint64_t& operator[](outcome kind) noexcept {
    return by_kind[static_cast<std::size_t>(kind)];
  }
  /// The count of one outcome.
  std::uint64_t operator[](outcome kind) const noexcept {
    return by_kind[static_cast<std::size_t>(kind)];
  }
  /// Every finished connection.
  std::uint64_t total() const noexcept;
};

/// One connection, times from the run's start. Kept for the first max_records connections.
struct connection_record {
  std::chrono::nanoseconds intended_start{0}; ///< when the arrival process wanted it
  std::chrono::nanoseconds started{0};        ///< when connect() was called
  std::chrono::nanoseconds connected{-1};     ///< handshake done; -1 if it never was
  std::chrono::nanoseconds finished{0};       ///< outcome decided, socket closed
  outcome kind = outcome::other;
  std::uint16_t error = 0;          ///< errno for `other` (and the error behind refused/reset)
  std::uint16_t local_port = 0;     ///< 0 if it never connected
  std::uint16_t source_index = 0;   ///< which source address (heartbeat: which checker)
  std::uint16_t http_status = 0;    ///< 0 unless an HTTP status line was read
  std::uint32_t request_bytes = 0;  ///< bytes it meant to send
  std::uint32_t response_bytes = 0; ///< bytes it received
};

/// Everything a group measured; live while it runs (single-threaded: read it between handlers).
struct client_results {
  std::uint64_t started = 0;                 ///< connections started (socket creation attempted)
  std::uint64_t connected = 0;               ///< handshakes completed
  outcome_counts counts;                     ///< finished connections by outcome
  std::map<int, std::uint64_t> other_errors; ///< errno -> count, for outcome::other
  /// Answered HTTP responses by status class: [0] no status (not HTTP), [1] 1xx ... [5] 5xx.
  std::array<std::uint64_t, 6> status_classes{};
  latency_histogram connect_latency;         ///< intended start -> handshake done (connected ones)
  latency_histogram response_latency;        ///< intended start -> complete response (answered ones
                                             ///< that waited for a response)
  std::uint64_t peak_in_flight = 0;          ///< most connections in flight at once
  std::chrono::nanoseconds max_start_lag{0}; ///< worst started - intended (generator lag)
  std::vector<connection_record> records;    ///< the first max_records connections, in order
  std::uint64_t records_dropped = 0;         ///< finished connections beyond max_records
};

/// Flat numeric metrics of a group, named as the runner exposes them after `clients.NAME.`:
/// started, connected, finished, every outcome name, `<outcome>_share` (of finished),
/// `connect_ms.{count,min,p50,p90,p99,max}`, `response_ms.{...}`, `peak_in_flight`,
/// `max_start_lag_ms`, `http_2xx` ... `http_5xx`, `errno.<N>` for each `other` errno.
std::map<std::string, double> metrics(const client_results& results);

} // namespace backlog_lab::clients
