#include <fcntl.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <gtest/gtest.h>
#include <sstream>
#include <thread>

#include "harness/clients/client_group.hpp"
#include "harness/core/error.hpp"
#include "harness/lab/sysctl.hpp"
#include "tests/support/fake_upstream.hpp"
#include "tests/support/kernel_view.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::clients {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;
using backlog_lab::testing::fake_upstream;
using backlog_lab::testing::held_listener;
using backlog_lab::testing::upstream_mode;

scenario::client_group_spec make_spec(scenario::arrival arrival = scenario::arrival::constant) {
  scenario::client_group_spec spec;
  spec.name = "test";
  spec.arrival = arrival;
  spec.rate_per_s = 100;
  spec.request_bytes = {100, 100};
  spec.connect_timeout_ms = 2000;
  spec.response_timeout_ms = 1000;
  return spec;
}

class client_group_test : public ::testing::Test {
protected:
  void SetUp() override {
    BACKLOG_LAB_REQUIRE_LAB();
    ns_ = lab::netns::create("clients");
  }

  /// Runs the io_context until `done` or the hang guard `limit` (not a timing assertion).
  void run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 8s) {
    auto deadline = clock::now() + limit;
    while (!done() && clock::now() < deadline) {
      io_.restart();
      io_.run_for(5ms);
    }
    ASSERT_TRUE(done()) << "hang guard expired";
  }

  client_group make_group(const scenario::client_group_spec& spec, tcp::endpoint target,
                          std::vector<std::string> sources = {}, std::uint64_t seed = 1,
                          group_options options = {}) {
    return client_group(io_, ns_, spec, target, std::move(sources), seed, run_start_, options);
  }

  /// Runs a group to completion and returns its results.
  client_results run_group(const scenario::client_group_spec& spec, tcp::endpoint target,
                           group_options options = {}) {
    auto group = make_group(spec, target, {}, 1, options);
    group.start();
    run_until([&] { return group.finished(); });
    return group.results();
  }

  static std::uint64_t count(const client_results& r, outcome kind) { return r.counts[kind]; }

  lab::netns ns_;
  net::io_context io_{1};
  clock::time_point run_start_ = clock::now();
};

tcp::endpoint unused_port() {
  return {net::ip::make_address("127.0.0.1"), 9};
}

// --- one test per outcome class, each produced by the real kernel condition ---------------------

TEST_F(client_group_test, answered_by_an_http_server_with_exact_request_sizes) {
  fake_upstream server(io_, ns_, upstream_mode::answer);
  auto spec = make_spec();
  spec.rate_per_s = 200;
  spec.max_connections = 20;
  spec.request_bytes = {100, 300};
  group_options options;
  options.record_local_port = true;
  auto r = run_group(spec, server.endpoint(), options);
  EXPECT_EQ(r.started, 20u);
  EXPECT_EQ(r.connected, 20u);
  EXPECT_EQ(count(r, outcome::answered), 20u);
  EXPECT_EQ(r.counts.total(), 20u);
  EXPECT_EQ(r.status_classes[2], 20u);
  EXPECT_EQ(r.response_latency.count(), 20u);
  EXPECT_EQ(r.connect_latency.count(), 20u);
  // The server read exactly the sizes the clients meant to send.
  std::vector<std::size_t> sent;
  for (const auto& rec : r.records) {
    sent.push_back(rec.request_bytes);
    EXPECT_GE(rec.request_bytes, 100u);
    EXPECT_LE(rec.request_bytes, 300u);
    EXPECT_EQ(rec.response_bytes, fake_upstream::response().size());
    EXPECT_EQ(rec.http_status, 200);
    EXPECT_NE(rec.local_port, 0);
  }
  std::vector<std::size_t> received = server.request_sizes();
  std::sort(sent.begin(), sent.end());
  std::sort(received.begin(), received.end());
  EXPECT_EQ(sent, received);
}

TEST_F(client_group_test, syn_unanswered_when_the_accept_queue_is_full) {
  held_listener listener(ns_, 0); // capacity backlog + 1 = 1
  listener.connect_filler(ns_);
  auto spec = make_spec();
  spec.max_connections = 3;
  spec.connect_timeout_ms = 300; // before the first SYN retransmission (1 s)
  auto r = run_group(spec, listener.endpoint());
  EXPECT_EQ(count(r, outcome::syn_unanswered), 3u);
  EXPECT_EQ(r.connected, 0u);
  EXPECT_EQ(r.counts.total(), 3u);
  // The kernel dropped exactly those three SYNs at the full queue (tcp_conn_request).
  EXPECT_EQ(backlog_lab::testing::nstat_value(ns_, "TcpExtListenOverflows"), 3u);
  EXPECT_EQ(backlog_lab::testing::nstat_value(ns_, "TcpExtListenDrops"), 3u);
}

TEST_F(client_group_test, syn_unanswered_when_the_kernel_gives_up_first) {
  lab::write_sysctl(ns_, "net.ipv4.tcp_syn_retries", "1");
  held_listener listener(ns_, 0);
  listener.connect_filler(ns_);
  auto spec = make_spec();
  spec.max_connections = 1;
  spec.connect_timeout_ms = 10000;
  auto r = run_group(spec, listener.endpoint());
  ASSERT_EQ(count(r, outcome::syn_unanswered), 1u);
  EXPECT_EQ(r.records.at(0).error, ETIMEDOUT);
  // How many retransmissions tcp_syn_retries=1 allows is the kernel's time-based reckoning;
  // what matters is that every one of the SYNs was dropped at the full queue.
  auto retransmissions = backlog_lab::testing::nstat_value(ns_, "TcpExtTCPSynRetrans");
  EXPECT_GE(retransmissions, 1u);
  EXPECT_EQ(backlog_lab::testing::nstat_value(ns_, "TcpExtListenOverflows"), retransmissions + 1);
}

TEST_F(client_group_test, unanswered_when_connected_but_never_accepted) {
  held_listener listener(ns_, 8);
  auto spec = make_spec();
  spec.max_connections = 3;
  spec.response_timeout_ms = 200;
  auto r = run_group(spec, listener.endpoint());
  EXPECT_EQ(count(r, outcome::unanswered), 3u);
  EXPECT_EQ(r.connected, 3u);
  EXPECT_EQ(r.counts.total(), 3u);
  // The clients sent 100 bytes and closed with FIN: three un-accepted CLOSE-WAIT children at
  // Recv-Q 101 (bytes + FIN), as ss shows them.
  std::istringstream ss(
      backlog_lab::testing::run_ok(ns_, {"ss", "-Htn", "state", "close-wait", "sport",
                                         "= :" + std::to_string(listener.endpoint().port())}));
  std::string line;
  int children = 0;
  while (std::getline(ss, line)) {
    std::istringstream fields(line);
    int recv_q = -1;
    fields >> recv_q;
    EXPECT_EQ(recv_q, 101) << line;
    ++children;
  }
  EXPECT_EQ(children, 3);
}

TEST_F(client_group_test, refused_when_nothing_listens) {
  auto spec = make_spec();
  spec.max_connections = 3;
  auto r = run_group(spec, unused_port());
  EXPECT_EQ(count(r, outcome::refused), 3u);
  EXPECT_EQ(r.counts.total(), 3u);
  EXPECT_EQ(r.records.at(0).error, ECONNREFUSED);
}

TEST_F(client_group_test, reset_when_the_server_aborts_the_connection) {
  fake_upstream server(io_, ns_, upstream_mode::rst);
  auto spec = make_spec();
  spec.max_connections = 3;
  auto r = run_group(spec, server.endpoint());
  EXPECT_EQ(count(r, outcome::reset), 3u);
  EXPECT_EQ(r.connected, 3u);
  EXPECT_EQ(r.counts.total(), 3u);
}

TEST_F(client_group_test, closed_early_when_the_server_closes_without_answering) {
  fake_upstream server(io_, ns_, upstream_mode::fin);
  auto spec = make_spec();
  spec.max_connections = 3;
  auto r = run_group(spec, server.endpoint());
  EXPECT_EQ(count(r, outcome::closed_early), 3u);
  EXPECT_EQ(r.counts.total(), 3u);
  EXPECT_EQ(server.request_sizes().size(), 3u);
}

TEST_F(client_group_test, other_with_eproto_when_an_http_client_gets_an_http2_preface) {
  fake_upstream server(io_, ns_, upstream_mode::send_preface);
  auto spec = make_spec();
  spec.max_connections = 2;
  auto r = run_group(spec, server.endpoint());
  EXPECT_EQ(count(r, outcome::other), 2u);
  EXPECT_EQ(r.other_errors.at(EPROTO), 2u);
}

TEST_F(client_group_test, a_health_check_that_waits_for_any_byte_is_answered_by_the_preface) {
  fake_upstream server(io_, ns_, upstream_mode::send_preface);
  auto spec = make_spec();
  spec.max_connections = 2;
  spec.request_kind = scenario::request_kind::none;
  spec.request_bytes = {0, 0};
  auto r = run_group(spec, server.endpoint());
  EXPECT_EQ(count(r, outcome::answered), 2u);
  EXPECT_EQ(r.status_classes[0], 2u);
  EXPECT_EQ(r.response_latency.count(), 2u);
}

TEST_F(client_group_test, other_with_emfile_at_the_open_file_limit_and_the_group_goes_on) {
  held_listener listener(ns_, 128);
  auto spec = make_spec();
  spec.rate_per_s = 1000;
  spec.max_connections = 30;
  spec.response_timeout_ms = 500;
  auto group = make_group(spec, listener.endpoint());

  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  // A limit that leaves exactly 8 descriptor numbers free (open ones above it stay usable).
  const int free_fds = 8;
  int limit = 0;
  for (int free = 0; free < free_fds; ++limit)
    if (::fcntl(limit, F_GETFD) < 0) ++free;
  rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(limit);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  group.start();
  run_until([&] { return group.finished(); });
  ::setrlimit(RLIMIT_NOFILE, &saved);

  const auto& r = group.results();
  // Each socket batch briefly holds one descriptor for the namespace switch, so one of the
  // free descriptors is never a socket.
  std::uint64_t sockets = static_cast<std::uint64_t>(free_fds - 1);
  EXPECT_EQ(r.started, 30u);
  EXPECT_EQ(count(r, outcome::unanswered), sockets);
  EXPECT_EQ(count(r, outcome::other), 30u - sockets);
  EXPECT_EQ(r.other_errors.at(EMFILE), 30u - sockets);
}

// --- arrivals -----------------------------------------------------------------------------------

TEST_F(client_group_test, constant_arrivals_are_exactly_rate_times_duration) {
  fake_upstream server(io_, ns_, upstream_mode::answer);
  auto spec = make_spec();
  spec.rate_per_s = 1000;
  spec.start_ms = 100;
  spec.stop_ms = 400; // intended starts 100.000, 100.001, ..., 399.999 ms
  run_start_ = clock::now();
  auto r = run_group(spec, server.endpoint());
  EXPECT_EQ(r.started, 300u);
  EXPECT_EQ(count(r, outcome::answered), 300u);
  ASSERT_EQ(r.records.size(), 300u);
  for (std::size_t i = 0; i < r.records.size(); ++i)
    EXPECT_EQ(r.records[i].intended_start, 100ms + std::chrono::microseconds(1000 * i)) << i;
}

TEST_F(client_group_test, poisson_arrivals_are_reproducible_by_seed) {
  auto spec = make_spec(scenario::arrival::poisson);
  spec.rate_per_s = 2000;
  spec.max_connections = 100;
  spec.start_ms = 20; // intended starts then count from exactly 20 ms after run_start_
  auto intended = [&](std::uint64_t seed) {
    run_start_ = clock::now();
    auto group = make_group(spec, unused_port(), {}, seed);
    group.start();
    run_until([&] { return group.finished(); });
    std::vector<std::int64_t> out;
    for (const auto& rec : group.results().records)
      out.push_back(rec.intended_start.count());
    EXPECT_EQ(group.results().counts[outcome::refused], 100u);
    return out;
  };
  auto a = intended(42);
  auto b = intended(42);
  auto c = intended(43);
  ASSERT_EQ(a.size(), 100u);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  // The gaps are exponential with mean 1/rate = 500 us: with 100 of them, the mean is well
  // inside [250, 1000] us (a fixed schedule would still pass; the seeds above rule that out).
  double mean_gap_us = static_cast<double>(a.back() - a.front()) / 99 / 1000;
  EXPECT_GT(mean_gap_us, 250);
  EXPECT_LT(mean_gap_us, 1000);
}

TEST_F(client_group_test, closed_loop_keeps_concurrency_in_flight) {
  held_listener listener(ns_, 64);
  auto spec = make_spec(scenario::arrival::closed);
  spec.concurrency = 4;
  spec.max_connections = 12;
  spec.response_timeout_ms = 150;
  auto r = run_group(spec, listener.endpoint());
  EXPECT_EQ(r.started, 12u);
  EXPECT_EQ(count(r, outcome::unanswered), 12u);
  EXPECT_EQ(r.peak_in_flight, 4u);
  ASSERT_EQ(r.records.size(), 12u);
  // From the records: at every start, exactly the connections started and not yet finished are
  // in flight; never more than 4, and the first 4 start together.
  for (const auto& a : r.records) {
    int in_flight = 0;
    for (const auto& b : r.records)
      if (b.started <= a.started && b.finished > a.started) ++in_flight;
    EXPECT_LE(in_flight, 4);
  }
  for (std::size_t i = 4; i < r.records.size(); ++i)
    EXPECT_GE(r.records[i].started, r.records[i - 4].finished) << i;
}

TEST_F(client_group_test, heartbeat_checkers_connect_from_their_own_addresses) {
  fake_upstream server(io_, ns_, upstream_mode::accept_only);
  auto spec = make_spec(scenario::arrival::heartbeat);
  spec.checkers = 2;
  spec.interval_ms = 100;
  spec.max_connections = 6;
  spec.request_kind = scenario::request_kind::none;
  spec.request_bytes = {0, 0};
  spec.response_timeout_ms = 0; // a TCP health check: connect, then FIN
  spec.start_ms = 50;
  run_start_ = clock::now();
  auto group = make_group(spec, server.endpoint(), {"127.0.0.11", "127.0.0.12"});
  group.start();
  run_until([&] {
    int accepted = 0;
    for (const auto& [peer, n] : server.peers())
      accepted += n;
    return group.finished() && accepted == 6;
  });
  const auto& r = group.results();
  EXPECT_EQ(count(r, outcome::answered), 6u);
  std::map<std::string, int> expected{{"127.0.0.11", 3}, {"127.0.0.12", 3}};
  EXPECT_EQ(server.peers(), expected);
  ASSERT_EQ(r.records.size(), 6u);
  for (std::size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(r.records[i].intended_start, 50ms + 100ms * static_cast<int>(i / 2)) << i;
    EXPECT_EQ(r.records[i].source_index, i % 2) << i;
  }
}

// --- latency ------------------------------------------------------------------------------------

TEST_F(client_group_test, latency_counts_from_the_intended_start_when_the_generator_stalls) {
  fake_upstream server(io_, ns_, upstream_mode::answer);
  auto spec = make_spec();
  spec.rate_per_s = 100;
  spec.start_ms = 0;
  spec.stop_ms = 600;
  run_start_ = clock::now();
  auto group = make_group(spec, server.endpoint());
  group.start();
  // Block the io_context thread for 300 ms, as a stalled load generator would be.
  net::steady_timer stall(io_, run_start_ + 100ms);
  clock::time_point stall_begin, stall_end;
  stall.async_wait([&](boost::system::error_code) {
    stall_begin = clock::now();
    std::this_thread::sleep_for(300ms);
    stall_end = clock::now();
  });
  run_until([&] { return group.finished(); });
  const auto& r = group.results();
  EXPECT_EQ(r.started, 60u); // nothing due during the stall was skipped
  EXPECT_EQ(count(r, outcome::answered), 60u);
  auto begin = stall_begin - run_start_;
  auto end = stall_end - run_start_;
  int during = 0;
  for (const auto& rec : r.records) {
    if (rec.intended_start < begin || rec.intended_start >= end) continue;
    ++during;
    // Started only after the stall, but its latency includes the wait.
    EXPECT_GE(rec.connected - rec.intended_start, end - rec.intended_start);
  }
  EXPECT_GE(during, 29);
  EXPECT_GE(r.connect_latency.max(), 290ms);
  EXPECT_GE(r.response_latency.max(), 290ms);
  EXPECT_GE(r.max_start_lag, 290ms);
}

/// The client's SYN dropped at a full accept queue, queue drained after `drain`: the connect
/// latency lands on the kernel's SYN retransmission step.
struct syn_step {
  const char* linear_timeouts; ///< tcp_syn_linear_timeouts in the client namespace
  std::chrono::milliseconds drain;
  std::chrono::milliseconds step; ///< the retransmission that gets through
  std::uint64_t retransmissions;
};

class syn_retransmit_test : public client_group_test,
                            public ::testing::WithParamInterface<syn_step> {};

TEST_P(syn_retransmit_test, connect_latency_lands_on_the_retransmission_step) {
  const syn_step& p = GetParam();
  if (!lab::sysctl_exists(ns_, "net.ipv4.tcp_syn_linear_timeouts"))
    GTEST_SKIP() << "kernel without tcp_syn_linear_timeouts";
  lab::write_sysctl(ns_, "net.ipv4.tcp_syn_linear_timeouts", p.linear_timeouts);
  held_listener listener(ns_, 0);
  listener.connect_filler(ns_);
  auto spec = make_spec();
  spec.max_connections = 1;
  spec.connect_timeout_ms = 5000;
  spec.response_timeout_ms = 100;
  run_start_ = clock::now();
  auto group = make_group(spec, listener.endpoint());
  group.start();
  net::steady_timer drain(io_, run_start_ + p.drain);
  bool drained = false;
  drain.async_wait([&](boost::system::error_code) { drained = listener.accept_one(); });
  run_until([&] { return group.finished(); });
  EXPECT_TRUE(drained);
  const auto& r = group.results();
  EXPECT_EQ(count(r, outcome::unanswered), 1u); // connected at last; the listener never answers
  auto buckets = r.connect_latency.buckets();
  ASSERT_EQ(buckets.size(), 1u);
  // One 10 ms bin at the step (the kernel's timers may add a few ms, never subtract).
  EXPECT_GE(buckets[0].lower, p.step - 10ms);
  EXPECT_LT(buckets[0].lower, p.step + 100ms);
  EXPECT_EQ(backlog_lab::testing::nstat_value(ns_, "TcpExtTCPSynRetrans"), p.retransmissions);
  EXPECT_EQ(backlog_lab::testing::nstat_value(ns_, "TcpExtListenOverflows"), p.retransmissions);
}

INSTANTIATE_TEST_SUITE_P(steps, syn_retransmit_test,
                         ::testing::Values(syn_step{"4", 500ms, 1000ms, 1},  // linear: 1 s
                                           syn_step{"4", 1500ms, 2000ms, 2}, // linear: 1 s, 2 s
                                           syn_step{"0", 1500ms, 3000ms, 2}  // classic: 1 s, 3 s
                                           ));

// --- lifecycle and input ------------------------------------------------------------------------

TEST_F(client_group_test, abort_counts_in_flight_connections_as_aborted) {
  held_listener listener(ns_, 64);
  auto spec = make_spec();
  spec.max_connections = 5;
  spec.rate_per_s = 1000;
  spec.response_timeout_ms = 5000;
  auto group = make_group(spec, listener.endpoint());
  group.start();
  run_until([&] { return group.results().connected == 5; });
  EXPECT_EQ(group.in_flight(), 5u);
  group.abort();
  EXPECT_TRUE(group.idle());
  EXPECT_EQ(group.results().counts[outcome::aborted], 5u);
  group.start(); // nothing after abort
  io_.restart();
  io_.run_for(20ms);
  EXPECT_EQ(group.results().started, 5u);
}

TEST_F(client_group_test, stop_lets_in_flight_connections_finish) {
  held_listener listener(ns_, 64);
  auto spec = make_spec();
  spec.rate_per_s = 1000;
  spec.response_timeout_ms = 100;
  auto group = make_group(spec, listener.endpoint());
  group.start();
  run_until([&] { return group.results().started >= 10; });
  group.stop();
  auto started = group.results().started;
  EXPECT_FALSE(group.idle());
  run_until([&] { return group.finished(); });
  EXPECT_EQ(group.results().started, started);
  EXPECT_EQ(group.results().counts[outcome::unanswered], started);
}

TEST_F(client_group_test, a_finished_group_leaves_no_work_in_the_io_context) {
  auto spec = make_spec();
  spec.max_connections = 3;
  spec.connect_timeout_ms = 5000;
  auto group = make_group(spec, unused_port());
  group.start();
  run_until([&] { return group.finished(); });
  // With a deadline timer still armed (5 s), this would run out the 2 s instead.
  io_.restart();
  io_.run_for(2s);
  EXPECT_TRUE(io_.stopped());
  EXPECT_EQ(group.results().counts[outcome::refused], 3u);
}

TEST_F(client_group_test, bad_specs_are_input_errors_naming_the_group) {
  // Arrivals and rates are the reader's to check (tests/harness/scenario); what only the group
  // knows is checked here: request sizes and source addresses.
  auto spec = make_spec();
  spec.request_bytes = {10, 20}; // below the smallest HTTP request
  try {
    make_group(spec, unused_port());
    FAIL() << "expected input_error";
  } catch (const input_error& e) {
    EXPECT_NE(e.where().find("'test'"), std::string::npos);
  }
  spec = make_spec();
  EXPECT_THROW(make_group(spec, unused_port(), {"not-an-address"}), input_error);
  EXPECT_THROW(make_group(spec, unused_port(), {"::1"}), input_error);
}

} // namespace
} // namespace backlog_lab::clients
