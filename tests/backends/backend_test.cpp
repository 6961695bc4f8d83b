#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <functional>
#include <gtest/gtest.h>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "backends/backend.hpp"
#include "backends/grpc_preface.hpp"
#include "harness/core/error.hpp"
#include "harness/lab/process.hpp"
#include "tests/support/kernel_view.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::backends {
namespace {

using namespace std::chrono_literals;
using ms = std::chrono::milliseconds;

constexpr uint16_t port = 8080;

/// What a client read: bytes, and how the stream ended (if it did).
struct received {
  std::string data;
  bool eof = false; ///< the peer's FIN
  int error = 0;    ///< errno of a failed recv (ECONNRESET after a RST)
};

/// A plain non-blocking TCP client in the pod's namespace; the test pumps the backend's
/// io_context while it waits, since both run on this thread.
class client {
public:
  explicit client(const lab::netns& ns) {
    lab::netns_scope in(ns);
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  }
  ~client() {
    if (fd_ >= 0) ::close(fd_);
  }
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  int fd() const { return fd_; }

  /// Starts connecting to 127.0.0.1:`p`; returns 0 or the errno of an immediate failure.
  int start_connect(uint16_t p) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(p);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return 0;
    return errno == EINPROGRESS ? 0 : errno;
  }

  /// 0 once connected, the connect's errno if it failed, or -1 while still in progress.
  int connect_result() const {
    pollfd p{fd_, POLLOUT, 0};
    if (::poll(&p, 1, 0) == 0) return -1;
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    return err;
  }

  void send_all(std::string_view s) {
    while (!s.empty()) {
      ssize_t n = ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL);
      ASSERT_GT(n, 0) << "send: " << std::strerror(errno);
      s.remove_prefix(static_cast<size_t>(n));
    }
  }

  /// Non-blocking read of whatever is there into `r`.
  void read_available(received& r) {
    char buf[65536];
    for (;;) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        r.data.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n == 0) r.eof = true;
      if (n < 0 && errno != EAGAIN) r.error = errno;
      return;
    }
  }

private:
  int fd_ = -1;
};

class backend_test : public ::testing::Test {
protected:
  void SetUp() override {
    BACKLOG_LAB_REQUIRE_LAB();
    pod_ = lab::netns::create("pod");
  }

  // `kind` spelled as in a scenario file.
  scenario::backend_spec spec(std::string_view kind, bool keep_alive = false) {
    scenario::backend_spec s;
    s.keep_alive = keep_alive;
    s.name = "pod-a";
    s.kind = scenario::enum_from_name<backend_kind>(kind).value();
    s.port = port;
    s.backlog = 2;
    s.response_bytes = 100;
    return s;
  }

  /// Runs the io_context until `done()` holds; false after `limit` (a hang guard only).
  bool pump_until(const std::function<bool()>& done, ms limit = 3000ms) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      if (io_.stopped()) io_.restart();
      io_.run_for(1ms);
      if (io_.stopped()) std::this_thread::sleep_for(1ms);
    }
    return true;
  }
  /// Runs the io_context for `d` (to show that something does NOT happen meanwhile).
  void pump_for(ms d) {
    pump_until([] { return false; }, d);
  }

  /// Connects and returns 0, the connect's errno, or ETIMEDOUT after `limit`.
  int connect(client& c, ms limit = 2000ms) {
    if (int e = c.start_connect(port)) return e;
    int result = -1;
    if (!pump_until([&] { return (result = c.connect_result()) >= 0; }, limit)) return ETIMEDOUT;
    return result;
  }

  /// Reads until `enough(data)`, EOF or an error (the hang guard fails the test).
  received read_until(client& c, const std::function<bool(const std::string&)>& enough,
                      ms limit = 3000ms) {
    received r;
    bool ok = pump_until(
        [&] {
          c.read_available(r);
          return r.eof || r.error || enough(r.data);
        },
        limit);
    EXPECT_TRUE(ok) << "timed out; got " << r.data.size() << " bytes";
    return r;
  }
  received read_to_end(client& c) {
    return read_until(c, [](const std::string&) { return false; });
  }
  received read_bytes(client& c, size_t n) {
    return read_until(c, [n](const std::string& d) { return d.size() >= n; });
  }
  /// Reads `count` complete http responses (head + Content-Length body).
  received read_responses(client& c, int count) {
    return read_until(c, [count](const std::string& d) { return complete_responses(d) >= count; });
  }

  static int complete_responses(const std::string& d) {
    int n = 0;
    size_t pos = 0;
    for (;;) {
      size_t end = d.find("\r\n\r\n", pos);
      if (end == std::string::npos) return n;
      size_t cl = d.find("Content-Length: ", pos);
      if (cl == std::string::npos || cl > end) return n;
      size_t body = std::stoul(d.substr(cl + 16));
      if (d.size() < end + 4 + body) return n;
      pos = end + 4 + body;
      ++n;
    }
  }

  std::vector<std::string> ss(const std::string& args) {
    std::vector<std::string> argv = {"ss", "-Htn"};
    std::istringstream in(args);
    for (std::string w; in >> w;)
      argv.push_back(w);
    auto out = testing::run_ok(pod_, argv);
    std::vector<std::string> lines;
    std::istringstream lin(out);
    for (std::string l; std::getline(lin, l);)
      if (!l.empty()) lines.push_back(l);
    return lines;
  }
  /// The listener's line as `ss -ltn` prints it: "LISTEN <Recv-Q> <Send-Q>", or "" if none.
  std::string listener() {
    auto lines = ss("-l sport = :8080");
    if (lines.empty()) return "";
    std::istringstream in(lines.front());
    std::string state, recv_q, send_q;
    in >> state >> recv_q >> send_q;
    return state + " " + recv_q + " " + send_q;
  }
  uint64_t nstat(const std::string& counter) { return testing::nstat_value(pod_, counter); }

  net::io_context io_{1};
  lab::netns pod_;
};

constexpr std::string_view get = "GET / HTTP/1.1\r\nHost: pod\r\n\r\n";

// ---- kinds ----------------------------------------------------------------------------------

TEST_F(backend_test, http_answers_with_a_content_length_body_and_keeps_alive) {
  backend b(io_, pod_, spec("http", true));
  b.start();
  EXPECT_EQ(b.state(), backend_state::running);
  client c(pod_);
  ASSERT_EQ(connect(c), 0);
  c.send_all(get);
  auto r = read_responses(c, 1);
  ASSERT_EQ(complete_responses(r.data), 1) << r.data;
  EXPECT_EQ(r.data.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r.data;
  EXPECT_NE(r.data.find("Content-Length: 100\r\n"), std::string::npos);
  EXPECT_NE(r.data.find("Connection: keep-alive\r\n"), std::string::npos);
  EXPECT_NE(r.data.find("X-Backend: pod-a\r\n"), std::string::npos);
  EXPECT_EQ(r.data.size() - (r.data.find("\r\n\r\n") + 4), 100u);
  // The same connection answers again: keep-alive.
  c.send_all(get);
  r = read_responses(c, 1);
  EXPECT_EQ(complete_responses(r.data), 1);
  EXPECT_FALSE(r.eof);
  auto st = b.stats();
  EXPECT_EQ(st.accepted, 1u);
  EXPECT_EQ(st.requests_served, 2u);
  EXPECT_EQ(st.active, 1u);
  EXPECT_EQ(st.bytes_in, 2 * get.size());
}

TEST_F(backend_test, http_closes_after_the_response_when_asked_or_configured) {
  backend keep(io_, pod_, spec("http", true));
  keep.start();
  client c(pod_);
  ASSERT_EQ(connect(c), 0);
  c.send_all("GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
  auto r = read_to_end(c);
  EXPECT_EQ(complete_responses(r.data), 1) << r.data;
  EXPECT_NE(r.data.find("Connection: close\r\n"), std::string::npos);
  EXPECT_TRUE(r.eof);
  keep.kill();

  // keep_alive off: the backend closes although HTTP/1.1 defaults to keep-alive.
  backend closing(io_, pod_, spec("http"));
  closing.start();
  client d(pod_);
  ASSERT_EQ(connect(d), 0);
  d.send_all(get);
  r = read_to_end(d);
  EXPECT_EQ(complete_responses(r.data), 1) << r.data;
  EXPECT_TRUE(r.eof);
  EXPECT_EQ(r.error, 0);
  EXPECT_TRUE(pump_until([&] { return closing.stats().active == 0; }));
}

TEST_F(backend_test, http_reads_bodies_in_pieces_and_pipelined_requests) {
  backend b(io_, pod_, spec("http", true));
  b.start();
  client c(pod_);
  ASSERT_EQ(connect(c), 0);
  std::string head = "POST /upload HTTP/1.1\r\nContent-Length: 10000\r\n\r\n";
  for (char ch : head) { // one byte at a time: every read is partial
    c.send_all(std::string_view(&ch, 1));
    pump_for(0ms);
    io_.poll();
  }
  c.send_all(std::string(6000, 'b'));
  pump_for(20ms);
  EXPECT_EQ(b.stats().requests_served, 0u); // 4000 body bytes still missing
  // The rest of the body and two more requests in one segment.
  c.send_all(std::string(4000, 'b') + std::string(get) + "HEAD / HTTP/1.1\r\n\r\n");
  // Two full responses, then the HEAD answer: the same head without its body.
  auto expected_size = [](const std::string& d) {
    size_t head = d.find("\r\n\r\n");
    return head == std::string::npos ? std::string::npos : 3 * (head + 4) + 200;
  };
  auto r = read_until(c, [&](const std::string& d) { return d.size() >= expected_size(d); });
  EXPECT_EQ(r.data.size(), expected_size(r.data));
  EXPECT_EQ(complete_responses(r.data), 2); // the HEAD answer announces 100 bytes, sends none
  size_t answers = 0;
  for (size_t p = 0; (p = r.data.find("HTTP/1.1 200 OK\r\n", p)) != std::string::npos; ++p)
    ++answers;
  EXPECT_EQ(answers, 3u);
  EXPECT_TRUE(pump_until([&] { return b.stats().requests_served == 3; }));
  EXPECT_EQ(b.stats().bytes_in, head.size() + 10000 + get.size() + 19);
}

TEST_F(backend_test, http_serves_curl_sending_a_chunked_body_after_100_continue) {
  if (!lab::have_program("curl")) GTEST_SKIP() << "curl not installed";
  backend b(io_, pod_, spec("http", true));
  b.start();
  // curl sends a body of unknown length chunked, and announces a large one with
  // "Expect: 100-continue", waiting for the 100 before it sends the chunks.
  lab::command_result r;
  std::thread curl([&] {
    r = lab::run_command(&pod_,
                         {"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H",
                          "Transfer-Encoding: chunked", "-H", "Expect: 100-continue",
                          "--data-binary", "@-", "http://127.0.0.1:" + std::to_string(port) + "/"},
                         std::string(100000, 'x'), std::chrono::seconds(20));
  });
  bool served = pump_until([&] { return b.stats().requests_served == 1; }, 20000ms);
  pump_until([] { return false; }, 100ms); // let the connection finish
  curl.join();
  EXPECT_TRUE(served);
  EXPECT_EQ(r.exit_status, 0) << r.err;
  EXPECT_EQ(r.out, "200");
  EXPECT_EQ(b.stats().bad_requests, 0u);
  // The 100,000 body bytes arrived with their chunk framing, all read and dropped.
  EXPECT_GT(b.stats().bytes_in, 100000u);
}

TEST_F(backend_test, http_answers_400_to_garbage_and_closes_but_keeps_serving_others) {
  backend b(io_, pod_, spec("http"));
  b.start();
  client bad(pod_);
  ASSERT_EQ(connect(bad), 0);
  bad.send_all(std::string("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 11)); // a TLS hello
  auto r = read_to_end(bad);
  EXPECT_EQ(r.data.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << r.data;
  EXPECT_TRUE(r.eof);
  EXPECT_EQ(r.error, 0); // a FIN, not a RST: the lingering close kept the answer readable
  EXPECT_EQ(b.stats().bad_requests, 1u);

  client big(pod_); // a head that never ends
  ASSERT_EQ(connect(big), 0);
  big.send_all("GET / HTTP/1.1\r\nX: " + std::string(20000, 'a'));
  r = read_to_end(big);
  EXPECT_EQ(r.data.rfind("HTTP/1.1 431 ", 0), 0u) << r.data.substr(0, 40);

  client good(pod_);
  ASSERT_EQ(connect(good), 0);
  good.send_all(get);
  EXPECT_EQ(complete_responses(read_to_end(good).data), 1);
  EXPECT_EQ(b.stats().requests_served, 1u);
}

TEST_F(backend_test, grpc_preface_sends_exactly_the_63_bytes_of_the_report_then_waits) {
  // The capture of port 31425 as the report prints it (docs/incident.md, "Excerpts").
  const std::string report = "00:00:18:04:00:00:00:00:00:00:04:00:40:00:00:00:05:00:40:00:00:00:"
                             "06:00:00:20:00:fe:03:00:00:00:01:00:00:04:08:00:00:00:00:00:00:3f:"
                             "00:01:00:00:08:06:00:00:00:00:00:00:00:00:00:00:00:00:00";
  std::string expected;
  for (size_t i = 0; i < report.size(); i += 3)
    expected.push_back(static_cast<char>(std::stoi(report.substr(i, 2), nullptr, 16)));
  ASSERT_EQ(expected.size(), 63u);
  ASSERT_EQ(expected, std::string(grpc_preface.begin(), grpc_preface.end()));

  backend b(io_, pod_, spec("grpc-preface"));
  b.start();
  client c(pod_);
  ASSERT_EQ(connect(c), 0);
  auto r = read_bytes(c, 63);
  EXPECT_EQ(r.data, expected);
  c.send_all("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"); // read and discarded, never answered
  pump_for(100ms);
  c.read_available(r);
  EXPECT_EQ(r.data.size(), 63u);
  EXPECT_FALSE(r.eof);
  EXPECT_EQ(b.stats().requests_served, 1u);
  // The health checker closes with FIN; the backend reads the EOF and closes too, so nothing
  // is left in CLOSE-WAIT on its side.
  ::shutdown(c.fd(), SHUT_WR);
  r = read_to_end(c);
  EXPECT_TRUE(r.eof);
  EXPECT_TRUE(pump_until([&] { return b.stats().active == 0; }));
  EXPECT_TRUE(ss("state close-wait sport = :8080").empty());
}

TEST_F(backend_test, echo_sends_every_byte_back) {
  backend b(io_, pod_, spec("echo"));
  b.start();
  client c(pod_);
  ASSERT_EQ(connect(c), 0);
  std::string payload;
  for (int i = 0; i < 200000; ++i)
    payload.push_back(static_cast<char>(i * 7));
  received r;
  size_t sent = 0;
  // Send in slices while reading, so neither side's buffers fill up.
  ASSERT_TRUE(pump_until([&] {
    if (sent < payload.size()) {
      size_t n = std::min<size_t>(8192, payload.size() - sent);
      c.send_all(std::string_view(payload).substr(sent, n));
      sent += n;
    }
    c.read_available(r);
    return r.data.size() >= payload.size() || r.error || r.eof;
  }));
  EXPECT_EQ(r.data, payload);
  EXPECT_EQ(b.stats().bytes_out, payload.size());
}

TEST_F(backend_test, sink_reads_everything_and_never_answers) {
  backend b(io_, pod_, spec("sink"));
  b.start();
  client c(pod_);
  ASSERT_EQ(connect(c), 0);
  c.send_all(std::string(5000, 's'));
  ASSERT_TRUE(pump_until([&] { return b.stats().bytes_in == 5000; }));
  pump_for(50ms);
  received r;
  c.read_available(r);
  EXPECT_TRUE(r.data.empty());
  EXPECT_FALSE(r.eof);
  // The kernel agrees that it was read: the server side's Recv-Q is 0.
  auto lines = ss("state established sport = :8080");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].find("0 "), 0u) << lines[0];
  EXPECT_EQ(b.stats().bytes_out, 0u);
}

// ---- faults ---------------------------------------------------------------------------------

TEST_F(backend_test, kill_resets_unread_connections_fins_idle_ones_and_refuses_new_syns) {
  auto s = spec("http");
  s.service_time_ms = 60000; // the request stays "in service" until the kill
  backend b(io_, pod_, s);
  b.start();
  client busy(pod_), idle(pod_);
  ASSERT_EQ(connect(busy), 0);
  ASSERT_EQ(connect(idle), 0);
  busy.send_all(get);
  ASSERT_TRUE(pump_until([&] { return b.stats().bytes_in == get.size(); }));
  busy.send_all("more bytes the process will never read");
  ASSERT_TRUE(pump_until([&] { return b.stats().active == 2; }));
  uint64_t aborts_before = nstat("TcpExtTCPAbortOnClose");

  b.kill();
  EXPECT_EQ(b.state(), backend_state::dead);
  auto r = read_to_end(busy);
  EXPECT_EQ(r.error, ECONNRESET);
  r = read_to_end(idle);
  EXPECT_TRUE(r.eof); // nothing unread: exit() closes it with a FIN
  EXPECT_EQ(r.error, 0);
  client fresh(pod_);
  EXPECT_EQ(connect(fresh), ECONNREFUSED);
  EXPECT_EQ(listener(), "");
  EXPECT_GT(nstat("TcpExtTCPAbortOnClose"), aborts_before); // tcp_close: data_was_unread
  EXPECT_TRUE(pump_until([&] { return b.stats().active == 0; }));
}

TEST_F(backend_test, freeze_fills_the_accept_queue_to_backlog_plus_one_then_drops_syns) {
  backend b(io_, pod_, spec("http", true)); // backlog 2: the queue holds 3
  b.start();
  client served(pod_);
  ASSERT_EQ(connect(served), 0);
  ASSERT_TRUE(pump_until([&] { return b.stats().accepted == 1; }));

  b.freeze();
  EXPECT_EQ(b.state(), backend_state::frozen);
  // An accepted connection is not read any more: its bytes wait in the kernel (Recv-Q).
  served.send_all(get);
  pump_for(50ms);
  auto est = ss("state established sport = :8080");
  ASSERT_EQ(est.size(), 1u);
  EXPECT_EQ(est[0].find(std::to_string(get.size()) + " "), 0u) << est[0];

  std::vector<std::unique_ptr<client>> queued;
  for (int i = 0; i < 3; ++i) {
    queued.push_back(std::make_unique<client>(pod_));
    ASSERT_EQ(connect(*queued.back()), 0) << "client " << i; // the kernel completes it
    queued.back()->send_all(get);
  }
  EXPECT_EQ(listener(), "LISTEN 3 2");
  EXPECT_EQ(b.stats().accepted, 1u);

  uint64_t overflows_before = nstat("TcpExtListenOverflows");
  client dropped(pod_);
  EXPECT_EQ(connect(dropped, 500ms), ETIMEDOUT); // SYN dropped; first retransmit only at 1 s
  EXPECT_GT(nstat("TcpExtListenOverflows"), overflows_before);

  b.resume();
  EXPECT_EQ(b.state(), backend_state::running);
  EXPECT_EQ(complete_responses(read_responses(served, 1).data), 1);
  for (auto& q : queued)
    EXPECT_EQ(complete_responses(read_responses(*q, 1).data), 1);
  EXPECT_EQ(b.stats().accepted, 4u);
  EXPECT_EQ(listener(), "LISTEN 0 2");
}

TEST_F(backend_test, freeze_holds_back_a_response_until_resume) {
  auto s = spec("http");
  s.service_time_ms = 50;
  backend b(io_, pod_, s);
  b.start();
  client c(pod_);
  ASSERT_EQ(connect(c), 0);
  c.send_all(get);
  ASSERT_TRUE(pump_until([&] { return b.stats().bytes_in == get.size(); }));
  b.freeze(); // during the service time: the answer is due while the process is stopped
  pump_for(300ms);
  received r;
  c.read_available(r);
  EXPECT_TRUE(r.data.empty()) << r.data;
  EXPECT_EQ(b.stats().bytes_out, 0u);
  b.resume();
  EXPECT_EQ(complete_responses(read_to_end(c).data), 1);
}

TEST_F(backend_test, kill_of_a_frozen_backend_resets_its_queued_children) {
  backend b(io_, pod_, spec("http"));
  b.start();
  b.freeze();
  client queued(pod_), idle_queued(pod_);
  ASSERT_EQ(connect(queued), 0);
  ASSERT_EQ(connect(idle_queued), 0);
  queued.send_all(get);
  EXPECT_EQ(listener(), "LISTEN 2 2");
  b.kill();
  // inet_csk_listen_stop() resets every un-accepted child, with or without data.
  EXPECT_EQ(read_to_end(queued).error, ECONNRESET);
  EXPECT_EQ(read_to_end(idle_queued).error, ECONNRESET);
  EXPECT_EQ(b.stats().accepted, 0u);
}

TEST_F(backend_test, close_listener_refuses_new_connects_resets_queued_and_serves_accepted) {
  backend b(io_, pod_, spec("http", true));
  b.start();
  client accepted(pod_);
  ASSERT_EQ(connect(accepted), 0);
  ASSERT_TRUE(pump_until([&] { return b.stats().accepted == 1; }));
  b.freeze(); // only so that one connection stays queued
  client queued(pod_);
  ASSERT_EQ(connect(queued), 0);
  EXPECT_EQ(listener(), "LISTEN 1 2");

  b.close_listener();
  EXPECT_FALSE(b.listening());
  EXPECT_EQ(read_to_end(queued).error, ECONNRESET);
  client fresh(pod_);
  EXPECT_EQ(connect(fresh), ECONNREFUSED);
  EXPECT_EQ(listener(), "");

  b.resume();
  EXPECT_EQ(b.state(), backend_state::listener_closed);
  accepted.send_all(get);
  EXPECT_EQ(complete_responses(read_responses(accepted, 1).data), 1);
  accepted.send_all(get);
  EXPECT_EQ(complete_responses(read_responses(accepted, 1).data), 1);
  EXPECT_EQ(b.stats().requests_served, 2u);
}

TEST_F(backend_test, reset_all_resets_every_accepted_connection_and_keeps_listening) {
  auto s = spec("echo");
  backend b(io_, pod_, s);
  b.start();
  client one(pod_), two(pod_);
  ASSERT_EQ(connect(one), 0);
  ASSERT_EQ(connect(two), 0);
  ASSERT_TRUE(pump_until([&] { return b.stats().active == 2; }));
  uint64_t rsts_before = nstat("TcpOutRsts");
  uint64_t linger_aborts_before = nstat("TcpExtTCPAbortOnData"); // tcp_close(): zero linger

  b.reset_all();
  EXPECT_EQ(read_to_end(one).error, ECONNRESET);
  EXPECT_EQ(read_to_end(two).error, ECONNRESET);
  EXPECT_EQ(b.stats().resets_sent, 2u);
  EXPECT_GE(nstat("TcpOutRsts"), rsts_before + 2);
  EXPECT_EQ(nstat("TcpExtTCPAbortOnData"), linger_aborts_before + 2);
  EXPECT_EQ(listener(), "LISTEN 0 2");

  client after(pod_);
  ASSERT_EQ(connect(after), 0);
  after.send_all("ping");
  EXPECT_EQ(read_bytes(after, 4).data, "ping");
}

TEST_F(backend_test, restart_serves_again_on_the_same_port) {
  backend b(io_, pod_, spec("http", true));
  b.start();
  client before(pod_);
  ASSERT_EQ(connect(before), 0);
  before.send_all(get);
  ASSERT_EQ(complete_responses(read_responses(before, 1).data), 1);

  b.restart();
  EXPECT_EQ(b.state(), backend_state::running);
  EXPECT_EQ(b.local_endpoint().port(), port);
  // The old process's idle keep-alive connection was closed by its death (FIN).
  EXPECT_TRUE(read_to_end(before).eof);
  client after(pod_);
  ASSERT_EQ(connect(after), 0);
  after.send_all(get);
  EXPECT_EQ(complete_responses(read_responses(after, 1).data), 1);
  EXPECT_EQ(listener(), "LISTEN 0 2");
  EXPECT_EQ(b.stats().accepted, 2u);
}

TEST_F(backend_test, restart_keeps_a_kernel_chosen_port_and_frozen_restart_runs) {
  auto s = spec("echo");
  s.port = 0;
  backend b(io_, pod_, s);
  b.start();
  uint16_t chosen = b.local_endpoint().port();
  ASSERT_NE(chosen, 0);
  b.freeze();
  b.restart(); // a restarted container is a new, running process
  EXPECT_EQ(b.state(), backend_state::running);
  EXPECT_EQ(b.local_endpoint().port(), chosen);
}

TEST_F(backend_test, bad_kind_and_busy_port_are_clear_errors) {
  EXPECT_THROW(backend(io_, pod_, spec("exec")), input_error); // a program: the runner's
  backend first(io_, pod_, spec("sink"));
  first.start();
  first.start(); // already listening: nothing to do
  backend second(io_, pod_, spec("sink"));
  try {
    second.start();
    FAIL() << "expected lab_error";
  } catch (const lab_error& e) {
    EXPECT_NE(std::string(e.what()).find("pod-a"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("8080"), std::string::npos) << e.what();
  }
  EXPECT_EQ(second.state(), backend_state::dead);
}

} // namespace
} // namespace backlog_lab::backends
