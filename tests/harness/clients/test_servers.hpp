#pragma once
// Small loopback servers for the client tests, each producing one real kernel condition
// (an answer, a FIN, a RST, a listener that never accepts). Not the fake pods of backends/.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "harness/core/asio.hpp"
#include "harness/lab/netns.hpp"

namespace backlog_lab::clients::testing {

/// What test_server does with each connection it accepts.
enum class server_mode {
  answer,       ///< read one HTTP request, answer 200 with a 5-byte body, close (FIN)
  fin,          ///< read one HTTP request, close without answering (FIN)
  rst,          ///< wait for the request, close with SO_LINGER 0 (RST) without reading it
  send_preface, ///< send the 63-byte HTTP/2 SETTINGS frame of docs/incident.md, then wait for EOF
  accept_only,  ///< accept and keep, reading nothing (records the peer)
};

/// An Asio acceptor on 127.0.0.1:0 in `ns`, served by `io`'s thread.
class test_server {
public:
  test_server(net::io_context& io, const lab::netns& ns, server_mode mode);
  tcp::endpoint endpoint() const { return endpoint_; }
  /// Sizes of the complete requests read, in arrival order.
  const std::vector<std::size_t>& request_sizes() const { return *request_sizes_; }
  /// Peer addresses of accepted connections -> how many.
  const std::map<std::string, int>& peers() const { return *peers_; }
  /// The response `answer` sends.
  static const std::string& response();

private:
  net::awaitable<void> accept_loop();
  net::awaitable<void> serve(tcp::socket socket);

  tcp::acceptor acceptor_;
  tcp::endpoint endpoint_;
  server_mode mode_;
  std::shared_ptr<std::vector<std::size_t>> request_sizes_;
  std::shared_ptr<std::map<std::string, int>> peers_;
};

/// A listening socket that never accepts by itself (like kube-proxy's held NodePort), with
/// `backlog` as given; `accept_one` takes one connection off its accept queue.
class held_listener {
public:
  held_listener(const lab::netns& ns, int backlog);
  ~held_listener();
  held_listener(const held_listener&) = delete;
  held_listener& operator=(const held_listener&) = delete;
  tcp::endpoint endpoint() const { return endpoint_; }
  /// Accepts one queued connection and closes it; false if none was queued.
  bool accept_one();
  /// Opens one connection to it from `ns` and keeps it (fills the queue).
  void connect_filler(const lab::netns& ns);

private:
  int fd_ = -1;
  std::vector<int> fillers_;
  tcp::endpoint endpoint_;
};

/// A TcpExt/Tcp counter of `ns` as `nstat -az` prints it (absolute; a new namespace starts at 0).
std::uint64_t kernel_counter(const lab::netns& ns, const std::string& name);

} // namespace backlog_lab::clients::testing
