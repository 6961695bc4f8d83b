// A sock_diag dump is not atomic, and a live node owes us nothing: the census, its JSON and its
// text must take any socket list the parser accepts (children with no listener, more queued
// children than Recv-Q, a full flag with nothing queued, maximal values) without crashing, and
// report what they saw rather than what they expected.
#include <sys/socket.h>

#include <cstdint>
#include <gtest/gtest.h>
#include <limits>
#include <random>
#include <sstream>

#include "harness/observer/census.hpp"
#include "harness/observer/json.hpp"
#include "harness/observer/text.hpp"

namespace backlog_lab::observer {
namespace {

constexpr std::uint32_t u32_max = std::numeric_limits<std::uint32_t>::max();

ip_address addr(const char* text) {
  ip_address a;
  EXPECT_TRUE(ip_address::parse(text, a)) << text;
  return a;
}

tcp_socket sock(tcp_state st, const char* local, std::uint16_t lport, const char* remote,
                std::uint16_t rport, std::uint32_t rq, std::uint32_t wq, std::uint32_t ino) {
  tcp_socket s;
  s.state = st;
  s.local = {addr(local), lport};
  s.remote = {addr(remote), rport};
  s.family = s.local.address.family;
  s.recv_q = rq;
  s.send_q = wq;
  s.inode = ino;
  return s;
}

// Everything a census is shown through, so that a crash anywhere fails the test.
void render_all(const census& c) {
  std::ostringstream out;
  print_listeners(out, c);
  print_sockets(out, c.sockets, true);
  print_sockets(out, c.sockets, false);
  out << to_json(c, true).dump();
  EXPECT_FALSE(out.str().empty());
}

TEST(inconsistent_dump, queues_that_disagree_with_their_children_are_reported_as_seen) {
  using st = tcp_state;
  std::vector<tcp_socket> sockets = {
      // Says 129 queued, but the dump caught none of them (they were accepted meanwhile).
      sock(st::listen, "0.0.0.0", 30720, "0.0.0.0", 0, 129, 128, 7),
      // Says 0 queued, yet the dump has children with inode 0 (they arrived after it).
      sock(st::listen, "::", 31425, "::", 0, 0, 128, 8),
      // Children whose listener the dump missed (closed meanwhile).
      sock(st::close_wait, "198.51.100.1", 32426, "198.51.100.9", 4000, 82, 0, 0),
      // The same listener twice (seen in both halves of a split dump).
      sock(st::listen, "0.0.0.0", 9000, "0.0.0.0", 0, u32_max, 0, 9),
      sock(st::listen, "0.0.0.0", 9000, "0.0.0.0", 0, 1, 1, 9),
  };
  for (int i = 0; i < 300; ++i)
    sockets.push_back(sock(st::close_wait, "::ffff:198.51.100.1", 31425, "::ffff:198.51.100.2",
                           static_cast<std::uint16_t>(1000 + i), u32_max, 0, 0));
  census c = summarize(sockets);
  c.sockets = sockets;
  ASSERT_EQ(c.listeners.size(), 4u);
  const listener_summary& full_but_empty = c.listeners[0]; // sorted by port: 9000, 9000, ...
  EXPECT_EQ(full_but_empty.local.port, 9000);
  const auto* p30720 = &c.listeners[2];
  const auto* p31425 = &c.listeners[3];
  EXPECT_EQ(p30720->accept_queue, 129u);
  EXPECT_TRUE(p30720->full);
  EXPECT_EQ(p30720->unaccepted(), 0u);
  EXPECT_EQ(p31425->accept_queue, 0u);
  EXPECT_EQ(p31425->unaccepted_close_wait, 300u);
  // Byte sums are 64-bit: 300 x (2^32 - 1) does not wrap.
  EXPECT_EQ(p31425->unaccepted_close_wait_bytes, 300ull * u32_max);
  EXPECT_EQ(c.unaccepted_close_wait, 300u);
  EXPECT_EQ(c.totals[st::close_wait], 301u); // the orphaned child counts in the totals only
  render_all(c);
}

TEST(inconsistent_dump, random_socket_lists_never_crash_the_census_or_its_views) {
  std::mt19937 random(20180306);
  const tcp_state states[] = {tcp_state::established, tcp_state::syn_sent, tcp_state::syn_recv,
                              tcp_state::fin_wait1,   tcp_state::fin_wait2, tcp_state::time_wait,
                              tcp_state::close,       tcp_state::close_wait, tcp_state::last_ack,
                              tcp_state::listen,      tcp_state::closing};
  const char* addresses[] = {"0.0.0.0", "127.0.0.1", "::", "::1", "::ffff:127.0.0.1"};
  census_builder builder; // reused, as the sampler does, so stale scratch space would show
  for (int round = 0; round < 200; ++round) {
    std::vector<tcp_socket> sockets;
    int n = static_cast<int>(random() % 64);
    for (int i = 0; i < n; ++i) {
      auto pick = [&](std::uint32_t limit) { return static_cast<std::uint32_t>(random() % limit); };
      sockets.push_back(sock(states[pick(11)], addresses[pick(5)],
                             static_cast<std::uint16_t>(pick(4)), addresses[pick(5)],
                             static_cast<std::uint16_t>(pick(65536)),
                             pick(2) ? pick(200) : u32_max - pick(2), pick(200), pick(3)));
    }
    census c;
    builder.summarize(sockets, c);
    c.sockets = sockets;
    std::uint32_t listeners = 0;
    for (const auto& s : sockets)
      listeners += s.state == tcp_state::listen;
    ASSERT_EQ(c.listeners.size(), listeners);
    ASSERT_EQ(c.socket_count, sockets.size());
    std::uint64_t children = 0;
    for (const auto& l : c.listeners)
      children += l.children.total();
    ASSERT_LE(children, sockets.size() - listeners) << "a child counted twice";
    render_all(c);
  }
}

} // namespace
} // namespace backlog_lab::observer
