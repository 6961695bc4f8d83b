// Each backend fault, driven by a scenario timeline, seen by the clients as the kernel makes it.
#include <gtest/gtest.h>

#include "harness/runner/runner.hpp"
#include "harness/scenario/reader.hpp"
#include "tests/support/run_checks.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::runner {
namespace {

// Clients talk straight to one pod; `event` happens at 600 ms; clients run from 0 to 1500 ms.
run_result run_fault(const std::string& event, const std::string& backend_extra = "",
                     const std::string& client_extra = "") {
  std::string text = R"({"name": "fault", "duration_ms": 1600, "drain_ms": 1500, "seed": 1,
    "sysctls": {"clients": {"net.ipv4.tcp_syn_retries": 1}},
    "backends": [{"name": "p", "backlog": 4)" +
                     backend_extra + R"(}],
    "clients": [{"name": "c", "target": "203.0.113.10:8080", "rate_per_s": 40, "stop_ms": 1500,
                 "connect_timeout_ms": 800, "response_timeout_ms": 500)" +
                     client_extra + R"(}],
    "timeline": [{"at_ms": 600, "action": ")" +
                     event + R"(", "target": "p"}]})";
  return run_scenario(scenario::parse_scenario(text, "fault.json"));
}

using testing::metric;

TEST(faults, kill_refuses_new_connections) {
  BACKLOG_LAB_REQUIRE_LAB();
  run_result r = run_fault("kill");
  EXPECT_GT(metric(r, "clients.c.answered"), 10);
  EXPECT_GT(metric(r, "clients.c.refused"), 10) << "no listener: RST to every SYN";
  EXPECT_EQ(metric(r, "clients.c.syn_unanswered"), 0);
  EXPECT_EQ(metric(r, "census.p.LISTEN"), 0);
}

TEST(faults, kill_closes_answered_reads_and_resets_unread_ones) {
  BACKLOG_LAB_REQUIRE_LAB();
  // Requests already read (waiting out the service time) end with the dying process's FIN.
  run_result r = run_fault("kill", R"(, "service_time_ms": 300)");
  EXPECT_GT(metric(r, "clients.c.closed_early"), 0);
  // Connections still queued or unread when the process dies are reset by the kernel.
  auto text = R"({"name": "kill-frozen", "duration_ms": 1200, "drain_ms": 1500,
    "backends": [{"name": "p", "backlog": 8}],
    "clients": [{"name": "c", "target": "203.0.113.10:8080", "rate_per_s": 40, "stop_ms": 1100,
                 "connect_timeout_ms": 800, "response_timeout_ms": 1000}],
    "timeline": [{"at_ms": 200, "action": "freeze", "target": "p"},
                 {"at_ms": 500, "action": "kill", "target": "p"}]})";
  run_result frozen = run_scenario(scenario::parse_scenario(text, "kill-frozen.json"));
  EXPECT_GT(metric(frozen, "clients.c.reset"), 0);
  EXPECT_GT(metric(frozen, "counter.pods.TcpOutRsts"), 0);
  EXPECT_GT(metric(frozen, "clients.c.refused"), 0) << "after the kill: no listener";
}

TEST(faults, freeze_fills_the_queue_then_drops_syns) {
  BACKLOG_LAB_REQUIRE_LAB();
  run_result r = run_fault("freeze");
  EXPECT_EQ(metric(r, "listener.p.8080.accept_queue_peak"), 5) << "backlog 4 + 1";
  EXPECT_GT(metric(r, "clients.c.unanswered"), 0)
      << "connected into the frozen queue, never answered";
  EXPECT_GT(metric(r, "clients.c.syn_unanswered"), 0) << "SYNs dropped once the queue was full";
  EXPECT_GT(metric(r, "counter.pods.TcpExtListenOverflows"), 0);
}

TEST(faults, vanish_leaves_syns_unanswered_without_refusing) {
  BACKLOG_LAB_REQUIRE_LAB();
  run_result r = run_fault("vanish");
  EXPECT_GT(metric(r, "clients.c.answered"), 10);
  EXPECT_GT(metric(r, "clients.c.syn_unanswered"), 10);
  EXPECT_EQ(metric(r, "clients.c.refused"), 0);
  EXPECT_EQ(metric(r, "clients.c.other"), 0) << "no EHOSTUNREACH: the address is simply gone";
}

TEST(faults, close_listener_refuses_new_connections) {
  BACKLOG_LAB_REQUIRE_LAB();
  run_result r = run_fault("close-listener");
  EXPECT_GT(metric(r, "clients.c.refused"), 10);
  EXPECT_EQ(metric(r, "census.p.LISTEN"), 0);
}

TEST(faults, reset_all_resets_open_connections) {
  BACKLOG_LAB_REQUIRE_LAB();
  // Slow answers keep connections open at the moment of the reset.
  run_result r = run_fault("reset-all", R"(, "service_time_ms": 300)");
  EXPECT_GT(metric(r, "clients.c.reset"), 0);
  EXPECT_GT(metric(r, "backend.p.resets_sent"), 0);
  EXPECT_GT(metric(r, "clients.c.answered"), 10)
      << "the listener stays: later connections are served";
}

TEST(faults, freeze_then_resume_serves_the_queue) {
  BACKLOG_LAB_REQUIRE_LAB();
  auto text = R"({"name": "resume", "duration_ms": 1500, "drain_ms": 1500,
    "backends": [{"name": "p", "backlog": 16}],
    "clients": [{"name": "c", "target": "203.0.113.10:8080", "rate_per_s": 20, "stop_ms": 1000,
                 "response_timeout_ms": 1500}],
    "timeline": [{"at_ms": 200, "action": "freeze", "target": "p"},
                 {"at_ms": 700, "action": "resume", "target": "p"}]})";
  run_result r = run_scenario(scenario::parse_scenario(text, "resume.json"));
  EXPECT_GT(metric(r, "listener.p.8080.accept_queue_peak"), 3);
  EXPECT_EQ(metric(r, "clients.c.answered_share"), 1) << "queued requests were served after resume";
  EXPECT_GT(metric(r, "clients.c.response_ms.max"), 400);
}

} // namespace
} // namespace backlog_lab::runner
