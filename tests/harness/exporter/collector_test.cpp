// The collector against a real kernel: a never-accepting listener in a lab namespace, compared
// with ss and nstat, and promtool on the text it renders.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <gtest/gtest.h>
#include <thread>

#include "harness/exporter/collector.hpp"
#include "harness/lab/process.hpp"
#include "tests/harness/exporter/metrics_text.hpp"
#include "tests/harness/lab/tcp_util.hpp"
#include "tests/support/kernel_view.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::exporter {
namespace {

using namespace std::chrono_literals;
using testing::metric_value;

constexpr std::uint16_t port = 8080;

// A listener with backlog 2 that never accepts, and `clients` connections to it that send a
// request; every other one closes (its child turns CLOSE-WAIT in the queue).
struct stuck_listener {
  lab::netns ns = lab::netns::create("exporter-test");
  testing::unique_fd listener = testing::tcp_listen(ns, "127.0.0.1", port, 2);
  std::vector<testing::unique_fd> clients;

  void connect(int n) {
    for (int i = 0; i < n; ++i)
      clients.push_back(testing::tcp_connect_start(ns, "", "127.0.0.1", port));
    for (std::size_t i = 0; i < clients.size(); ++i) {
      if (testing::tcp_connect_finish(clients[i], 200ms) != 0) continue;
      const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
      (void)::send(clients[i].get(), req, sizeof req - 1, MSG_NOSIGNAL);
      if (i % 2 == 1) ::shutdown(clients[i].get(), SHUT_WR);
    }
    std::this_thread::sleep_for(100ms);
  }
};

TEST(Collector, ListenerFiguresMatchSsAndPromtoolAcceptsThem) {
  BACKLOG_LAB_REQUIRE_LAB();
  stuck_listener lab;
  lab.connect(8);
  collect_target target;
  target.netns_path = lab.ns.proc_path();
  collector c(target);
  // Clients still knocking at the full queue (retransmitted SYNs, ACKs to retransmitted
  // SYN-ACKs) keep the namespace's overflow counter growing while we read: the scrape's value
  // lies between nstat's before and after it.
  const auto overflows_before = testing::nstat_counter(lab.ns, "TcpExtListenOverflows");
  const std::string text = c.collect();
  const auto overflows_after = testing::nstat_counter(lab.ns, "TcpExtListenOverflows");

  const auto ss = testing::on_port(testing::ss_sockets(lab.ns, "-tane"), port);
  std::uint64_t recv_q = 0, send_q = 0, estab = 0, close_wait = 0, cw_bytes = 0;
  for (const auto& s : ss) {
    if (s.state == "LISTEN") {
      recv_q = s.recv_q;
      send_q = s.send_q;
    } else if (s.inode == 0 && s.state == "ESTAB") {
      ++estab;
    } else if (s.inode == 0 && s.state == "CLOSE-WAIT") {
      ++close_wait;
      cw_bytes += s.recv_q;
    }
  }
  ASSERT_EQ(recv_q, 3u) << "backlog 2 holds 3 when full (docs/reference/kernel.md 1)";
  const std::string inode = std::to_string(lab.ns.inode());
  const std::vector<std::string> at{"netns=\"" + inode + "\"", "port=\"8080\""};
  EXPECT_EQ(metric_value(text, "backlog_lab_listener_accept_queue", at), recv_q);
  EXPECT_EQ(metric_value(text, "backlog_lab_listener_backlog", at), send_q);
  auto with = [&](const char* state) {
    auto l = at;
    l.push_back(std::string("state=\"") + state + "\"");
    return l;
  };
  EXPECT_EQ(metric_value(text, "backlog_lab_listener_unaccepted_children", with("ESTAB")), estab);
  EXPECT_EQ(metric_value(text, "backlog_lab_listener_unaccepted_children", with("CLOSE-WAIT")),
            close_wait);
  EXPECT_GT(close_wait, 0u);
  EXPECT_EQ(metric_value(text, "backlog_lab_listener_unaccepted_bytes", with("CLOSE-WAIT")),
            cw_bytes);
  const auto overflows =
      metric_value(text, "backlog_lab_tcpext_listen_overflows_total", {"netns=\"" + inode + "\""});
  ASSERT_TRUE(overflows && overflows_before && overflows_after);
  EXPECT_GE(*overflows, static_cast<double>(*overflows_before));
  EXPECT_LE(*overflows, static_cast<double>(*overflows_after));
  EXPECT_EQ(metric_value(text, "backlog_lab_netns_tcp_sockets",
                         {"netns=\"" + inode + "\"", "state=\"LISTEN\""}),
            1);

  if (!lab::have_program("promtool")) GTEST_SKIP() << "promtool (Debian prometheus) missing";
  auto check = testing::promtool_check(text);
  EXPECT_EQ(check.status, 0) << check.output << "\n" << text;
}

TEST(Collector, AllNetnsFindsALabNamespaceByItsProcessAndSkipsAVanishedOne) {
  BACKLOG_LAB_REQUIRE_LAB();
  stuck_listener lab;
  // A process inside the lab namespace, so /proc/*/ns/net finds it.
  auto holder = lab::child_process::spawn(&lab.ns, [] {
    ::pause();
    return 0;
  });
  const auto inode = lab.ns.inode();
  const std::string ns_link = "/proc/" + std::to_string(holder.pid()) + "/ns/net";
  for (int i = 0; i < 200; ++i) { // until the child has entered the namespace (hang guard 2 s)
    struct stat st {};
    if (::stat(ns_link.c_str(), &st) == 0 && st.st_ino == inode) break;
    std::this_thread::sleep_for(10ms);
  }
  auto entries = observer::list_network_namespaces();
  auto it = std::find_if(entries.begin(), entries.end(),
                         [&](const observer::namespace_entry& e) { return e.inode == inode; });
  ASSERT_NE(it, entries.end());
  EXPECT_EQ(it->pid, holder.pid());
  std::string comm;
  std::getline(std::ifstream("/proc/" + std::to_string(holder.pid()) + "/comm"), comm);
  EXPECT_EQ(it->comm, comm);

  // The namespace's only process exits after it was listed: the scrape leaves it out and
  // counts it, without waiting for anything.
  observer::namespace_entry gone = *it;
  holder.kill_and_wait();
  lab.listener.reset();
  collect_target all;
  all.all_netns = true;
  collector c(all);
  c.read_namespaces(
      {gone, observer::namespace_entry{lab::netns::current().inode(), ::getpid(), "self"}});
  EXPECT_EQ(c.namespace_errors(), 1u);
  ASSERT_EQ(c.last_readings().size(), 1u);
  EXPECT_EQ(c.last_readings()[0].entry.pid, ::getpid());
}

} // namespace
} // namespace backlog_lab::exporter
