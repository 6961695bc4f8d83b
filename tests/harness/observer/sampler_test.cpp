// The sampler in lab namespaces: a listener that fills up while it is being sampled.
#include <sys/socket.h>

#include <cerrno>
#include <deque>
#include <gtest/gtest.h>

#include "harness/lab/netns.hpp"
#include "harness/lab/sysctl.hpp"
#include "harness/observer/sampler.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::observer {
namespace {

TEST(sampler, records_a_listener_filling_up_and_the_counters_that_moved) {
  BACKLOG_LAB_REQUIRE_LAB();
  lab::netns node = lab::netns::create("node");
  lab::netns quiet = lab::netns::create("quiet");
  lab::write_sysctl(node, "net.ipv4.tcp_syn_retries", "1"); // hang guard for the dropped SYN

  net::io_context io{1};
  tcp::acceptor acceptor(io);
  {
    lab::netns_scope in(node);
    acceptor.open(tcp::v4());
    acceptor.bind({net::ip::address_v4::loopback(), 0});
    acceptor.listen(2); // holds 3, never accepts
  }
  const endpoint listen_at{ip_address::v4(127, 0, 0, 1), acceptor.local_endpoint().port()};

  sampler s(io, {{"node", &node}, {"quiet", &quiet}},
            sampler_options{.interval = std::chrono::milliseconds(20)});
  s.start();

  std::deque<tcp::socket> clients;
  net::steady_timer fill(io), done(io);
  double filled_at_ms = -1;
  fill.expires_after(std::chrono::milliseconds(100));
  fill.async_wait([&](const boost::system::error_code&) {
    lab::netns_scope in(node);
    for (int i = 0; i < 4; ++i) {
      clients.emplace_back(io);
      clients.back().open(tcp::v4());
      clients.back().non_blocking(true);
      auto to = acceptor.local_endpoint();
      ::connect(clients.back().native_handle(), to.data(), to.size()); // 3 complete, 1 dropped
    }
    filled_at_ms = s.result().samples.back().t_ms;
  });
  done.expires_after(std::chrono::milliseconds(300));
  done.async_wait([&](const boost::system::error_code&) { s.stop(); });
  io.run_for(std::chrono::seconds(5)); // hang guard; stop() ends the run at ~300 ms
  s.sample_now();

  const timeline& t = s.result();
  ASSERT_GE(t.samples.size(), 4u);
  EXPECT_EQ(t.namespaces, (std::vector<std::string>{"node", "quiet"}));
  EXPECT_EQ(t.samples.front().t_ms, 0.0);
  for (std::size_t i = 1; i < t.samples.size(); ++i)
    EXPECT_GT(t.samples[i].t_ms, t.samples[i - 1].t_ms);

  const listener_track* l = t.find_listener("node", listen_at);
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->backlog, 2u);
  EXPECT_EQ(l->peak_accept_queue, 3u);
  ASSERT_TRUE(l->first_full_ms.has_value());
  EXPECT_GE(*l->first_full_ms, filled_at_ms);
  EXPECT_GT(l->time_full_ms, 0.0);
  EXPECT_LE(l->time_full_ms, t.samples.back().t_ms - *l->first_full_ms + 1e-9);
  EXPECT_EQ(t.find_listener("quiet", listen_at), nullptr);

  // Before the fill the queue was empty at every sample; at the end it is 3 of 2.
  const sample& first = t.samples.front();
  ASSERT_EQ(first.listeners.size(), 1u);
  EXPECT_EQ(first.listeners[0].accept_queue, 0u);
  const sample& last = t.samples.back();
  ASSERT_EQ(last.listeners.size(), 1u);
  EXPECT_EQ(last.listeners[0].accept_queue, 3u);
  EXPECT_EQ(last.listeners[0].backlog, 2u);

  // Counters are deltas since start(): 3 passive opens, the dropped SYN counted.
  const int passive = t.counter_index("TcpPassiveOpens");
  const int overflows = t.counter_index("TcpExtListenOverflows");
  const int drops = t.counter_index("TcpExtListenDrops");
  ASSERT_GE(passive, 0);
  ASSERT_GE(overflows, 0);
  EXPECT_EQ(first.namespaces[0].counters[passive], 0);
  EXPECT_EQ(last.namespaces[0].counters[passive], 3);
  EXPECT_GE(last.namespaces[0].counters[overflows], 1);
  EXPECT_EQ(last.namespaces[0].counters[overflows], last.namespaces[0].counters[drops]);
  // The second namespace saw nothing at all.
  for (std::int64_t v : last.namespaces[1].counters)
    EXPECT_EQ(v, 0);
  EXPECT_EQ(last.namespaces[1].totals.total(), 0u);
  // Per-state totals of the node: listener, 3 ESTAB children, 3 ESTAB clients, 1 SYN-SENT.
  EXPECT_EQ(last.namespaces[0].totals[tcp_state::listen], 1u);
  EXPECT_EQ(last.namespaces[0].totals[tcp_state::established], 6u);
  EXPECT_EQ(last.namespaces[0].totals[tcp_state::syn_sent], 1u);
  EXPECT_EQ(last.namespaces[0].unaccepted_close_wait, 0u);

  // Closing the clients turns the queued children into un-accepted CLOSE-WAIT.
  for (auto& c : clients)
    c.close();
  s.sample_now();
  EXPECT_EQ(s.result().samples.back().namespaces[0].unaccepted_close_wait, 3u);
}

} // namespace
} // namespace backlog_lab::observer
