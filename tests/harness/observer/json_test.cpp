// The JSON forms documented in docs/observe-json.md: every documented key is present.
#include <gtest/gtest.h>

#include "harness/observer/json.hpp"

namespace backlog_lab::observer {
namespace {

TEST(observer_json, census_listener_and_socket_keys) {
  tcp_socket l;
  l.state = tcp_state::listen;
  ASSERT_TRUE(ip_address::parse("::", l.local.address));
  l.remote.address = l.local.address;
  l.family = l.local.address.family;
  l.local.port = 30720;
  l.recv_q = 2;
  l.send_q = 1;
  l.inode = 7;
  tcp_socket c = l;
  c.state = tcp_state::close_wait;
  ASSERT_TRUE(ip_address::parse("::ffff:198.51.100.2", c.local.address));
  ASSERT_TRUE(ip_address::parse("::ffff:198.51.100.1", c.remote.address));
  c.remote.port = 40001;
  c.recv_q = 31;
  c.send_q = 0;
  c.inode = 0;
  c.shutdown = 1;
  census cs = summarize(std::vector<tcp_socket>{l, c, c});
  cs.sockets = {l, c, c};
  auto j = to_json(cs);
  for (const char* k : {"socket_count", "totals", "unaccepted_close_wait", "listeners", "sockets"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_EQ(j["totals"], (nlohmann::json{{"LISTEN", 1}, {"CLOSE-WAIT", 2}}));
  const auto& jl = j["listeners"][0];
  for (const char* k :
       {"local", "family", "address", "port", "v6only", "inode", "uid", "accept_queue", "backlog",
        "full", "children", "unaccepted", "owned", "kernel_only"})
    EXPECT_TRUE(jl.contains(k)) << k;
  EXPECT_EQ(jl["local"], "*:30720");
  EXPECT_EQ(jl["full"], true);
  for (const char* k : {"count", "bytes", "established", "established_bytes", "close_wait",
                        "close_wait_bytes", "queued", "peers"})
    EXPECT_TRUE(jl["unaccepted"].contains(k)) << k;
  EXPECT_EQ(jl["unaccepted"]["queued"],
            (nlohmann::json::array({{{"state", "CLOSE-WAIT"}, {"recv_q", 31}, {"count", 2}}})));
  EXPECT_EQ(
      jl["unaccepted"]["peers"],
      (nlohmann::json::array({{{"address", "::ffff:198.51.100.1"}, {"count", 2}, {"bytes", 62}}})));
  const auto& js = j["sockets"][1];
  for (const char* k :
       {"state", "recv_q", "send_q", "local", "peer", "family", "local_address", "local_port",
        "peer_address", "peer_port", "inode", "uid", "v6only", "shutdown", "ifindex"})
    EXPECT_TRUE(js.contains(k)) << k;
  EXPECT_EQ(js["local"], "[::ffff:198.51.100.2]:30720");
  EXPECT_EQ(js["peer"], "[::ffff:198.51.100.1]:40001");
  EXPECT_EQ(js["shutdown"], "-->");
  EXPECT_FALSE(to_json(cs, false).contains("sockets"));
}

TEST(observer_json, shutdown_markers_match_ss) {
  EXPECT_EQ(shutdown_marker(0), "<->");
  EXPECT_EQ(shutdown_marker(1), "-->");
  EXPECT_EQ(shutdown_marker(2), "<--");
  EXPECT_EQ(shutdown_marker(3), "---");
}

TEST(observer_json, timeline_keys) {
  timeline t;
  t.interval = std::chrono::milliseconds(100);
  t.namespaces = {"node"};
  t.counter_names = {"TcpExtListenOverflows"};
  listener_track l;
  l.local = {ip_address::v4(127, 0, 0, 1), 80};
  l.peak_accept_queue = 3;
  l.first_full_ms = 100;
  t.listeners.push_back(l);
  sample s;
  s.t_ms = 100;
  s.namespaces.push_back({});
  s.namespaces[0].counters = {5};
  s.listeners.push_back({0, 3, 2});
  t.samples.push_back(s);
  auto j = to_json(t);
  EXPECT_EQ(j["interval_ms"], 100);
  EXPECT_EQ(j["listeners"][0]["namespace"], "node");
  EXPECT_EQ(j["listeners"][0]["peak_accept_queue"], 3);
  EXPECT_EQ(j["listeners"][0]["first_full_ms"], 100.0);
  EXPECT_EQ(j["samples"][0]["namespaces"][0]["counters"]["TcpExtListenOverflows"], 5);
  EXPECT_EQ(j["samples"][0]["listeners"][0]["accept_queue"], 3);
}

} // namespace
} // namespace backlog_lab::observer
