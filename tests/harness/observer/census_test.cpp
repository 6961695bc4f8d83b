// Census summaries on crafted socket lists, and in a lab namespace against `ss -tane`.
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <gtest/gtest.h>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include "harness/core/asio.hpp"
#include "harness/core/unique_fd.hpp"
#include "harness/lab/netns.hpp"
#include "harness/lab/process.hpp"
#include "harness/lab/sysctl.hpp"
#include "harness/observer/census.hpp"
#include "harness/observer/sock_diag.hpp"
#include "tests/support/kernel_view.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::observer {
namespace {

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

TEST(census_summary, children_go_to_the_most_specific_listener_of_their_family) {
  using st = tcp_state;
  std::vector<tcp_socket> sockets = {
      sock(st::listen, "0.0.0.0", 80, "0.0.0.0", 0, 2, 1, 100),
      sock(st::listen, "127.0.0.2", 80, "0.0.0.0", 0, 1, 4, 101),
      sock(st::listen, "::", 443, "::", 0, 129, 128, 102),
      sock(st::listen, "::1", 8443, "::", 0, 0, 5, 103),
      // 0.0.0.0:80 gets these two (any address but 127.0.0.2); peers out of address order
      sock(st::close_wait, "198.51.100.1", 80, "198.51.100.7", 5001, 101, 0, 0),
      sock(st::established, "127.0.0.1", 80, "127.0.0.9", 5000, 10, 0, 0),
      // 127.0.0.2:80 gets its own address
      sock(st::close_wait, "127.0.0.2", 80, "127.0.0.9", 5002, 31, 0, 0),
      sock(st::time_wait, "127.0.0.2", 80, "127.0.0.9", 5003, 0, 0, 0),
      // [::]:443 dual-stack: v4-mapped and native v6 children
      sock(st::close_wait, "::ffff:198.51.100.2", 443, "::ffff:198.51.100.1", 6000, 101, 0, 0),
      sock(st::close_wait, "::ffff:198.51.100.2", 443, "::ffff:198.51.100.1", 6001, 101, 0, 0),
      sock(st::close_wait, "::ffff:198.51.100.2", 443, "::ffff:198.51.100.3", 6002, 1, 0, 0),
      sock(st::close_wait, "::1", 443, "::1", 6003, 8, 0, 555), // accepted: owned
      sock(st::syn_recv, "::1", 443, "::1", 6004, 0, 0, 0),
      // an IPv4 socket on 443 is not the AF_INET6 listener's child
      sock(st::established, "127.0.0.1", 443, "127.0.0.1", 6005, 0, 0, 0),
      // no listener on this port at all
      sock(st::established, "127.0.0.1", 9999, "127.0.0.1", 6006, 0, 0, 0),
      // [::1]:8443 gets ::1 only
      sock(st::fin_wait2, "::1", 8443, "::1", 7000, 0, 0, 0),
  };
  census c = summarize(sockets);
  EXPECT_EQ(c.socket_count, sockets.size());
  EXPECT_EQ(c.totals[st::listen], 4u);
  EXPECT_EQ(c.totals[st::close_wait], 6u);
  EXPECT_EQ(c.totals[st::established], 3u);
  EXPECT_EQ(c.totals.total(), sockets.size());
  ASSERT_EQ(c.listeners.size(), 4u);

  // Sorted by port, then family, then address.
  const listener_summary& any80 = c.listeners[0];
  const listener_summary& lo2_80 = c.listeners[1];
  const listener_summary& dual443 = c.listeners[2];
  const listener_summary& lo6_8443 = c.listeners[3];
  EXPECT_EQ(any80.local, (endpoint{addr("0.0.0.0"), 80}));
  EXPECT_EQ(lo2_80.local, (endpoint{addr("127.0.0.2"), 80}));
  EXPECT_EQ(dual443.local.port, 443);
  EXPECT_EQ(lo6_8443.local.port, 8443);

  EXPECT_EQ(any80.accept_queue, 2u);
  EXPECT_EQ(any80.backlog, 1u);
  EXPECT_TRUE(any80.full); // 2 > 1: backlog + 1
  EXPECT_EQ(any80.children.total(), 2u);
  EXPECT_EQ(any80.unaccepted_established, 1u);
  EXPECT_EQ(any80.unaccepted_established_bytes, 10u);
  EXPECT_EQ(any80.unaccepted_close_wait, 1u);
  EXPECT_EQ(any80.unaccepted_close_wait_bytes, 101u);
  EXPECT_EQ(any80.queued,
            (std::vector<queued_group>{{st::established, 10, 1}, {st::close_wait, 101, 1}}));
  // Equal counts: address order, whatever order the kernel listed them in.
  EXPECT_EQ(any80.peers,
            (std::vector<peer_group>{{addr("127.0.0.9"), 1, 10}, {addr("198.51.100.7"), 1, 101}}));

  EXPECT_FALSE(lo2_80.full);
  EXPECT_EQ(lo2_80.children[st::close_wait], 1u);
  EXPECT_EQ(lo2_80.children[st::time_wait], 1u);
  EXPECT_EQ(lo2_80.kernel_only, 1u);
  EXPECT_EQ(lo2_80.unaccepted_close_wait_bytes, 31u);

  EXPECT_TRUE(dual443.full);
  EXPECT_EQ(dual443.children.total(), 5u);
  EXPECT_EQ(dual443.unaccepted_close_wait, 3u);
  EXPECT_EQ(dual443.unaccepted_close_wait_bytes, 203u);
  EXPECT_EQ(dual443.owned, 1u);
  EXPECT_EQ(dual443.kernel_only, 1u);
  EXPECT_EQ(dual443.queued,
            (std::vector<queued_group>{{st::close_wait, 1, 1}, {st::close_wait, 101, 2}}));
  ASSERT_EQ(dual443.peers.size(), 2u);
  EXPECT_EQ(dual443.peers[0], (peer_group{addr("::ffff:198.51.100.1"), 2, 202}));
  EXPECT_EQ(dual443.peers[1], (peer_group{addr("::ffff:198.51.100.3"), 1, 1}));

  EXPECT_EQ(lo6_8443.children[st::fin_wait2], 1u);
  EXPECT_EQ(c.unaccepted_close_wait, 1u + 1u + 3u);
}

TEST(census_summary, a_reused_builder_gives_the_same_answer) {
  std::vector<tcp_socket> a = {
      sock(tcp_state::listen, "127.0.0.1", 80, "0.0.0.0", 0, 1, 8, 1),
      sock(tcp_state::close_wait, "127.0.0.1", 80, "127.0.0.1", 5000, 5, 0, 0)};
  std::vector<tcp_socket> b = {
      sock(tcp_state::listen, "127.0.0.1", 81, "0.0.0.0", 0, 0, 8, 1),
      sock(tcp_state::close_wait, "127.0.0.1", 80, "127.0.0.1", 5000, 5, 0, 0)};
  census_builder builder;
  census out;
  builder.summarize(a, out);
  builder.summarize(b, out); // the port-80 index entry must not leak into this one
  EXPECT_EQ(out.listeners, summarize(b).listeners);
  EXPECT_EQ(out.listeners.at(0).children.total(), 0u);
  builder.summarize(a, out);
  EXPECT_EQ(out.listeners, summarize(a).listeners);
  EXPECT_TRUE(summarize({}).listeners.empty());
}

// --- in a lab namespace, against ss -tane ----------------------------------------------------

// One line of `ss -tane`.
struct ss_line {
  std::string state, local, peer;
  std::uint32_t recv_q = 0, send_q = 0, inode = 0, uid = 0;
  auto key() const { return std::tie(state, local, peer, recv_q, send_q, inode, uid); }
  bool operator<(const ss_line& o) const { return key() < o.key(); }
  bool operator==(const ss_line& o) const { return key() == o.key(); }
};

std::ostream& operator<<(std::ostream& os, const ss_line& l) {
  return os << l.state << ' ' << l.recv_q << ' ' << l.send_q << ' ' << l.local << ' ' << l.peer
            << " ino:" << l.inode << " uid:" << l.uid;
}

std::vector<ss_line> run_ss(const lab::netns& ns) {
  std::vector<ss_line> out;
  for (const auto& s : testing::ss_sockets(ns, "-tane"))
    out.push_back({s.state, s.local, s.peer, static_cast<std::uint32_t>(s.recv_q),
                   static_cast<std::uint32_t>(s.send_q), static_cast<std::uint32_t>(s.inode),
                   s.uid});
  return out;
}

ss_line as_ss(const tcp_socket& s) {
  return {std::string(state_name(s.state)),
          format_endpoint(s.local, s.v6only),
          format_endpoint(s.remote, s.v6only),
          s.recv_q,
          s.send_q,
          s.inode,
          s.uid};
}

// ss's "addr:port" split at the last colon.
std::pair<std::string, std::string> split_endpoint(const std::string& e) {
  auto colon = e.rfind(':');
  return {e.substr(0, colon), e.substr(colon + 1)};
}

// What a listener's summary must be, derived from ss's lines alone: children are the non-LISTEN
// lines on the listener's port whose address is the listener's, or any address of the same
// family for a wildcard listener ("0.0.0.0" for IPv4, "*" or "[::]" for IPv6) that no specific
// listener claims; un-accepted = ino 0 in ESTAB or CLOSE-WAIT (docs/reference/kernel.md section 3).
struct expected_listener {
  std::map<std::string, std::uint32_t> children;
  std::uint32_t est = 0, cw = 0, owned = 0, kernel_only = 0;
  std::uint64_t est_bytes = 0, cw_bytes = 0;
  std::map<std::pair<std::string, std::uint32_t>, std::uint32_t> queued;
  std::map<std::string, std::pair<std::uint32_t, std::uint64_t>> peers;
};

expected_listener expect_from_ss(const ss_line& l, const std::vector<ss_line>& all) {
  auto [laddr, lport] = split_endpoint(l.local);
  const bool l_v6 = laddr == "*" || laddr[0] == '[';
  const bool l_any = laddr == "*" || laddr == "[::]" || laddr == "0.0.0.0";
  expected_listener e;
  for (const ss_line& s : all) {
    if (s.state == "LISTEN") continue;
    auto [saddr, sport] = split_endpoint(s.local);
    if (sport != lport || (saddr[0] == '[') != l_v6) continue;
    if (saddr != laddr) {
      if (!l_any) continue;
      bool claimed = std::any_of(all.begin(), all.end(), [&](const ss_line& o) {
        return o.state == "LISTEN" && o.local == s.local;
      });
      if (claimed) continue;
    }
    ++e.children[s.state];
    if (s.inode != 0) {
      ++e.owned;
    } else if (s.state == "ESTAB" || s.state == "CLOSE-WAIT") {
      (s.state == "ESTAB" ? e.est : e.cw)++;
      (s.state == "ESTAB" ? e.est_bytes : e.cw_bytes) += s.recv_q;
      ++e.queued[{s.state, s.recv_q}];
      auto peer = split_endpoint(s.peer).first;
      if (peer[0] == '[') peer = peer.substr(1, peer.size() - 2);
      ++e.peers[peer].first;
      e.peers[peer].second += s.recv_q;
    } else {
      ++e.kernel_only;
    }
  }
  return e;
}

// A lab namespace with listeners that never accept and clients in known states.
class census_lab : public ::testing::Test {
protected:
  void SetUp() override {
    BACKLOG_LAB_REQUIRE_LAB();
    if (!lab::have_program("ss")) GTEST_SKIP() << "ss (iproute2) not installed";
    ns_ = lab::netns::create("census");
    // Hang guard: a client whose SYN is dropped gives up after about 3 s, not 2 minutes.
    lab::write_sysctl(ns_, "net.ipv4.tcp_syn_retries", "1");
  }

  tcp::acceptor& listen(const tcp::endpoint& at, int backlog, bool v6only = false,
                        bool reuse_port = false) {
    lab::netns_scope in(ns_);
    listeners_.emplace_back(io_);
    tcp::acceptor& a = listeners_.back();
    a.open(at.protocol());
    if (at.protocol() == tcp::v6()) a.set_option(net::ip::v6_only(v6only));
    if (reuse_port) {
      int one = 1;
      ::setsockopt(a.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    }
    a.bind(at);
    a.listen(backlog);
    return a;
  }

  // Connects to `to`, sends `bytes` bytes, then closes if `fin` (the child ends in CLOSE-WAIT
  // at bytes + 1) or stays open (ESTAB at bytes).
  void client(const tcp::endpoint& to, std::size_t bytes, bool fin) {
    lab::netns_scope in(ns_);
    tcp::socket s(io_);
    s.connect(to);
    if (bytes) net::write(s, net::buffer(std::string(bytes, 'q')));
    if (fin)
      s.close();
    else
      sockets_.push_back(std::move(s));
  }

  tcp::socket accept(tcp::acceptor& a) {
    tcp::socket s = a.accept();
    return s;
  }

  lab::netns ns_;
  net::io_context io_;
  std::deque<tcp::acceptor> listeners_;
  std::vector<tcp::socket> sockets_;
};

TEST_F(census_lab, every_number_matches_ss) {
  const auto lo4 = net::ip::make_address("127.0.0.1");
  const auto lo4b = net::ip::make_address("127.0.0.2");
  const auto lo6 = net::ip::make_address("::1");
  const auto any6 = net::ip::make_address("::");

  // IPv4 listener, backlog 8, never accepts (except the first two connections).
  tcp::acceptor& v4 = listen({lo4, 0}, 8);
  const auto v4_at = v4.local_endpoint();
  client(v4_at, 7, false); // accepted below, then the client closes: an owned CLOSE-WAIT at 8
  tcp::socket owned = accept(v4);
  tcp::socket peer_of_owned = std::move(sockets_.back());
  sockets_.pop_back();
  peer_of_owned.close();
  client(v4_at, 0, false); // accepted and closed by us first: our side ends in TIME-WAIT
  {
    tcp::socket first_closer = accept(v4);
    first_closer.close();
    sockets_.back().close();
    sockets_.pop_back();
  }
  for (std::size_t bytes : {10, 20, 30})
    client(v4_at, bytes, true); // CLOSE-WAIT 11, 21, 31
  client(v4_at, 0, true);       // FIN only: CLOSE-WAIT 1
  client(v4_at, 0, false);      // ESTAB 0
  client(v4_at, 0, false);      // ESTAB 0
  client(v4_at, 5, false);      // ESTAB 5

  // IPv6-only listener on ::1.
  tcp::acceptor& v6 = listen({lo6, 0}, 4, true);
  const auto v6_at = v6.local_endpoint();
  client(v6_at, 40, true);
  client(v6_at, 0, false);

  // Dual-stack [::], reached over IPv4 (v4-mapped children) and IPv6.
  tcp::acceptor& dual = listen({any6, 0}, 16, false);
  const auto dual_port = dual.local_endpoint().port();
  client({lo4, dual_port}, 12, true);
  client({lo6, dual_port}, 0, false);

  // A wildcard and a specific IPv4 listener on one port (SO_REUSEPORT lets both listen).
  tcp::acceptor& wild = listen({net::ip::make_address("0.0.0.0"), 0}, 4, false, true);
  const auto wild_port = wild.local_endpoint().port();
  listen({lo4b, wild_port}, 3, false, true);
  client({lo4b, wild_port}, 3, true); // -> the 127.0.0.2 listener
  client({lo4, wild_port}, 0, false); // -> the wildcard listener

  std::this_thread::sleep_for(std::chrono::milliseconds(50)); // let the last ACKs land
  census_reader reader(&ns_);
  census c = reader.read();
  std::vector<ss_line> ss = run_ss(ns_);

  // 1. Every socket, every column: the same multiset as ss.
  std::vector<ss_line> ours;
  for (const auto& s : c.sockets)
    ours.push_back(as_ss(s));
  std::sort(ours.begin(), ours.end());
  std::sort(ss.begin(), ss.end());
  ASSERT_EQ(ours.size(), ss.size());
  for (std::size_t i = 0; i < ours.size(); ++i)
    EXPECT_EQ(ours[i], ss[i]) << "line " << i;
  EXPECT_EQ(c.socket_count, ss.size());
  std::map<std::string, std::uint32_t> ss_totals;
  for (const auto& l : ss)
    ++ss_totals[l.state];
  for (const auto& [state, n] : ss_totals)
    EXPECT_EQ(c.totals[*state_from_name(state)], n) << state;

  // 2. Every listener: queue, backlog, children by state, un-accepted, owned, groups, peers.
  ASSERT_EQ(c.listeners.size(), 5u);
  for (const listener_summary& l : c.listeners) {
    const std::string where = format_endpoint(l.local, l.v6only);
    SCOPED_TRACE(where);
    auto it = std::find_if(ss.begin(), ss.end(), [&](const ss_line& s) {
      return s.state == "LISTEN" && s.local == where;
    });
    ASSERT_NE(it, ss.end());
    EXPECT_EQ(l.accept_queue, it->recv_q);
    EXPECT_EQ(l.backlog, it->send_q);
    EXPECT_EQ(l.inode, it->inode);
    EXPECT_EQ(l.full, it->recv_q > it->send_q);
    expected_listener e = expect_from_ss(*it, ss);
    std::map<std::string, std::uint32_t> children;
    for (std::uint8_t i = 1; i < tcp_state_slots; ++i)
      if (l.children.by_state[i])
        children[std::string(state_name(static_cast<tcp_state>(i)))] = l.children.by_state[i];
    EXPECT_EQ(children, e.children);
    EXPECT_EQ(l.unaccepted_established, e.est);
    EXPECT_EQ(l.unaccepted_established_bytes, e.est_bytes);
    EXPECT_EQ(l.unaccepted_close_wait, e.cw);
    EXPECT_EQ(l.unaccepted_close_wait_bytes, e.cw_bytes);
    EXPECT_EQ(l.owned, e.owned);
    EXPECT_EQ(l.kernel_only, e.kernel_only);
    std::map<std::pair<std::string, std::uint32_t>, std::uint32_t> queued;
    for (const auto& q : l.queued)
      queued[{std::string(state_name(q.state)), q.recv_q}] = q.count;
    EXPECT_EQ(queued, e.queued);
    std::map<std::string, std::pair<std::uint32_t, std::uint64_t>> peers;
    for (const auto& p : l.peers)
      peers[p.address.to_string()] = {p.count, p.bytes};
    EXPECT_EQ(peers, e.peers);
    // The queue holds exactly the un-accepted children (docs/reference/kernel.md section 3).
    EXPECT_EQ(l.accept_queue, l.unaccepted());
  }

  // 3. The situation we built, number by number.
  auto find = [&](const tcp::endpoint& at) -> const listener_summary& {
    for (const auto& l : c.listeners)
      if (l.local.port == at.port() && l.local.address.to_string() == at.address().to_string())
        return l;
    ADD_FAILURE() << "no listener " << at;
    return c.listeners.front();
  };
  const listener_summary& l4 = find(v4_at);
  EXPECT_EQ(l4.accept_queue, 7u);
  EXPECT_EQ(l4.backlog, 8u);
  EXPECT_FALSE(l4.full);
  EXPECT_EQ(l4.unaccepted_close_wait, 4u);
  EXPECT_EQ(l4.unaccepted_close_wait_bytes, 11u + 21u + 31u + 1u);
  EXPECT_EQ(l4.unaccepted_established, 3u);
  EXPECT_EQ(l4.unaccepted_established_bytes, 5u);
  EXPECT_EQ(l4.owned, 1u); // the accepted CLOSE-WAIT at 8
  EXPECT_EQ(l4.children[tcp_state::close_wait], 5u);
  EXPECT_EQ(l4.children[tcp_state::time_wait], 1u);
  EXPECT_EQ(l4.kernel_only, 1u);
  ASSERT_EQ(l4.peers.size(), 1u);
  EXPECT_EQ(l4.peers[0].count, 7u);

  const listener_summary& l6 = find(v6_at);
  EXPECT_TRUE(l6.v6only);
  EXPECT_EQ(format_endpoint(l6.local, l6.v6only), "[::1]:" + std::to_string(v6_at.port()));
  EXPECT_EQ(l6.accept_queue, 2u);
  EXPECT_EQ(l6.queued, (std::vector<queued_group>{{tcp_state::established, 0, 1},
                                                  {tcp_state::close_wait, 41, 1}}));

  const listener_summary& ld = find({any6, dual_port});
  EXPECT_FALSE(ld.v6only);
  EXPECT_EQ(format_endpoint(ld.local, ld.v6only), "*:" + std::to_string(dual_port));
  EXPECT_EQ(ld.accept_queue, 2u);
  EXPECT_EQ(ld.unaccepted_close_wait_bytes, 13u);
  std::set<std::string> dual_peers;
  for (const auto& p : ld.peers)
    dual_peers.insert(p.address.to_string());
  EXPECT_EQ(dual_peers, (std::set<std::string>{"::ffff:127.0.0.1", "::1"}));

  const listener_summary& lw = find({net::ip::make_address("0.0.0.0"), wild_port});
  const listener_summary& lb = find({lo4b, wild_port});
  EXPECT_EQ(lw.accept_queue, 1u);
  EXPECT_EQ(lw.unaccepted_established, 1u);
  EXPECT_EQ(lw.unaccepted_close_wait, 0u);
  EXPECT_EQ(lb.accept_queue, 1u);
  EXPECT_EQ(lb.unaccepted_close_wait, 1u);
  EXPECT_EQ(lb.unaccepted_close_wait_bytes, 4u);

  // 4. The summary-only census reports the same listeners, without the socket list.
  census summary = reader.read(census_options{.summary_only = true});
  EXPECT_TRUE(summary.sockets.empty());
  EXPECT_EQ(summary.listeners, c.listeners);
  EXPECT_EQ(summary.totals, c.totals);
  // Two threads (the namespace dumped in two halves by local port) give the same census.
  for (int round = 0; round < 2; ++round) { // the second round splits at the learned median
    census split = reader.read(census_options{.threads = 2});
    EXPECT_EQ(split.listeners, c.listeners);
    EXPECT_EQ(split.totals, c.totals);
    std::vector<ss_line> halves;
    for (const auto& s : split.sockets)
      halves.push_back(as_ss(s));
    std::sort(halves.begin(), halves.end());
    EXPECT_EQ(halves, ours);
  }
  // A port-filtered dump returns exactly the sockets in the range.
  {
    sock_diag_reader diag(&ns_);
    dump_filter f;
    f.min_local_port = v4_at.port();
    f.max_local_port = v4_at.port();
    std::size_t in_range = 0;
    diag.dump(f, [&](const tcp_socket& s) {
      EXPECT_EQ(s.local.port, v4_at.port());
      ++in_range;
    });
    std::size_t expected = 0;
    for (const auto& s : c.sockets)
      expected += s.local.port == v4_at.port();
    EXPECT_EQ(in_range, expected);
    EXPECT_GT(expected, 5u);
  }
  // Per-family dumps (the fallback when a kernel lacks the one-request dump of both families)
  // together see the same sockets.
  {
    sock_diag_reader diag(&ns_);
    std::vector<ss_line> by_family;
    for (std::uint8_t family : {AF_INET, AF_INET6}) {
      dump_filter f;
      f.family = family;
      diag.dump(f, [&](const tcp_socket& s) {
        EXPECT_EQ(s.family, family);
        by_family.push_back(as_ss(s));
      });
    }
    std::sort(by_family.begin(), by_family.end());
    EXPECT_EQ(by_family, ours);
  }
  // And the visitor form sees every socket.
  std::size_t visited = 0;
  EXPECT_EQ(reader.for_each([&](const tcp_socket&) { ++visited; }), c.sockets.size());
  EXPECT_EQ(visited, c.sockets.size());
  (void)owned;
}

TEST_F(census_lab, a_full_queue_at_backlog_plus_one_and_its_close_wait_children) {
  const int backlog = 5;
  tcp::acceptor& l = listen({net::ip::make_address("127.0.0.1"), 0}, backlog);
  // Only backlog + 1 connects can complete; the rest would block, so connect non-blocking.
  std::vector<tcp::socket> pending;
  {
    lab::netns_scope in(ns_);
    for (int i = 0; i < backlog + 1; ++i)
      client(l.local_endpoint(), 100, true);
    for (int i = 0; i < 3; ++i) {
      pending.emplace_back(io_);
      pending.back().open(tcp::v4());
      pending.back().non_blocking(true);
      // Plain connect(2): Asio's synchronous connect would wait for the handshake.
      auto to = l.local_endpoint();
      EXPECT_NE(::connect(pending.back().native_handle(), to.data(), to.size()), 0);
      EXPECT_EQ(errno, EINPROGRESS); // the SYN is dropped: the queue is full
    }
  }
  census c = census_reader(&ns_).read();
  ASSERT_EQ(c.listeners.size(), 1u);
  const listener_summary& s = c.listeners[0];
  EXPECT_EQ(s.accept_queue, static_cast<std::uint32_t>(backlog + 1));
  EXPECT_EQ(s.backlog, static_cast<std::uint32_t>(backlog));
  EXPECT_TRUE(s.full);
  EXPECT_EQ(s.unaccepted_close_wait, static_cast<std::uint32_t>(backlog + 1));
  EXPECT_EQ(s.queued, (std::vector<queued_group>{
                          {tcp_state::close_wait, 101, static_cast<std::uint32_t>(backlog + 1)}}));
  EXPECT_EQ(c.totals[tcp_state::syn_sent], 3u);
  // ss agrees on the listener line.
  for (const ss_line& line : run_ss(ns_))
    if (line.state == "LISTEN") {
      EXPECT_EQ(line.recv_q, 6u);
      EXPECT_EQ(line.send_q, 5u);
    }
}

TEST_F(census_lab, listener_drops_match_ss_and_listen_drops) {
  const int backlog = 2;
  tcp::acceptor& l = listen({net::ip::make_address("127.0.0.1"), 0}, backlog);
  const auto to = l.local_endpoint();
  census before = census_reader(&ns_).read();
  ASSERT_EQ(before.listeners.size(), 1u);
  EXPECT_EQ(before.listeners[0].drops, 0u);

  // backlog + 1 complete; every further SYN is dropped and counted on the listener.
  std::vector<unique_fd> clients;
  {
    lab::netns_scope in(ns_);
    for (int i = 0; i < backlog + 1; ++i)
      client(to, 10, false);
    for (int i = 0; i < 12; ++i) {
      unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      ASSERT_TRUE(fd.valid());
      EXPECT_NE(::connect(fd.get(), to.data(), to.size()), 0);
      clients.push_back(std::move(fd));
    }
  }
  // Wait for the 12 drops, then close the pending clients before their SYN retransmissions
  // (1 s) so that the three readings below see the same number.
  census c;
  census_reader reader(&ns_);
  for (int i = 0; i < 100; ++i) {
    reader.read(c);
    if (!c.listeners.empty() && c.listeners[0].drops >= 12) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  clients.clear();
  reader.read(c);
  ASSERT_EQ(c.listeners.size(), 1u);
  const std::uint32_t drops = c.listeners[0].drops;
  EXPECT_GE(drops, 12u);
  EXPECT_TRUE(c.listeners[0].full);
  EXPECT_EQ(testing::ss_listener_drops(ns_, to.port()), std::optional<std::uint64_t>(drops));
  // The only listener of the namespace: its drops are all of the namespace's.
  EXPECT_EQ(testing::nstat_counter(ns_, "TcpExtListenDrops"), std::optional<std::int64_t>(drops));
}

// The pipelined walk (the dump on a second thread, in batches) hands over the same sockets in
// the same order as walk(), over many batches; an exception from the visitor stops the dump, is
// the one reported, and leaves the reader usable.
TEST_F(census_lab, the_pipelined_walk_equals_the_walk_and_stops_on_a_visitor_error) {
  tcp::acceptor& l = listen({net::ip::make_address("127.0.0.1"), 0}, 4096);
  const auto to = l.local_endpoint();
  std::vector<unique_fd> clients;
  {
    lab::netns_scope in(ns_);
    for (int i = 0; i < 1500; ++i) { // 1500 clients and 1500 un-accepted children: 6 batches
      unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      ASSERT_TRUE(fd.valid());
      ASSERT_EQ(::connect(fd.get(), to.data(), to.size()), 0) << errno;
      clients.push_back(std::move(fd));
    }
  }
  using key = std::tuple<tcp_state, std::uint16_t, std::uint16_t>;
  auto keys_of = [](std::vector<key>& out) {
    return [&out](const tcp_socket& s) { out.emplace_back(s.state, s.local.port, s.remote.port); };
  };
  census_reader reader(&ns_);
  std::vector<key> walked, pipelined;
  EXPECT_EQ(reader.walk(keys_of(walked)), 3001u);
  EXPECT_EQ(reader.walk_pipelined(keys_of(pipelined)), 3001u);
  EXPECT_EQ(pipelined, walked);
  EXPECT_EQ(std::get<0>(pipelined.front()), tcp_state::listen);

  struct visitor_failed {};
  std::size_t seen = 0;
  EXPECT_THROW(reader.walk_pipelined([&seen](const tcp_socket&) {
    if (++seen == 700) throw visitor_failed{};
  }),
               visitor_failed);
  EXPECT_EQ(seen, 700u);
  pipelined.clear();
  EXPECT_EQ(reader.walk_pipelined(keys_of(pipelined)), 3001u);
  EXPECT_EQ(pipelined, walked);
}

} // namespace
} // namespace backlog_lab::observer
