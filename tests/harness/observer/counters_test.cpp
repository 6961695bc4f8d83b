// Counter text parsing (pure) and, in lab namespaces, the reader against nstat.
#include <gtest/gtest.h>
#include <set>
#include <sstream>
#include <thread>

#include "harness/core/asio.hpp"
#include "harness/lab/netns.hpp"
#include "harness/lab/process.hpp"
#include "harness/observer/counters.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::observer {
namespace {

const char* netstat_text = "TcpExt: SyncookiesSent SyncookiesRecv ListenOverflows ListenDrops\n"
                           "TcpExt: 0 1 624 629\n" // drops >= overflows, never equal here
                           "IpExt: InNoRoutes InOctets\n"
                           "IpExt: 0 70440\n";

const char* snmp_text = "Ip: Forwarding DefaultTTL InReceives\n"
                        "Ip: 1 64 1045\n"
                        "Tcp: RtoAlgorithm MaxConn PassiveOpens\n"
                        "Tcp: 1 -1 129\n";

std::string parse_error(std::string_view text) {
  counter_map m;
  auto e = parse_counter_text(text, m);
  return e ? e->describe() : std::string();
}

TEST(counter_parse, names_are_prefix_plus_field_as_nstat_prints_them) {
  counter_map m;
  std::size_t fields = 0;
  ASSERT_FALSE(parse_counter_text(netstat_text, m, &fields));
  ASSERT_FALSE(parse_counter_text(snmp_text, m, &fields));
  EXPECT_EQ(fields, 12u);
  EXPECT_EQ(m.size(), 12u);
  // Distinct values, so that a parser that swaps two columns fails here.
  EXPECT_EQ(m.at("TcpExtListenOverflows"), 624);
  EXPECT_EQ(m.at("TcpExtListenDrops"), 629);
  EXPECT_EQ(m.at("TcpExtSyncookiesRecv"), 1);
  EXPECT_EQ(m.at("IpExtInOctets"), 70440);
  EXPECT_EQ(m.at("IpInReceives"), 1045);
  EXPECT_EQ(m.at("TcpPassiveOpens"), 129);
  EXPECT_EQ(m.at("TcpMaxConn"), -1); // the one negative value the kernel prints
}

TEST(counter_parse, reparsing_updates_in_place) {
  counter_map m;
  ASSERT_FALSE(parse_counter_text(netstat_text, m));
  ASSERT_FALSE(parse_counter_text("TcpExt: ListenOverflows\nTcpExt: 700\n", m));
  EXPECT_EQ(m.at("TcpExtListenOverflows"), 700);
  EXPECT_EQ(m.size(), 6u);
}

TEST(counter_parse, tolerates_blank_lines_tabs_and_no_final_newline) {
  counter_map m;
  ASSERT_FALSE(parse_counter_text("\nTcp:\tActiveOpens  PassiveOpens\r\n\nTcp: 3\t4", m));
  EXPECT_EQ(m.at("TcpActiveOpens"), 3);
  EXPECT_EQ(m.at("TcpPassiveOpens"), 4);
  // A prefix with no fields (the kernel never prints one, but it is well-formed).
  EXPECT_TRUE(parse_error("IcmpMsg:\nIcmpMsg:\n").empty());
}

TEST(counter_parse, malformed_text_gives_clear_errors) {
  EXPECT_NE(parse_error("").find("empty"), std::string::npos);
  EXPECT_NE(parse_error("\n \n").find("empty"), std::string::npos);
  EXPECT_NE(parse_error("TcpExt: A B\n").find("no value line"), std::string::npos);
  EXPECT_NE(parse_error("TcpExt: A B\nIpExt: 1 2\n").find("expected the values of 'TcpExt:'"),
            std::string::npos);
  EXPECT_NE(parse_error("TcpExt: A B C\nTcpExt: 1 2\n").find("without a value: 'C'"),
            std::string::npos);
  EXPECT_NE(parse_error("TcpExt: A\nTcpExt: 1 2\n").find("more values than names"),
            std::string::npos);
  EXPECT_NE(parse_error("TcpExt: A B\nTcpExt: 1 x2\n").find("TcpExtB is not an integer: 'x2'"),
            std::string::npos);
  EXPECT_NE(parse_error("TcpExt: A\nTcpExt: 1.5\n").find("not an integer"), std::string::npos);
  EXPECT_NE(parse_error("TcpExt: A\nTcpExt: 99999999999999999999999\n").find("out of range"),
            std::string::npos);
  EXPECT_NE(parse_error("no colon here\nTcpExt: 1\n").find("expected 'Prefix:"), std::string::npos);
  EXPECT_NE(parse_error("Tcp Ext: A\nTcp Ext: 1\n").find("expected 'Prefix:"), std::string::npos);
  EXPECT_NE(parse_error(": A\n: 1\n").find("expected 'Prefix:"), std::string::npos);
  // Errors name the line.
  EXPECT_EQ(parse_error("Tcp: A\nTcp: 1\nTcpExt: B\nTcpExt: z\n").rfind("line 4:", 0), 0u);
  // Binary garbage does not crash.
  std::string junk(300, '\0');
  for (std::size_t i = 0; i < junk.size(); ++i)
    junk[i] = static_cast<char>(i * 37);
  EXPECT_FALSE(parse_error(junk).empty());
}

TEST(counter_delta, subtracts_and_counts_new_counters_from_zero) {
  counter_map a{{"TcpExtListenDrops", 10}, {"TcpPassiveOpens", 5}, {"Gone", 3}};
  counter_map b{{"TcpExtListenDrops", 16}, {"TcpPassiveOpens", 5}, {"New", 2}};
  counter_map d = delta(a, b);
  EXPECT_EQ(d, (counter_map{{"TcpExtListenDrops", 6}, {"TcpPassiveOpens", 0}, {"New", 2}}));
}

// --- in a lab namespace -------------------------------------------------------------------

// nstat's view: `nstat -asz` (absolute, no history update, zeros included).
counter_map nstat_snapshot(const lab::netns& ns) {
  std::istringstream in(testing::run_ok(ns, {"nstat", "-asz"}));
  counter_map m;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream f(line);
    std::string name;
    std::int64_t value = 0;
    if (f >> name >> value) m[name] = value;
  }
  return m;
}

// nstat leaves these constants/gauges out ("useless_numbers" in iproute2 misc/nstat.c), and
// reads /proc/net/snmp6, which we do not.
bool only_ours(const std::string& name) {
  static const std::set<std::string> skipped = {"IpForwarding", "IpDefaultTTL", "TcpRtoAlgorithm",
                                                "TcpRtoMin",    "TcpRtoMax",    "TcpMaxConn",
                                                "TcpCurrEstab"};
  return skipped.count(name) > 0;
}
bool only_nstat(const std::string& name) {
  for (const char* p : {"Ip6", "Icmp6", "Udp6", "UdpLite6"})
    if (name.rfind(p, 0) == 0) return true;
  return false;
}

// Our snapshot and nstat's, taken back to back while the namespace is quiet; retried if a
// counter moved between them (a late delayed ACK, say).
std::pair<counter_snapshot, counter_map> quiet_pair(counter_reader& reader, const lab::netns& ns) {
  for (int attempt = 0;; ++attempt) {
    counter_snapshot before = reader.read();
    counter_map theirs = nstat_snapshot(ns);
    counter_snapshot after = reader.read();
    if (before.values == after.values || attempt == 5) return {after, theirs};
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
}

void expect_same_as_nstat(const counter_map& ours, const counter_map& theirs) {
  std::size_t compared = 0;
  for (const auto& [name, value] : ours) {
    if (only_ours(name)) continue;
    auto it = theirs.find(name);
    if (it == theirs.end()) {
      ADD_FAILURE() << name << " is ours but nstat does not print it";
      continue;
    }
    EXPECT_EQ(value, it->second) << name;
    ++compared;
  }
  for (const auto& [name, value] : theirs)
    if (!only_nstat(name)) {
      EXPECT_TRUE(ours.count(name)) << name << " printed by nstat only";
    }
  EXPECT_GT(compared, 200u);
}

TEST(counter_reader, agrees_with_nstat_absolute_and_in_deltas) {
  BACKLOG_LAB_REQUIRE_LAB();
  if (!lab::have_program("nstat")) GTEST_SKIP() << "nstat (iproute2) not installed";
  lab::netns ns = lab::netns::create("counters");
  counter_reader reader(&ns);
  auto [ours_a, nstat_a] = quiet_pair(reader, ns);
  expect_same_as_nstat(ours_a.values, nstat_a);

  // Traffic: 3 accepted connections with data, then a SYN to a closed port (an RST).
  {
    net::io_context io;
    tcp::acceptor acceptor(io);
    std::vector<tcp::socket> sockets;
    {
      lab::netns_scope in(ns);
      acceptor.open(tcp::v4());
      acceptor.bind({net::ip::address_v4::loopback(), 0});
      acceptor.listen(8);
      for (int i = 0; i < 3; ++i) {
        sockets.emplace_back(io);
        sockets.back().connect(acceptor.local_endpoint());
        net::write(sockets.back(), net::buffer(std::string(50, 'x')));
        sockets.push_back(acceptor.accept());
      }
      tcp::socket refused(io);
      boost::system::error_code ec;
      refused.connect({net::ip::address_v4::loopback(), 1}, ec);
      EXPECT_EQ(ec, net::error::connection_refused);
    }
  }
  auto [ours_b, nstat_b] = quiet_pair(reader, ns);
  expect_same_as_nstat(ours_b.values, nstat_b);

  counter_map ours_d = delta(ours_a, ours_b);
  counter_map nstat_d = delta(nstat_a, nstat_b);
  for (const auto& [name, value] : nstat_d)
    if (!only_nstat(name)) {
      EXPECT_EQ(ours_d[name], value) << name;
    }
  EXPECT_EQ(ours_d["TcpPassiveOpens"], 3);
  EXPECT_EQ(ours_d["TcpActiveOpens"], 4);
  EXPECT_EQ(ours_d["TcpAttemptFails"], 1);
  EXPECT_GE(ours_d["TcpOutRsts"], 1);
}

TEST(counter_reader, an_open_file_keeps_reading_its_own_namespace) {
  BACKLOG_LAB_REQUIRE_LAB();
  lab::netns a = lab::netns::create("a");
  lab::netns b = lab::netns::create("b");
  counter_reader in_a(&a);
  counter_reader in_b(&b);
  counter_snapshot a0 = in_a.read();
  {
    // Connections in `a` only, made from this thread while it is inside `a`.
    lab::netns_scope in(a);
    net::io_context io;
    tcp::acceptor acceptor(io, {net::ip::address_v4::loopback(), 0});
    for (int i = 0; i < 5; ++i) {
      tcp::socket c(io);
      c.connect(acceptor.local_endpoint());
      acceptor.accept().close();
    }
  }
  // Read from the host namespace: the files opened in `a` and `b` still show `a` and `b`.
  EXPECT_EQ(in_a.read().value_or_zero("TcpPassiveOpens") - a0.value_or_zero("TcpPassiveOpens"), 5);
  EXPECT_EQ(in_b.read().value_or_zero("TcpPassiveOpens"), 0);
  EXPECT_EQ(in_b.read().value_or_zero("TcpActiveOpens"), 0);
  // And a fresh reader agrees with the long-lived one.
  EXPECT_EQ(counter_reader(&a).read().values.at("TcpPassiveOpens"),
            in_a.read().values.at("TcpPassiveOpens"));
}

} // namespace
} // namespace backlog_lab::observer
