// rule_sync_thread: jobs off the io_context's thread, completions back on it.
#include <algorithm>
#include <chrono>
#include <functional>
#include <gtest/gtest.h>
#include <iostream>
#include <stdexcept>
#include <thread>

#include "proxy_sim/proxier.hpp"
#include "proxy_sim/rule_sync_thread.hpp"
#include "tests/support/nodeport_lab.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::proxy_sim {
namespace {

using namespace std::chrono_literals;

TEST(rule_sync_thread, runs_the_job_elsewhere_and_completes_on_the_io_thread_while_io_ticks) {
  net::io_context io{1};
  rule_sync_thread tool(io);
  std::thread::id job_thread, done_thread;
  std::string result = "unset";
  int ticks_during_job = 0;
  bool job_running = true;
  tool.run(
      [&] {
        job_thread = std::this_thread::get_id();
        std::this_thread::sleep_for(200ms);
        return std::string("nft: no");
      },
      [&](const std::string& error) {
        done_thread = std::this_thread::get_id();
        result = error;
        job_running = false;
      });
  EXPECT_TRUE(tool.busy());
  // A 10 ms timer keeps firing while the job sleeps: the io_context is not blocked.
  net::steady_timer tick(io);
  std::function<void()> arm = [&] {
    tick.expires_after(10ms);
    tick.async_wait([&](boost::system::error_code ec) {
      if (ec || !job_running) return;
      ++ticks_during_job;
      arm();
    });
  };
  arm();
  io.run_for(5s); // returns once the completion ran: the job held the io_context busy till then
  EXPECT_EQ(result, "nft: no");
  EXPECT_NE(job_thread, std::this_thread::get_id());
  EXPECT_EQ(done_thread, std::this_thread::get_id());
  EXPECT_FALSE(tool.busy());
  EXPECT_GE(ticks_during_job, 5);
}

TEST(rule_sync_thread, finish_runs_the_completion_now_and_only_once) {
  net::io_context io{1};
  rule_sync_thread tool(io);
  int completions = 0;
  tool.run([] { return std::string(); }, [&](const std::string&) { ++completions; });
  tool.finish();
  EXPECT_EQ(completions, 1);
  EXPECT_FALSE(tool.busy());
  io.run_for(1s); // the posted completion finds it taken
  EXPECT_EQ(completions, 1);
  tool.finish(); // nothing in flight: nothing happens
  EXPECT_EQ(completions, 1);
}

TEST(rule_sync_thread, an_exception_from_the_job_is_its_error) {
  net::io_context io{1};
  rule_sync_thread tool(io);
  std::string result;
  tool.run([]() -> std::string { throw std::runtime_error("fork: out of memory"); },
           [&](const std::string& error) { result = error; });
  io.run_for(5s);
  EXPECT_EQ(result, "fork: out of memory");
}

TEST(rule_sync_thread, destroyed_with_a_job_in_flight_it_waits_and_completes_nothing) {
  net::io_context io{1};
  bool completed = false;
  bool job_ended = false;
  {
    rule_sync_thread tool(io);
    tool.run(
        [&] {
          std::this_thread::sleep_for(100ms);
          job_ended = true;
          return std::string();
        },
        [&](const std::string&) { completed = true; });
  }
  EXPECT_TRUE(job_ended); // the destructor joined the job
  io.run_for(1s);
  EXPECT_FALSE(completed);
}

/// A proxier's sync of many Services in a real node namespace: while iptables-restore or nft
/// runs, the io_context it shares with the lab's clients and pods goes on. Before the sync had
/// its own thread, a 10 ms timer waited for the whole tool run.
class sync_beside_the_lab : public ::testing::TestWithParam<scenario::proxy_mode> {};

TEST_P(sync_beside_the_lab, a_long_sync_does_not_stall_the_io_context) {
  BACKLOG_LAB_REQUIRE_LAB();
  testing::nodeport_lab lab;
  // A few hundred ms of tool time either way on 2 cores (nft is the slower per Service).
  const int count = GetParam() == scenario::proxy_mode::nftables ? 800 : 3000;
  std::vector<service_endpoints> services;
  for (int i = 0; i < count; ++i) {
    service_endpoints s;
    s.service = "scale/svc-" + std::to_string(i) + ":http";
    s.node_port = static_cast<uint16_t>(20'000 + i);
    s.cluster_ip = "10.96." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
    s.endpoints.emplace_back(net::ip::make_address_v4("203.0.113.10"), 8080);
    services.push_back(std::move(s));
  }
  scenario::proxy_spec spec;
  spec.mode = GetParam();
  spec.preset = spec.mode == scenario::proxy_mode::nftables ? scenario::proxy_preset::v1_33
                                                            : scenario::proxy_preset::v1_24;
  spec.sync_delay_ms = 0;
  auto proxier = make_proxier(lab.io, lab.node, spec, services, 1);
  proxier->start(); // the install, waited for
  ASSERT_EQ(proxier->stats().rule_syncs, 1u);

  proxier->update_endpoints(services[0].service, {});
  using clock = std::chrono::steady_clock;
  clock::duration longest_gap{};
  int ticks = 0; ///< before the sync was recorded
  auto last = clock::now();
  net::steady_timer tick(lab.io);
  std::function<void()> arm = [&] {
    tick.expires_after(5ms);
    tick.async_wait([&](boost::system::error_code ec) {
      if (ec) return;
      auto now = clock::now();
      longest_gap = std::max(longest_gap, now - last);
      last = now;
      if (proxier->stats().rule_syncs < 2) {
        ++ticks;
        arm();
      }
    });
  };
  arm();
  auto guard = clock::now() + 60s;
  while (proxier->stats().rule_syncs < 2 && proxier->stats().rule_sync_failures == 0 &&
         clock::now() < guard)
    lab.run_io(100ms);
  const auto stats = proxier->stats();
  ASSERT_EQ(stats.rule_syncs, 2u) << (stats.sync_errors.empty() ? "" : stats.sync_errors[0]);
  const double sync_ms = stats.rule_sync_ms.back();
  const double gap_ms = std::chrono::duration<double, std::milli>(longest_gap).count();
  // The sync must be long enough to tell.
  ASSERT_GT(sync_ms, 40) << "too fast to tell";
  EXPECT_LT(gap_ms, sync_ms / 2) << "the io_context stalled " << gap_ms << " ms of a " << sync_ms
                                 << " ms sync";
  EXPECT_GE(ticks, 3) << "a " << sync_ms << " ms sync";
  std::cout << "sync " << sync_ms << " ms, longest gap " << gap_ms << " ms, " << ticks
            << " ticks\n";
  proxier->stop();
}

INSTANTIATE_TEST_SUITE_P(modes, sync_beside_the_lab,
                         ::testing::Values(scenario::proxy_mode::iptables,
                                           scenario::proxy_mode::nftables),
                         [](const auto& info) {
                           return std::string(scenario::name_of(info.param));
                         });

} // namespace
} // namespace backlog_lab::proxy_sim
