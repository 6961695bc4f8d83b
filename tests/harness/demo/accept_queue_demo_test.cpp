// The --demo run: the numbers it must show, taken from a real run.
#include <dirent.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "harness/demo/accept_queue_demo.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::demo {
namespace {

using observer::queued_group;
using observer::tcp_state;

// Whether any fd of this process still refers to the network namespace with this inode.
bool holds_namespace(unsigned long inode) {
  const std::string want = "net:[" + std::to_string(inode) + "]";
  DIR* d = ::opendir("/proc/self/fd");
  bool found = false;
  while (dirent* e = ::readdir(d)) {
    char target[256] = {};
    std::string path = std::string("/proc/self/fd/") + e->d_name;
    ssize_t n = ::readlink(path.c_str(), target, sizeof target - 1);
    if (n > 0 && want == std::string(target, static_cast<std::size_t>(n))) found = true;
  }
  ::closedir(d);
  return found;
}

TEST(demo, shows_backlog_plus_one_close_wait_at_bytes_plus_one_and_dropped_syns) {
  BACKLOG_LAB_REQUIRE_LAB();
  const demo_result r = run_accept_queue_demo();
  const listener_summary& l = r.listener;
  EXPECT_EQ(l.backlog, 128u);
  EXPECT_EQ(l.accept_queue, 129u);
  EXPECT_TRUE(l.full);
  EXPECT_EQ(l.unaccepted_close_wait, 129u);
  EXPECT_EQ(l.children.total(), 129u);
  EXPECT_EQ(l.queued, (std::vector<queued_group>{{tcp_state::close_wait, 101, 129}}));
  EXPECT_EQ(l.unaccepted_close_wait_bytes, 129u * 101u);
  // Inode 0 on every child, read from the socket list itself.
  std::uint32_t children = 0;
  for (const auto& s : r.final_census.sockets) {
    if (s.local != r.listen_endpoint || s.state == tcp_state::listen) continue;
    ++children;
    EXPECT_EQ(s.inode, 0u);
    EXPECT_EQ(s.state, tcp_state::close_wait);
    EXPECT_EQ(s.recv_q, 101u);
  }
  EXPECT_EQ(children, 129u);
  EXPECT_EQ(r.connected, 129u);
  EXPECT_EQ(r.requests_sent, 129u);
  EXPECT_EQ(r.gave_up, 71u);
  const std::int64_t overflows = r.counters.at("TcpExtListenOverflows");
  EXPECT_GT(overflows, 0);
  EXPECT_EQ(overflows, r.counters.at("TcpExtListenDrops"));
  // Each dropped client sent at least its first SYN into the full queue.
  EXPECT_GE(overflows, 71);
  EXPECT_EQ(r.counters.at("TcpPassiveOpens"), 129);

  for (const auto& c : check_demo(r))
    EXPECT_TRUE(c.ok) << c.expectation << ": " << c.measured;
  const std::string why = explain(r);
  EXPECT_NE(why.find("Recv-Q 129"), std::string::npos) << why;
  EXPECT_NE(why.find("Recv-Q 101 (100 + 1)"), std::string::npos) << why;
  EXPECT_NE(why.find("TcpExtListenOverflows (" + std::to_string(overflows) + ")"),
            std::string::npos);
  // Nothing left behind: no fd of ours keeps the lab namespace.
  EXPECT_NE(r.namespace_inode, 0u);
  EXPECT_FALSE(holds_namespace(r.namespace_inode));
}

TEST(demo, checks_fail_when_the_numbers_are_wrong) {
  demo_result r;
  r.listener.backlog = 128;
  r.listener.accept_queue = 128; // not backlog + 1
  r.listener.unaccepted_close_wait = 128;
  r.listener.children[tcp_state::close_wait] = 128;
  r.listener.queued = {{tcp_state::close_wait, 100, 128}}; // no FIN counted
  r.counters = {{"TcpExtListenOverflows", 3}, {"TcpExtListenDrops", 4}};
  int failed = 0;
  for (const auto& c : check_demo(r))
    failed += c.ok ? 0 : 1;
  EXPECT_EQ(failed, 3);
}

TEST(demo, request_has_the_asked_size) {
  for (std::uint32_t n : {0u, 1u, 10u, 53u, 100u, 1250u})
    EXPECT_EQ(make_demo_request(n).size(), n);
  EXPECT_EQ(make_demo_request(100).rfind("GET /demo HTTP/1.1\r\n", 0), 0u);
}

} // namespace
} // namespace backlog_lab::demo
