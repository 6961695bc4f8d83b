#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <gtest/gtest.h>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "harness/core/error.hpp"
#include "harness/core/unique_fd.hpp"
#include "harness/lab/sysctl.hpp"
#include "harness/lab/topology.hpp"
#include "proxy_sim/userspace/userspace_proxier.hpp"
#include "tests/support/fake_upstream.hpp"
#include "tests/support/kernel_view.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::proxy_sim {
namespace {

using namespace std::chrono_literals;
using error_code = boost::system::error_code;

constexpr uint16_t node_port = 30080;
const std::string service_name = "default/web:http";

// ---- the kernel's view: `ss -tanHe` in a namespace ------------------------------------------

using ss_line = testing::ss_socket;

std::vector<ss_line> ss(const lab::netns& ns, const std::string& flags = "-tane") {
  return testing::ss_sockets(ns, flags);
}

std::optional<ss_line> listener(const lab::netns& ns, uint16_t port) {
  for (auto& l : ss(ns, "-ltne"))
    if (l.local_port() == port) return l;
  return std::nullopt;
}

// ---- actors on the test's io_context ---------------------------------------------------------

/// Runs the io_context until `done()` or the hang guard; fails the test on the guard.
template <class Pred>
::testing::AssertionResult run_until(net::io_context& io, Pred done,
                                     std::chrono::milliseconds guard = 8s) {
  auto deadline = std::chrono::steady_clock::now() + guard;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline)
      return ::testing::AssertionFailure() << "not done within " << guard.count() << " ms";
    if (io.stopped()) io.restart();
    io.run_one_for(10ms);
  }
  return ::testing::AssertionSuccess();
}

void run_for(net::io_context& io, std::chrono::milliseconds d) {
  if (io.stopped()) io.restart();
  io.run_for(d);
}

using testing::fake_upstream;
using testing::upstream_mode;

/// A backend whose SYNs are dropped: listen(0) admits one connection, which is queued and never
/// accepted, so the accept queue is full (1 > 0) and the kernel drops every further SYN.
struct blackholed_backend {
  explicit blackholed_backend(const lab::netns& ns) : listener(ns, 0) {
    listener.connect_filler(ns);
  }
  tcp::endpoint endpoint() const { return listener.endpoint(); }
  testing::held_listener listener;
};

/// One client connection and what it saw.
struct client_conn {
  explicit client_conn(net::io_context& io) : socket(io) {}
  tcp::socket socket;
  bool connected = false;
  bool finished = false;
  std::string data;
  error_code end; ///< why reading stopped (eof: the proxy closed)
  /// The first line: the name of the backend that answered.
  std::string answered_by() const { return data.substr(0, data.find('\n')); }
};

struct client_options {
  const char* bind_address = nullptr; ///< source address (affinity keys on it)
  bool stop_at_newline = false;       ///< stop reading after the greeting instead of at EOF
  bool close_when_done = true;        ///< close (FIN) when done, or keep the socket open
};

net::awaitable<void> run_client(std::shared_ptr<client_conn> c, tcp::endpoint target,
                                client_options o) {
  error_code ec;
  co_await c->socket.async_connect(target, net::redirect_error(net::use_awaitable, ec));
  if (!ec) {
    c->connected = true;
    std::array<char, 256> buf;
    for (;;) {
      std::size_t n = co_await c->socket.async_read_some(
          net::buffer(buf), net::redirect_error(net::use_awaitable, ec));
      c->data.append(buf.data(), n);
      if (ec || (o.stop_at_newline && c->data.find('\n') != std::string::npos)) break;
    }
  }
  c->end = ec;
  if (o.close_when_done) c->socket.close(ec);
  c->finished = true;
}

/// Starts a client in `ns` towards `target`.
std::shared_ptr<client_conn> spawn_client(net::io_context& io, const lab::netns& ns,
                                          tcp::endpoint target, client_options o = {}) {
  auto c = std::make_shared<client_conn>(io);
  {
    lab::netns_scope in(ns);
    c->socket.open(tcp::v4());
    if (o.bind_address) c->socket.bind({net::ip::make_address(o.bind_address), 0});
  }
  net::co_spawn(io, run_client(c, target, o), net::detached);
  return c;
}

/// Connects, waits for the end, returns the client.
std::shared_ptr<client_conn> fetch(net::io_context& io, const lab::netns& ns, client_options o = {},
                                   tcp::endpoint target = {net::ip::make_address("127.0.0.1"),
                                                           node_port}) {
  auto c = spawn_client(io, ns, target, o);
  EXPECT_TRUE(run_until(io, [&] { return c->finished; }));
  return c;
}

service_endpoints service(std::vector<tcp::endpoint> endpoints, uint16_t port = node_port) {
  service_endpoints s;
  s.service = service_name;
  s.node_port = port;
  s.endpoints = std::move(endpoints);
  return s;
}

scenario::proxy_spec userspace_spec() {
  scenario::proxy_spec spec;
  spec.mode = scenario::proxy_mode::userspace;
  return spec;
}

// ---- tests -----------------------------------------------------------------------------------

/// A fresh node namespace and io_context per test; start() runs a userspace proxier in it.
class proxier_lab : public ::testing::Test {
protected:
  void SetUp() override {
    BACKLOG_LAB_REQUIRE_LAB();
    ns = lab::netns::create("node");
  }
  /// A started proxier for one service (service_name on node_port) with `endpoints`.
  userspace_proxier& start(const scenario::proxy_spec& spec, std::vector<tcp::endpoint> endpoints) {
    proxy_ = std::make_unique<userspace_proxier>(
        io, ns, spec, std::vector<service_endpoints>{service(std::move(endpoints))}, 7);
    proxy_->start();
    return *proxy_;
  }
  lab::netns ns;
  net::io_context io{1};

private:
  std::unique_ptr<userspace_proxier> proxy_;
};

struct backlog_case {
  int backlog;
  const char* somaxconn;
  uint64_t send_q;
};

class node_port_listener : public proxier_lab,
                           public ::testing::WithParamInterface<backlog_case> {};

TEST_P(node_port_listener, is_dual_stack_with_backlog_capped_by_somaxconn) {
  lab::write_sysctl(ns, "net.core.somaxconn", GetParam().somaxconn);
  auto spec = userspace_spec();
  spec.backlog = GetParam().backlog;
  auto& proxy = start(spec, {});
  auto l = listener(ns, node_port);
  ASSERT_TRUE(l);
  // A dual-stack [::] socket (IPV6_V6ONLY 0) is printed by ss as "*"; v6-only would be "[::]".
  EXPECT_EQ(l->state, "LISTEN");
  EXPECT_EQ(l->local, "*:" + std::to_string(node_port));
  EXPECT_EQ(l->recv_q, 0u);
  EXPECT_EQ(l->send_q, GetParam().send_q);
  EXPECT_EQ(proxy.node_port(service_name), node_port);
  if (GetParam().backlog == -1) {
    EXPECT_EQ(proxy.listen_backlog(), std::stoi(GetParam().somaxconn));
  }
  // IPv4 reaches it (as ::ffff:127.0.0.1): with no endpoints the proxy closes at once.
  auto c = fetch(io, ns);
  EXPECT_TRUE(c->connected);
  EXPECT_EQ(c->end, net::error::eof);
  EXPECT_EQ(proxy.detail().closed_no_endpoints, 1u);
}

INSTANTIATE_TEST_SUITE_P(backlogs, node_port_listener,
                         ::testing::Values(backlog_case{5, "4096", 5},
                                           backlog_case{4096, "128", 128},
                                           backlog_case{-1, "100", 100}));

TEST_F(proxier_lab, round_robin_reaches_every_backend_in_turn) {
  fake_upstream a(io, ns, upstream_mode::greet_and_close, {.name = "a"});
  fake_upstream b(io, ns, upstream_mode::greet_and_close, {.name = "b"});
  fake_upstream c(io, ns, upstream_mode::greet_and_close, {.name = "c"});
  auto& proxy = start(userspace_spec(), {a.endpoint(), b.endpoint(), c.endpoint()});
  std::vector<std::string> answered;
  for (int i = 0; i < 6; ++i) {
    auto conn = fetch(io, ns);
    EXPECT_EQ(conn->end, net::error::eof);
    answered.push_back(conn->answered_by());
  }
  EXPECT_EQ(std::set<std::string>(answered.begin(), answered.begin() + 3),
            (std::set<std::string>{"a", "b", "c"}));
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(answered[i], answered[i + 3]);
  auto st = proxy.stats();
  EXPECT_EQ(st.accepted, 6u);
  EXPECT_EQ(st.dial_attempts, 6u);
  EXPECT_EQ(st.dial_failures, 0u);
  EXPECT_EQ(st.bytes_to_client, 12u); // "x\n" each
  EXPECT_TRUE(run_until(io, [&] { return proxy.detail().sessions_open == 0; }));
  EXPECT_EQ(proxy.detail().sessions_started, 6u);
}

TEST_F(proxier_lab, a_burst_of_connections_never_outruns_pods_with_small_backlogs) {
  // The pods run on the proxy's io_context, as in every lab. kube-proxy's pods ran beside it:
  // the proxy must let them accept between its dials, or a burst queued on the NodePort fills
  // their accept queues (backlog 1: two each) and dials wait out timeouts for no reason.
  fake_upstream a(io, ns, upstream_mode::greet_and_close,
                  {.name = "a", .address = "127.0.0.1", .backlog = 1});
  fake_upstream b(io, ns, upstream_mode::greet_and_close,
                  {.name = "b", .address = "127.0.0.1", .backlog = 1});
  fake_upstream c(io, ns, upstream_mode::greet_and_close,
                  {.name = "c", .address = "127.0.0.1", .backlog = 1});
  auto& proxy = start(userspace_spec(), {a.endpoint(), b.endpoint(), c.endpoint()});
  std::vector<std::shared_ptr<client_conn>> burst;
  for (int i = 0; i < 30; ++i)
    burst.push_back(spawn_client(io, ns, {net::ip::make_address("127.0.0.1"), node_port}));
  ASSERT_TRUE(run_until(io, [&] {
    for (auto& conn : burst)
      if (!conn->finished) return false;
    return true;
  }));
  for (auto& conn : burst)
    EXPECT_FALSE(conn->answered_by().empty());
  EXPECT_EQ(proxy.stats().accepted, 30u);
  EXPECT_EQ(proxy.stats().dial_failures, 0u);
  EXPECT_EQ(proxy.detail().dial_timeouts, 0u);
}

TEST_F(proxier_lab, client_ip_affinity_sticks_per_client_address) {
  fake_upstream a(io, ns, upstream_mode::greet_and_close, {.name = "a"});
  fake_upstream b(io, ns, upstream_mode::greet_and_close, {.name = "b"});
  fake_upstream c(io, ns, upstream_mode::greet_and_close, {.name = "c"});
  auto spec = userspace_spec();
  spec.session_affinity = scenario::session_affinity::client_ip;
  start(spec, {a.endpoint(), b.endpoint(), c.endpoint()});
  auto first = fetch(io, ns, {.bind_address = "127.0.0.1"})->answered_by();
  ASSERT_FALSE(first.empty());
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(fetch(io, ns, {.bind_address = "127.0.0.1"})->answered_by(), first);
  // A new client address takes the next endpoint in turn, then sticks to it.
  auto second = fetch(io, ns, {.bind_address = "127.0.0.2"})->answered_by();
  EXPECT_NE(second, first);
  EXPECT_EQ(fetch(io, ns, {.bind_address = "127.0.0.2"})->answered_by(), second);
  EXPECT_EQ(fetch(io, ns, {.bind_address = "127.0.0.1"})->answered_by(), first);
}

TEST_F(proxier_lab, refused_endpoint_is_skipped_to_the_next_on_the_first_try) {
  fake_upstream good(io, ns, upstream_mode::greet_and_close, {.name = "good"});
  tcp::endpoint dead{net::ip::make_address("127.0.0.1"), 1}; // nothing listens: RST
  auto& proxy = start(userspace_spec(), {dead, good.endpoint()});
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(fetch(io, ns)->answered_by(), "good");
  auto st = proxy.stats();
  auto d = proxy.detail();
  // Round robin: after a failed try the index has moved on, so 3 or 4 of the 4 connections try
  // the dead endpoint first, depending on the shuffle.
  EXPECT_GE(d.dial_refused, 3u);
  EXPECT_EQ(st.dial_failures, d.dial_refused);
  EXPECT_EQ(d.dial_timeouts, 0u);
  EXPECT_EQ(st.dial_attempts, 4 + d.dial_refused);
  EXPECT_EQ(st.dial_gave_up, 0u);
}

TEST_F(proxier_lab, blackholed_endpoint_costs_a_dial_timeout_then_the_next_answers) {
  blackholed_backend hole(ns);
  fake_upstream good(io, ns, upstream_mode::greet_and_close, {.name = "good"});
  auto hole_line = listener(ns, hole.endpoint().port());
  ASSERT_TRUE(hole_line);
  ASSERT_EQ(hole_line->recv_q, 1u); // full: LISTEN 1 0
  auto& proxy = start(userspace_spec(), {hole.endpoint(), good.endpoint()});
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(fetch(io, ns)->answered_by(), "good");
  auto d = proxy.detail();
  EXPECT_GE(d.dial_timeouts, 2u); // as above: 2 or 3 of 3 try the hole first
  EXPECT_EQ(proxy.stats().dial_failures, d.dial_timeouts);
  EXPECT_EQ(d.dial_refused, 0u);
  EXPECT_EQ(proxy.stats().dial_gave_up, 0u);
}

TEST_F(proxier_lab, synchronous_dial_stalls_the_node_port_accept_queue) {
  blackholed_backend hole(ns);
  fake_upstream good(io, ns, upstream_mode::greet_and_close, {.name = "good"});
  auto& proxy = start(userspace_spec(), {hole.endpoint()});
  tcp::endpoint np{net::ip::make_address("127.0.0.1"), node_port};
  auto first = spawn_client(io, ns, np);
  ASSERT_TRUE(run_until(io, [&] { return proxy.stats().dial_attempts == 1; }));
  std::vector<std::shared_ptr<client_conn>> queued;
  for (int i = 0; i < 3; ++i)
    queued.push_back(spawn_client(io, ns, np));
  // The loop keeps running (timers, the kernel completing handshakes) but the accept loop is
  // inside tryConnect: 250 ms, then 500 ms, ... for the first connection. A proxy that dialed
  // asynchronously would have accepted the three by now.
  run_for(io, 500ms);
  EXPECT_TRUE(std::all_of(queued.begin(), queued.end(), [](auto& c) { return c->connected; }));
  auto l = listener(ns, node_port);
  ASSERT_TRUE(l);
  EXPECT_EQ(l->recv_q, 3u) << "the three handshakes wait, un-accepted, in the accept queue";
  EXPECT_EQ(proxy.stats().accepted, 1u);
  // A healthy endpoint appears: the stalled dial's next try uses it and the queue drains.
  proxy.update_endpoints(service_name, {good.endpoint()});
  ASSERT_TRUE(run_until(io, [&] {
    return first->finished &&
           std::all_of(queued.begin(), queued.end(), [](auto& c) { return c->finished; });
  }));
  EXPECT_EQ(first->answered_by(), "good");
  for (auto& c : queued)
    EXPECT_EQ(c->answered_by(), "good");
  EXPECT_EQ(listener(ns, node_port)->recv_q, 0u);
  EXPECT_GE(proxy.detail().dial_timeouts, 1u);
  EXPECT_EQ(proxy.stats().accepted, 4u);
}

TEST_F(proxier_lab, all_endpoints_blackholed_closes_the_inbound_after_four_tries) {
  blackholed_backend hole1(ns);
  blackholed_backend hole2(ns);
  auto& proxy = start(userspace_spec(), {hole1.endpoint(), hole2.endpoint()});
  auto started = std::chrono::steady_clock::now();
  auto c = fetch(io, ns);
  auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_TRUE(c->connected);
  EXPECT_EQ(c->end, net::error::eof);
  EXPECT_TRUE(c->data.empty());
  auto st = proxy.stats();
  EXPECT_EQ(st.dial_attempts, 4u);
  EXPECT_EQ(st.dial_failures, 4u);
  EXPECT_EQ(proxy.detail().dial_timeouts, 4u);
  EXPECT_EQ(st.dial_gave_up, 1u);
  EXPECT_EQ(proxy.detail().sessions_started, 0u);
  // Timers never fire early, so this lower bound cannot flake: 250 + 500 + 1000 + 2000 ms.
  EXPECT_GE(elapsed, 3750ms);
}

TEST_F(proxier_lab, giving_up_on_an_unread_request_resets_the_client) {
  blackholed_backend hole(ns);
  auto spec = userspace_spec();
  spec.dial_timeouts_ms = {100}; // one short try keeps the test quick
  auto& proxy = start(spec, {hole.endpoint()});
  auto c = std::make_shared<client_conn>(io);
  {
    lab::netns_scope in(ns);
    c->socket.connect({net::ip::make_address("127.0.0.1"), node_port});
  }
  net::write(c->socket, net::buffer(std::string("GET / HTTP/1.1\r\n\r\n")));
  std::array<char, 16> buf;
  error_code ec;
  c->socket.async_read_some(net::buffer(buf), [&](error_code e, std::size_t) {
    ec = e;
    c->finished = true;
  });
  ASSERT_TRUE(run_until(io, [&] { return c->finished; }));
  // close() with unread bytes in the receive queue sends RST, not FIN (tcp_close), as Go's
  // inConn.Close() did: the client sees a reset where it would otherwise see EOF.
  EXPECT_EQ(ec, net::error::connection_reset);
  EXPECT_EQ(proxy.stats().dial_gave_up, 1u);
  EXPECT_EQ(testing::nstat_value(ns, "TcpExtTCPAbortOnClose"), 1u);
}

TEST_F(proxier_lab, zero_endpoints_closes_the_inbound_at_once) {
  auto& proxy = start(userspace_spec(), {});
  auto c = fetch(io, ns);
  EXPECT_TRUE(c->connected);
  EXPECT_EQ(c->end, net::error::eof);
  EXPECT_EQ(proxy.stats().accepted, 1u);
  EXPECT_EQ(proxy.stats().dial_attempts, 0u);
  EXPECT_EQ(proxy.stats().dial_gave_up, 0u);
  EXPECT_EQ(proxy.detail().closed_no_endpoints, 1u);
}

TEST_F(proxier_lab, update_endpoints_moves_new_connections) {
  fake_upstream a(io, ns, upstream_mode::greet_and_close, {.name = "a"});
  fake_upstream b(io, ns, upstream_mode::greet_and_close, {.name = "b"});
  auto& proxy = start(userspace_spec(), {a.endpoint()});
  EXPECT_EQ(fetch(io, ns)->answered_by(), "a");
  proxy.update_endpoints(service_name, {b.endpoint()});
  EXPECT_EQ(fetch(io, ns)->answered_by(), "b");
  EXPECT_EQ(fetch(io, ns)->answered_by(), "b");
  proxy.update_endpoints(service_name, {});
  EXPECT_TRUE(fetch(io, ns)->data.empty());
  EXPECT_EQ(proxy.detail().closed_no_endpoints, 1u);
  EXPECT_THROW(proxy.update_endpoints("default/nope:http", {}), input_error);
}

/// Proxy-owned sockets (inode != 0) of the proxied connections, by state: the inbound side has
/// local port `np`, the outbound side peer port `backend_port`.
std::map<std::string, int> proxy_owned(const lab::netns& ns, uint16_t np, uint16_t backend_port,
                                       bool inbound) {
  std::map<std::string, int> by_state;
  for (auto& l : ss(ns)) {
    if (l.inode == 0 || l.state == "LISTEN") continue;
    if (inbound ? l.local_port() == np : l.peer_port() == backend_port) ++by_state[l.state];
  }
  return by_state;
}

scenario::proxy_spec close_spec(bool half_close) {
  auto spec = userspace_spec();
  spec.half_close = half_close;
  return spec;
}

class close_behaviour : public proxier_lab, public ::testing::WithParamInterface<bool> {
protected:
  /// Proxy-owned sockets by state after the connections settle: inbound or outbound side.
  std::map<std::string, int> owned(const fake_upstream& backend, bool inbound) {
    run_for(io, 100ms);
    return proxy_owned(ns, node_port, backend.endpoint().port(), inbound);
  }
};

// The backend answers and closes; the client stays connected and silent (a keep-alive front
// proxy, a client that never reads its socket to EOF).
TEST_P(close_behaviour, backend_closes_first) {
  BACKLOG_LAB_REQUIRE_LAB();
  fake_upstream backend(io, ns, upstream_mode::greet_and_close, {.name = "a"});
  auto& proxy = start(close_spec(GetParam()), {backend.endpoint()});
  std::vector<std::shared_ptr<client_conn>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(fetch(io, ns, {.close_when_done = false}));
    EXPECT_EQ(clients.back()->answered_by(), "a");
    EXPECT_EQ(clients.back()->end, net::error::eof); // the proxy's FIN reached the client
  }
  auto outbound = owned(backend, false);
  auto inbound = owned(backend, true);
  if (GetParam()) {
    // Backend FIN -> CloseWrite toward the client, CloseRead on the backend socket; the
    // client->backend copy still waits for the client, so both sockets stay open and owned.
    EXPECT_EQ(outbound["CLOSE-WAIT"], 3) << "kube-proxy's outbound CLOSE_WAIT (#14641, #18270)";
    EXPECT_EQ(inbound["FIN-WAIT-2"], 3);
    EXPECT_EQ(proxy.detail().sessions_open, 3u);
  } else {
    EXPECT_TRUE(outbound.empty());
    EXPECT_TRUE(inbound.empty()) << "closed sockets are orphans: inode 0";
    EXPECT_EQ(proxy.detail().sessions_open, 0u);
  }
}

// The client sends FIN after the greeting; the backend keeps its socket open and never closes.
TEST_P(close_behaviour, client_closes_first) {
  BACKLOG_LAB_REQUIRE_LAB();
  fake_upstream backend(io, ns, upstream_mode::greet_and_hold, {.name = "a"});
  auto& proxy = start(close_spec(GetParam()), {backend.endpoint()});
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(fetch(io, ns, {.stop_at_newline = true})->answered_by(), "a");
  auto outbound = owned(backend, false);
  auto inbound = owned(backend, true);
  if (GetParam()) {
    // The client's FIN is forwarded (CloseWrite) but the backend->client copy never ends: the
    // NodePort side sits in CLOSE-WAIT and the outbound side in FIN-WAIT-2, both owned, so
    // tcp_fin_timeout never applies (#18354: "~14K are in FIN_WAIT2").
    EXPECT_EQ(inbound["CLOSE-WAIT"], 3);
    EXPECT_EQ(outbound["FIN-WAIT-2"], 3);
    EXPECT_EQ(proxy.detail().sessions_open, 3u);
  } else {
    EXPECT_TRUE(inbound.empty());
    EXPECT_TRUE(outbound.empty());
    EXPECT_EQ(proxy.detail().sessions_open, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(userspace_proxier, close_behaviour, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "half_close" : "full_close"; });

TEST_F(proxier_lab, running_out_of_descriptors_pauses_accepting_then_recovers) {
  fake_upstream a(io, ns, upstream_mode::greet_and_close, {.name = "a"});
  auto& proxy = start(userspace_spec(), {a.endpoint()});
  // One connection while descriptors are plentiful: besides showing the path works, it lets
  // UBSan's vptr check see the watchers' types first. That check probes memory through a
  // pipe(2) the first time it meets a type, and with no descriptor left it reports a live
  // object as "not an object of type 'fd_watcher'" (docs/fuzzing.md).
  EXPECT_EQ(fetch(io, ns)->answered_by(), "a");
  ASSERT_EQ(proxy.stats().accepted, 1u);
  run_for(io, 20ms); // the backend's accept waits in epoll (a first accept() would fail too)
  auto client = spawn_client(io, ns, {net::ip::make_address("127.0.0.1"), node_port});
  // Take every descriptor this process may still open: the handshake completes in the kernel,
  // and the proxy's accept4() fails with EMFILE (kube-proxy panicked there; we pause and retry).
  std::vector<unique_fd> filler;
  for (;;) {
    unique_fd fd(::dup(STDERR_FILENO));
    if (!fd) break;
    filler.push_back(std::move(fd));
  }
  ASSERT_EQ(errno, EMFILE);
  EXPECT_TRUE(run_until(
      io, [&] { return proxy.detail().accept_errors >= 1; }, 3s));
  run_for(io, 30ms);
  // Paused between tries (50 ms), not spinning on a listener that stays readable.
  EXPECT_LT(proxy.detail().accept_errors, 10u);
  EXPECT_EQ(proxy.stats().accepted, 1u);
  EXPECT_FALSE(client->finished);
  filler.clear();
  ASSERT_TRUE(run_until(io, [&] { return client->finished; }));
  EXPECT_EQ(client->answered_by(), "a");
  EXPECT_EQ(proxy.stats().accepted, 2u);
}

TEST_F(proxier_lab, a_client_that_reads_late_gets_every_byte_of_a_large_response) {
  // 8 MiB is more than the client's receive window and the proxy's send buffer (tcp_wmem max
  // 4 MiB) hold: the proxy's writes must block, wait for room and go on where they stopped.
  constexpr std::size_t size = 8u << 20;
  std::string blob(size, '\0');
  for (std::size_t i = 0; i < size; ++i)
    blob[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
  tcp::acceptor backend(io);
  {
    lab::netns_scope in(ns);
    backend.open(tcp::v4());
    backend.bind({net::ip::make_address("127.0.0.1"), 0});
    backend.listen();
  }
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        error_code ec;
        auto s = co_await backend.async_accept(net::redirect_error(net::use_awaitable, ec));
        if (ec) co_return;
        co_await net::async_write(s, net::buffer(blob),
                                  net::redirect_error(net::use_awaitable, ec));
        s.close(ec);
      },
      net::detached);
  auto& proxy = start(userspace_spec(), {backend.local_endpoint()});

  tcp::socket client(io);
  {
    lab::netns_scope in(ns);
    client.open(tcp::v4());
  }
  client.connect({net::ip::make_address("127.0.0.1"), node_port});
  run_for(io, 300ms); // the client reads nothing yet
  uint64_t before_reading = proxy.stats().bytes_to_client;
  EXPECT_GT(before_reading, 0u);
  EXPECT_LT(before_reading, size) << "the proxy should be held back by the client's window";
  EXPECT_EQ(proxy.detail().sessions_open, 1u);

  std::string got;
  bool done = false;
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        std::array<char, 65536> buf;
        error_code ec;
        while (!ec) {
          std::size_t n = co_await client.async_read_some(
              net::buffer(buf), net::redirect_error(net::use_awaitable, ec));
          got.append(buf.data(), n);
        }
        done = true;
      },
      net::detached);
  ASSERT_TRUE(run_until(io, [&] { return done; }));
  EXPECT_EQ(got.size(), size);
  EXPECT_TRUE(got == blob) << "the bytes arrived out of order or changed";
  EXPECT_EQ(proxy.stats().bytes_to_client, size);
  EXPECT_TRUE(run_until(io, [&] { return proxy.detail().sessions_open == 0; }));
}

TEST_F(proxier_lab, stop_closes_listeners_and_sessions) {
  fake_upstream backend(io, ns, upstream_mode::greet_and_hold, {.name = "a"});
  auto& proxy = start(userspace_spec(), {backend.endpoint()});
  auto c = spawn_client(io, ns, {net::ip::make_address("127.0.0.1"), node_port});
  ASSERT_TRUE(run_until(io, [&] { return c->data == "a\n"; }));
  EXPECT_EQ(proxy.detail().sessions_open, 1u);
  proxy.stop();
  ASSERT_TRUE(run_until(io, [&] { return c->finished; }));
  EXPECT_EQ(c->end, net::error::eof);
  EXPECT_FALSE(listener(ns, node_port));
  EXPECT_EQ(proxy.detail().sessions_open, 0u);
  auto refused = fetch(io, ns);
  EXPECT_FALSE(refused->connected);
  EXPECT_EQ(refused->end, net::error::connection_refused);
}

TEST(userspace_proxier, proxy_and_backend_in_different_namespaces) {
  BACKLOG_LAB_REQUIRE_LAB();
  // The runner's own topology: node and one pod on the node's bridge.
  auto t = lab::topology::build_nodeport({.client_addresses = 1, .pods = 1, .sysctls_by_role = {}});
  const lab::netns& node = t.node();
  const lab::netns& pod = t.pod(0);
  net::io_context io{1};
  fake_upstream backend(io, pod, upstream_mode::greet_and_close,
                        {.name = "pod", .address = t.pod_address(0)});
  userspace_proxier proxy(io, node, userspace_spec(), {service({backend.endpoint()})}, 7);
  proxy.start();
  // Through the node's own address: the outbound leg leaves the node over the veth.
  auto c = fetch(io, node, {}, {net::ip::make_address(t.node_address()), node_port});
  EXPECT_EQ(c->answered_by(), "pod");
  auto n = proxy.stats();
  EXPECT_EQ(n.dial_attempts, 1u);
  EXPECT_EQ(n.bytes_to_client, 4u);
}

TEST_F(proxier_lab, make_proxier_builds_userspace_mode) {
  auto p = make_proxier(io, ns, userspace_spec(), {service({})}, 1);
  EXPECT_NE(dynamic_cast<userspace_proxier*>(p.get()), nullptr);
  EXPECT_EQ(p->rules_listing(), "");
}

TEST_F(proxier_lab, busy_port_is_a_lab_error) {
  tcp::acceptor squatter(io);
  {
    lab::netns_scope in(ns);
    squatter.open(tcp::v6());
    squatter.set_option(net::ip::v6_only(false));
    squatter.bind({net::ip::address_v6::any(), node_port});
    squatter.listen();
  }
  userspace_proxier proxy(io, ns, userspace_spec(), {service({})}, 1);
  EXPECT_THROW(proxy.start(), lab_error);
}

} // namespace
} // namespace backlog_lab::proxy_sim
