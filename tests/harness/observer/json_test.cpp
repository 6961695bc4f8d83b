// The JSON forms documented in docs/observe-json.md: every documented key is present.
#include <algorithm>
#include <gtest/gtest.h>
#include <limits>

#include "harness/observer/json.hpp"
#include "tests/harness/observer/busy_namespace.hpp"
#include "tests/harness/observer/tree_reference.hpp"
#include "tests/support/support.hpp"

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

// The streamed census equals, byte for byte, the dump(2) of the tree it replaced (frozen in
// tree_reference.hpp), on a real namespace holding every kind of socket a census reports.
TEST(observer_json, streamed_census_equals_the_tree_reference_byte_for_byte) {
  BACKLOG_LAB_REQUIRE_LAB();
  testing::busy_namespace busy;
  census_reader reader(&busy.ns);
  const census full = reader.read();
  const census summary = reader.read({.summary_only = true});

  // The namespace holds what it should, so the comparison covers it.
  EXPECT_EQ(full.listeners.size(), 6u);
  EXPECT_EQ(full.totals[tcp_state::time_wait], 1u);
  EXPECT_EQ(full.unaccepted_close_wait, 2u);
  const auto full_one = std::find_if(full.listeners.begin(), full.listeners.end(),
                                     [&](const auto& l) { return l.local.port == busy.full_port; });
  ASSERT_NE(full_one, full.listeners.end());
  EXPECT_TRUE(full_one->full);
  std::size_t v6only = 0, unaccepted_established = 0;
  for (const auto& l : full.listeners) {
    v6only += l.v6only;
    unaccepted_established += l.unaccepted_established;
  }
  EXPECT_EQ(v6only, 2u); // [::] v6only, and [::1]: bind() to a non-mapped address sets it
  EXPECT_EQ(unaccepted_established, 3u);

  // The streamed summary is the summary of the kept list.
  EXPECT_EQ(summary.listeners, full.listeners);
  EXPECT_EQ(summary.totals, full.totals);
  EXPECT_EQ(summary.socket_count, full.socket_count);
  EXPECT_TRUE(summary.sockets.empty());

  const std::string expected = reference::tree(full, true).dump(2);
  std::string streamed;
  {
    json_writer w(streamed);
    write_json(w, summary, reader); // the sockets from a second walk, none kept
    w.finish();
  }
  EXPECT_EQ(streamed, expected);
  std::string from_list;
  {
    json_writer w(from_list);
    write_json(w, full, true);
    w.finish();
  }
  EXPECT_EQ(from_list, expected);
  // The trees other commands embed are the same document.
  EXPECT_EQ(to_json(full, true).dump(2), expected);
  EXPECT_EQ(to_json(full, false).dump(2), reference::tree(full, false).dump(2));
  for (const auto& l : full.listeners)
    EXPECT_EQ(to_json(l).dump(2), reference::tree(l).dump(2));
  for (const auto& s : full.sockets)
    EXPECT_EQ(to_json(s).dump(2), reference::tree(s).dump(2));
}

TEST(observer_json, counters_and_state_counts_equal_the_tree_reference) {
  counter_map counters{{"TcpExtListenOverflows", 3},
                       {"TcpActiveOpens", 0},
                       {"Negative", -5},
                       {"IpExtInOctets", std::numeric_limits<std::int64_t>::max()}};
  EXPECT_EQ(to_json(counters).dump(2), reference::tree(counters).dump(2));
  EXPECT_EQ(to_json(counter_map{}).dump(2), "{}");
  state_counts counts;
  for (std::uint8_t i = 1; i < tcp_state_slots; ++i)
    counts[static_cast<tcp_state>(i)] = i * 7u;
  EXPECT_EQ(to_json(counts).dump(2), reference::tree(counts).dump(2));
  EXPECT_EQ(to_json(state_counts{}).dump(2), "{}");
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
