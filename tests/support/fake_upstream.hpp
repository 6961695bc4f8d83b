#pragma once
// The tests' one fake upstream: a loopback (or given-address) server in a namespace that
// produces one real kernel condition per accepted connection (an HTTP answer, a greeting, a FIN,
// a RST, a connection kept open), and a listener that never accepts. Not the fake pods of
// backends/, which the runner starts; these serve the actor tests on the test's own io_context.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "harness/core/asio.hpp"
#include "harness/core/unique_fd.hpp"
#include "harness/lab/netns.hpp"

namespace backlog_lab::testing {

/// What a fake_upstream does with each connection it accepts.
enum class upstream_mode {
  answer,          ///< read one HTTP request, answer 200 with a 5-byte body, close (FIN)
  fin,             ///< read one HTTP request, close without answering (FIN)
  rst,             ///< wait for the request, close with SO_LINGER 0 (RST) without reading it
  send_preface,    ///< send the incident's 63-byte gRPC server preface (backends/grpc_preface.hpp),
                   ///< wait for EOF
  accept_only,     ///< accept and keep, reading nothing
  greet_and_close, ///< write "<name>\n" and close (like an HTTP/1.0 server)
  greet_and_hold,  ///< write "<name>\n" and keep the socket, never reading or closing
};

/// Where a fake_upstream listens and what it calls itself.
struct upstream_options {
  std::string name;                  ///< the greeting of the greet_* modes
  std::string address = "127.0.0.1"; ///< bound with port 0
  int backlog = 4096;
};

/// An Asio acceptor in `ns`, served by `io`'s thread. Destroying it closes the listener and
/// every connection it still holds.
class fake_upstream {
public:
  fake_upstream(net::io_context& io, const lab::netns& ns, upstream_mode mode,
                upstream_options options = {});
  ~fake_upstream();
  fake_upstream(const fake_upstream&) = delete;
  fake_upstream& operator=(const fake_upstream&) = delete;

  /// The address and port it listens on.
  tcp::endpoint endpoint() const { return endpoint_; }
  /// Sizes of the complete requests read (answer, fin), in arrival order.
  const std::vector<std::size_t>& request_sizes() const;
  /// Peer addresses of accepted connections -> how many.
  const std::map<std::string, int>& peers() const;
  /// The response `answer` sends.
  static const std::string& response();

  struct state;

private:
  std::shared_ptr<state> state_; ///< shared with the serving coroutines
  tcp::endpoint endpoint_;
};

/// A listening socket that never accepts by itself (like kube-proxy's held NodePort), with
/// `backlog` as given; `accept_one` takes one connection off its accept queue. With backlog 0
/// and one connect_filler, its accept queue is full and the kernel drops every further SYN.
class held_listener {
public:
  held_listener(const lab::netns& ns, int backlog);
  /// The address (127.0.0.1) and port it listens on.
  tcp::endpoint endpoint() const { return endpoint_; }
  /// Accepts one queued connection and closes it; false if none was queued.
  bool accept_one();
  /// Opens one connection to it from `ns` and keeps it (fills the queue).
  void connect_filler(const lab::netns& ns);

private:
  unique_fd fd_;
  std::vector<unique_fd> fillers_;
  tcp::endpoint endpoint_;
};

} // namespace backlog_lab::testing
