#pragma once
// Fake pods: a real listener per backend in its pod's network namespace, served by coroutines on
// the caller's io_context, with abrupt stops that do to the kernel what a dying, stopped or
// restarted process does (docs/backends.md).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "backends/stats.hpp"
#include "harness/core/asio.hpp"
#include "harness/lab/netns.hpp"
#include "harness/scenario/model.hpp"

namespace backlog_lab::backends {

namespace detail {
struct backend_impl;
} // namespace detail

/// What the backend's "process" is doing.
enum class backend_state {
  dead,            ///< no process: before start() and after kill()
  running,         ///< accepting and serving
  frozen,          ///< stopped (SIGSTOP): nothing accepted, read or written
  listener_closed, ///< running, but its listening socket is closed
};

/// "dead", "running", "frozen" or "listener_closed".
std::string_view to_string(backend_state s);

/// The protocol a backend speaks (exec backends are programs, run by harness/runner instead).
using backend_kind = scenario::backend_kind;

/// One fake pod listening on `bind_address:spec.port` inside its namespace. Not thread-safe:
/// call it from the thread running its io_context. Destroy it before that io_context.
class backend {
public:
  /// Takes a spec as the scenario reader gives it (an exec kind throws input_error: the runner
  /// starts programs); opens nothing yet.
  /// `bind_address` is usually the pod's address or 0.0.0.0 (the default).
  backend(net::io_context& io, const lab::netns& ns, scenario::backend_spec spec,
          net::ip::address bind_address = net::ip::address_v4::any());
  backend(backend&&) noexcept;
  backend& operator=(backend&&) noexcept;
  backend(const backend&) = delete;
  backend& operator=(const backend&) = delete;
  /// Closes everything, as kill() does.
  ~backend();

  /// Opens the listener (SO_REUSEADDR, listen(spec.backlog)) and serves; from `dead` this is a
  /// new process, from `listener_closed` it reopens only the listener. Throws lab_error if the
  /// socket cannot be bound. No-op while the listener is open.
  void start();
  /// The process dies: every socket is closed as exit() closes a process's fds. The kernel
  /// resets the listener's un-accepted children and accepted connections with unread data,
  /// sends FIN on the others, and refuses new SYNs (no listener).
  void kill();
  /// SIGSTOP: stop accepting, reading and writing. The kernel keeps completing handshakes into
  /// the accept queue until it holds backlog + 1, then drops SYNs (TcpExtListenOverflows).
  void freeze();
  /// SIGCONT: carry on where it stopped; queued connections are accepted and served.
  void resume();
  /// Closes only the listening socket: new SYNs are refused, un-accepted children reset;
  /// accepted connections go on being served.
  void close_listener();
  /// Resets every accepted connection (SO_LINGER 0, close); the listener stays.
  void reset_all();
  /// A container restart in the same pod: kill(), then start() on the same address and port.
  void restart();

  backend_state state() const;
  /// Whether the listening socket is open (false when dead or listener_closed).
  bool listening() const;
  backend_stats stats() const;
  const std::string& name() const;
  const scenario::backend_spec& spec() const;
  backend_kind kind() const;
  /// The bound address and port (the port the kernel chose if spec.port was 0, once started).
  tcp::endpoint local_endpoint() const;

private:
  // Shared with the serving coroutines, which finish (cancelled) after the handle is gone.
  std::shared_ptr<detail::backend_impl> impl_;
};

} // namespace backlog_lab::backends
