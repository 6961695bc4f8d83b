#pragma once
// A client group: one population of TCP clients from a scenario's clients[] entry, running on
// a single-threaded io_context, with its sockets in a lab namespace. Arrivals are open loop
// (constant or Poisson, wrk2-style: latency counts from each connection's intended start),
// closed loop, or load-balancer health checks. docs/clients.md describes the outcome classes.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "harness/clients/results.hpp"
#include "harness/core/asio.hpp"
#include "harness/lab/netns.hpp"
#include "harness/scenario/model.hpp"

namespace backlog_lab::clients {

/// Settings of a group that are not part of the scenario format.
struct group_options {
  std::size_t max_records = 100'000; ///< connection records kept; later ones are only counted
  bool record_local_port = false;    ///< fill connection_record::local_port (one more syscall)
};

namespace detail {
class group_state;
} // namespace detail

/// One client population. Not thread-safe: use it from the thread that runs its io_context.
/// Handlers keep its state alive, so it may be destroyed while handlers are still queued.
class client_group {
public:
  using clock = std::chrono::steady_clock;

  /// Prepares a group; nothing happens until start(). Sockets are created inside `ns` (which
  /// is duplicated, so the caller's handle may go). `source_addresses`: a heartbeat group's
  /// checker k sends from address k (modulo their number); other groups use them round robin;
  /// empty lets the kernel choose. `spec` is as the scenario reader validated it (its bounds are
  /// checked there only). Throws input_error (naming the group) for an invalid address or
  /// request size.
  client_group(net::io_context& io, const lab::netns& ns, const scenario::client_group_spec& spec,
               tcp::endpoint target, std::vector<std::string> source_addresses, std::uint64_t seed,
               clock::time_point run_start, group_options options = {});
  client_group(client_group&&) noexcept;
  client_group& operator=(client_group&&) noexcept;
  /// Aborts whatever is still in flight.
  ~client_group();

  /// Begins arrivals at run_start + spec.start_ms, or now if that has passed (a group started
  /// by a timeline event starts at the event). Intended start times count from that moment.
  /// After stop() it starts a fresh arrival sequence; after abort() it does nothing.
  void start();
  /// No new connections; those in flight finish by their own timeouts.
  void stop();
  /// Closes everything now (end of run): in-flight connections count as `aborted`.
  void abort();

  /// Nothing in flight.
  bool idle() const noexcept;
  /// Started, no longer making connections (stop, stop_ms or max_connections) and idle.
  bool finished() const noexcept;
  /// Connections between connect() and their outcome.
  std::size_t in_flight() const noexcept;
  /// Live results.
  const client_results& results() const noexcept;
  /// The spec it was built from.
  const scenario::client_group_spec& spec() const noexcept;
  /// Called once per finished connection (all of them, records cap or not), e.g. for the
  /// runner to attribute outcomes to what the listener looked like at the time. Also for the
  /// connections abort() ends, including the destructor's: it must stay callable until then.
  void on_finished(std::function<void(const connection_record&)> callback);

private:
  std::shared_ptr<detail::group_state> state_;
};

} // namespace backlog_lab::clients
