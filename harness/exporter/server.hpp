#pragma once
// The HTTP side of `backlog-lab export`: GET /metrics over Boost.Beast, bounded against abuse.
// Scrapes run on a collector thread, so the server keeps answering (or timing out) whatever a
// namespace does; scrapes that arrive while one runs share its result.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "harness/core/asio.hpp"

namespace backlog_lab::exporter {

/// Limits that keep the server up under slow, many or malformed clients.
struct server_limits {
  std::size_t max_connections = 32; ///< at the limit, the oldest connection waiting for a
                                    ///< request is closed to make room; if none is, the new one
  std::chrono::milliseconds request_timeout{5000}; ///< to receive a whole request head
  std::chrono::milliseconds write_timeout{10000};  ///< to send a whole response
  std::chrono::milliseconds scrape_timeout{10000}; ///< to wait for a collection (else 503)
  std::uint32_t header_limit = 8192;               ///< request line + headers (else 431)
  std::size_t max_requests_per_connection = 1000;
};

/// Counts of what the server did, for its own metrics.
struct server_stats {
  std::uint64_t requests_ok = 0;       ///< 200 answers
  std::uint64_t requests_bad = 0;      ///< 400, 404, 405, 413, 431 answers
  std::uint64_t scrape_timeouts = 0;   ///< 503 answers: no collection within scrape_timeout
  std::uint64_t closed_timeout = 0;    ///< connections closed for a request or write timeout
  std::uint64_t closed_evicted = 0;    ///< closed to make room for a new one
  std::uint64_t rejected_at_limit = 0; ///< new connections refused at max_connections
  std::uint64_t collections = 0;       ///< collections run
};

/// Produces the metrics text; runs on the collector thread, may throw.
using collect_fn = std::function<std::string()>;

/// An HTTP server for /metrics on one io_context (single-threaded: every handler runs there).
class metrics_server {
public:
  /// Binds `at` (port 0: any free port) and starts accepting on `io`; `collect` runs on a
  /// thread of its own. Without `at` it serves no HTTP, only scrape(). Throws lab_error if the
  /// address cannot be bound.
  metrics_server(net::io_context& io, const std::optional<tcp::endpoint>& at, collect_fn collect,
                 server_limits limits = {});
  ~metrics_server();
  metrics_server(const metrics_server&) = delete;
  metrics_server& operator=(const metrics_server&) = delete;

  /// Where it listens (the port chosen when asked for 0).
  tcp::endpoint local_endpoint() const;
  /// Stops accepting and closes every connection (on the io_context's thread).
  void stop();
  const server_stats& stats() const noexcept;
  /// Connections open now.
  std::size_t open_connections() const noexcept;
  /// One collection, shared with any already running; null if none finished within the scrape
  /// timeout or it failed (the error is logged to stderr once per failure).
  net::awaitable<std::shared_ptr<const std::string>> scrape();

private:
  struct impl;
  std::unique_ptr<net::thread_pool> pool_; ///< the collector thread
  std::shared_ptr<impl> impl_;
};

/// The server's own metrics in the text format (appended to every /metrics answer).
std::string render_server_stats(const server_stats& s, std::size_t open_connections);

} // namespace backlog_lab::exporter
