// sock_diag parsing on crafted byte buffers (no kernel needed), and ss-style formatting.
#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>

#include <cstring>
#include <gtest/gtest.h>
#include <vector>

#include "harness/observer/sock_diag.hpp"

namespace backlog_lab::observer {
namespace {

// Builds netlink datagrams the way the kernel lays them out (4-byte aligned messages).
class datagram {
public:
  // A SOCK_DIAG_BY_FAMILY message; `attrs` are (type, bytes) pairs appended after the msg.
  datagram&
  socket(const inet_diag_msg& m, std::uint32_t seq,
         const std::vector<std::pair<std::uint16_t, std::vector<std::uint8_t>>>& attrs = {}) {
    std::vector<std::byte> payload(sizeof m);
    std::memcpy(payload.data(), &m, sizeof m);
    for (const auto& [type, data] : attrs) {
      nlattr a{static_cast<std::uint16_t>(sizeof(nlattr) + data.size()), type};
      std::size_t at = payload.size();
      payload.resize(at + NLA_ALIGN(a.nla_len));
      std::memcpy(payload.data() + at, &a, sizeof a);
      std::memcpy(payload.data() + at + sizeof a, data.data(), data.size());
    }
    return message(SOCK_DIAG_BY_FAMILY, seq, payload);
  }
  datagram& done(std::uint32_t seq, int status = 0) {
    std::vector<std::byte> p(sizeof status);
    std::memcpy(p.data(), &status, sizeof status);
    return message(NLMSG_DONE, seq, p);
  }
  datagram& error(std::uint32_t seq, int err) {
    nlmsgerr e{};
    e.error = err;
    std::vector<std::byte> p(sizeof e);
    std::memcpy(p.data(), &e, sizeof e);
    return message(NLMSG_ERROR, seq, p);
  }
  datagram& message(std::uint16_t type, std::uint32_t seq, const std::vector<std::byte>& payload,
                    std::uint16_t flags = NLM_F_MULTI) {
    nlmsghdr h{};
    h.nlmsg_len = static_cast<std::uint32_t>(NLMSG_HDRLEN + payload.size());
    h.nlmsg_type = type;
    h.nlmsg_flags = flags;
    h.nlmsg_seq = seq;
    std::size_t at = bytes.size();
    bytes.resize(at + NLMSG_ALIGN(h.nlmsg_len));
    std::memcpy(bytes.data() + at, &h, sizeof h);
    std::memcpy(bytes.data() + at + NLMSG_HDRLEN, payload.data(), payload.size());
    return *this;
  }
  std::vector<std::byte> bytes;
};

inet_diag_msg v4_msg(std::uint8_t state, const char* src, std::uint16_t sport, const char* dst,
                     std::uint16_t dport, std::uint32_t rq, std::uint32_t wq, std::uint32_t ino) {
  inet_diag_msg m{};
  m.idiag_family = AF_INET;
  m.idiag_state = state;
  ::inet_pton(AF_INET, src, m.id.idiag_src);
  ::inet_pton(AF_INET, dst, m.id.idiag_dst);
  m.id.idiag_sport = htons(sport);
  m.id.idiag_dport = htons(dport);
  m.idiag_rqueue = rq;
  m.idiag_wqueue = wq;
  m.idiag_inode = ino;
  m.idiag_uid = 1000;
  return m;
}

inet_diag_msg v6_msg(std::uint8_t state, const char* src, std::uint16_t sport, const char* dst,
                     std::uint16_t dport, std::uint32_t rq, std::uint32_t wq, std::uint32_t ino) {
  inet_diag_msg m = v4_msg(state, "0.0.0.0", sport, "0.0.0.0", dport, rq, wq, ino);
  m.idiag_family = AF_INET6;
  ::inet_pton(AF_INET6, src, m.id.idiag_src);
  ::inet_pton(AF_INET6, dst, m.id.idiag_dst);
  return m;
}

struct collected {
  std::vector<tcp_socket> sockets;
  dump_chunk_result parse(const std::vector<std::byte>& bytes, std::uint32_t seq) {
    return parse_dump_chunk(bytes, seq, [this](const tcp_socket& s) { sockets.push_back(s); });
  }
};

TEST(sock_diag_parse, decodes_listener_and_children_with_attributes) {
  datagram d;
  d.socket(v6_msg(10, "::", 30720, "::", 0, 129, 128, 4242), 7,
           {{INET_DIAG_SHUTDOWN, {0}}, {INET_DIAG_SKV6ONLY, {0}}});
  d.socket(v6_msg(8, "::ffff:198.51.100.2", 30720, "::ffff:198.51.100.1", 40002, 101, 0, 0), 7,
           {{INET_DIAG_SHUTDOWN, {1}}, {INET_DIAG_CGROUP_ID, {1, 2, 3, 4, 5, 6, 7, 8}}});
  d.socket(v4_msg(1, "127.0.0.1", 9000, "127.0.0.1", 40004, 0, 0, 0), 7);
  collected c;
  auto r = c.parse(d.bytes, 7);
  ASSERT_EQ(r.outcome, dump_chunk_result::status::more) << r.error;
  ASSERT_EQ(r.sockets, 3u);
  ASSERT_EQ(c.sockets.size(), 3u);

  const tcp_socket& l = c.sockets[0];
  EXPECT_EQ(l.state, tcp_state::listen);
  EXPECT_EQ(l.family, AF_INET6);
  EXPECT_EQ(l.recv_q, 129u);
  EXPECT_EQ(l.send_q, 128u);
  EXPECT_EQ(l.inode, 4242u);
  EXPECT_EQ(l.uid, 1000u);
  EXPECT_FALSE(l.v6only);
  EXPECT_EQ(format_endpoint(l.local, l.v6only), "*:30720");
  EXPECT_EQ(format_endpoint(l.remote, l.v6only), "*:*");

  const tcp_socket& child = c.sockets[1];
  EXPECT_EQ(child.state, tcp_state::close_wait);
  EXPECT_EQ(child.shutdown, 1);
  EXPECT_EQ(child.recv_q, 101u);
  EXPECT_EQ(child.inode, 0u);
  EXPECT_EQ(format_endpoint(child.local, false), "[::ffff:198.51.100.2]:30720");
  EXPECT_EQ(format_endpoint(child.remote, false), "[::ffff:198.51.100.1]:40002");

  const tcp_socket& v4 = c.sockets[2];
  EXPECT_EQ(v4.family, AF_INET);
  EXPECT_EQ(format_endpoint(v4.local, false), "127.0.0.1:9000");
  EXPECT_EQ(v4.local.address, ip_address::v4(127, 0, 0, 1));
}

TEST(sock_diag_parse, done_ends_the_dump_and_other_sequences_are_skipped) {
  datagram d;
  d.socket(v4_msg(1, "127.0.0.1", 1, "127.0.0.1", 2, 0, 0, 0), 99); // leftover of an old dump
  d.socket(v4_msg(1, "127.0.0.1", 3, "127.0.0.1", 4, 0, 0, 0), 5);
  d.done(5);
  collected c;
  auto r = c.parse(d.bytes, 5);
  EXPECT_EQ(r.outcome, dump_chunk_result::status::done);
  ASSERT_EQ(c.sockets.size(), 1u);
  EXPECT_EQ(c.sockets[0].local.port, 3);
}

TEST(sock_diag_parse, kernel_errors_are_reported_with_errno) {
  {
    datagram d;
    d.error(1, -EPERM);
    collected c;
    auto r = c.parse(d.bytes, 1);
    EXPECT_EQ(r.outcome, dump_chunk_result::status::error);
    EXPECT_EQ(r.kernel_errno, EPERM);
  }
  {
    datagram d;
    d.done(1, -EINTR);
    collected c;
    auto r = c.parse(d.bytes, 1);
    EXPECT_EQ(r.outcome, dump_chunk_result::status::error);
    EXPECT_EQ(r.kernel_errno, EINTR);
  }
  {
    datagram d; // an ACK (error 0) is not an error
    d.error(1, 0).done(1);
    collected c;
    EXPECT_EQ(c.parse(d.bytes, 1).outcome, dump_chunk_result::status::done);
  }
}

TEST(sock_diag_parse, truncated_datagrams_are_errors_not_crashes) {
  datagram d;
  d.socket(v4_msg(1, "127.0.0.1", 1, "127.0.0.1", 2, 0, 0, 0), 1, {{INET_DIAG_SHUTDOWN, {0}}});
  d.done(1);
  // Every possible cut: either a clean prefix of whole messages or a described error.
  for (std::size_t cut = 1; cut < d.bytes.size(); ++cut) {
    std::vector<std::byte> part(d.bytes.begin(), d.bytes.begin() + cut);
    collected c;
    auto r = c.parse(part, 1);
    if (r.outcome == dump_chunk_result::status::error) {
      EXPECT_FALSE(r.error.empty()) << "cut " << cut;
      EXPECT_LE(c.sockets.size(), 1u) << "cut " << cut;
    } else {
      EXPECT_EQ(r.outcome, dump_chunk_result::status::more) << "cut " << cut;
    }
  }
}

TEST(sock_diag_parse, malformed_messages_are_described) {
  auto expect_error = [](const std::vector<std::byte>& bytes, const std::string& needle) {
    collected c;
    auto r = c.parse(bytes, 1);
    EXPECT_EQ(r.outcome, dump_chunk_result::status::error);
    EXPECT_NE(r.error.find(needle), std::string::npos) << r.error;
    EXPECT_TRUE(c.sockets.empty());
  };
  {
    datagram d; // payload shorter than inet_diag_msg
    d.message(SOCK_DIAG_BY_FAMILY, 1, std::vector<std::byte>(20));
    expect_error(d.bytes, "shorter");
  }
  {
    datagram d; // nlmsg_len larger than the datagram
    d.socket(v4_msg(1, "127.0.0.1", 1, "127.0.0.1", 2, 0, 0, 0), 1);
    std::uint32_t len = 4096;
    std::memcpy(d.bytes.data(), &len, sizeof len);
    expect_error(d.bytes, "does not fit");
  }
  {
    datagram d; // nlmsg_len smaller than a header
    d.socket(v4_msg(1, "127.0.0.1", 1, "127.0.0.1", 2, 0, 0, 0), 1);
    std::uint32_t len = 3;
    std::memcpy(d.bytes.data(), &len, sizeof len);
    expect_error(d.bytes, "does not fit");
  }
  {
    datagram d; // an attribute claiming more bytes than its message has
    d.socket(v4_msg(1, "127.0.0.1", 1, "127.0.0.1", 2, 0, 0, 0), 1, {{INET_DIAG_SHUTDOWN, {0}}});
    std::uint16_t bad_len = 200;
    std::memcpy(d.bytes.data() + NLMSG_HDRLEN + sizeof(inet_diag_msg), &bad_len, sizeof bad_len);
    expect_error(d.bytes, "attribute");
  }
  {
    datagram d; // an unknown state and an unknown family
    d.socket(v4_msg(42, "127.0.0.1", 1, "127.0.0.1", 2, 0, 0, 0), 1);
    expect_error(d.bytes, "state");
    inet_diag_msg m = v4_msg(1, "127.0.0.1", 1, "127.0.0.1", 2, 0, 0, 0);
    m.idiag_family = AF_UNIX;
    datagram e;
    e.socket(m, 1);
    expect_error(e.bytes, "family");
  }
  {
    datagram d; // a message type a dump never carries
    d.message(16 /* RTM_NEWLINK */, 1, std::vector<std::byte>(8));
    expect_error(d.bytes, "unexpected");
  }
  {
    std::vector<std::byte> short_header(10);
    expect_error(short_header, "header");
  }
}

TEST(sock_diag_parse, request_asks_for_tcp_in_every_state_without_extensions) {
  auto req = make_dump_request(AF_INET6, 77);
  nlmsghdr h;
  std::memcpy(&h, req.data(), sizeof h);
  EXPECT_EQ(h.nlmsg_len, req.size());
  EXPECT_EQ(h.nlmsg_type, SOCK_DIAG_BY_FAMILY);
  EXPECT_EQ(h.nlmsg_flags, NLM_F_REQUEST | NLM_F_DUMP);
  EXPECT_EQ(h.nlmsg_seq, 77u);
  inet_diag_req_v2 r;
  std::memcpy(&r, req.data() + NLMSG_HDRLEN, sizeof r);
  EXPECT_EQ(r.sdiag_family, AF_INET6);
  EXPECT_EQ(r.sdiag_protocol, IPPROTO_TCP);
  EXPECT_EQ(r.idiag_ext, 0);
  for (int s = 1; s <= 11; ++s)
    EXPECT_TRUE(r.idiag_states & (1u << s)) << s;
  EXPECT_FALSE(r.idiag_states & 1u);
}

TEST(sock_diag_parse, skmeminfo_gives_the_listeners_drops) {
  // SK_MEMINFO_VARS u32s; SK_MEMINFO_DROPS (index 8) = 34, as `ss -tlm` showed d34.
  std::vector<std::uint8_t> mem(SK_MEMINFO_VARS * 4, 0);
  mem[SK_MEMINFO_DROPS * 4] = 34;
  datagram d;
  d.socket(v4_msg(10, "127.0.0.1", 8080, "0.0.0.0", 0, 3, 2, 77), 5, {{INET_DIAG_SKMEMINFO, mem}});
  d.socket(v4_msg(10, "127.0.0.1", 8081, "0.0.0.0", 0, 0, 2, 78), 5,
           {{INET_DIAG_SKMEMINFO, std::vector<std::uint8_t>(SK_MEMINFO_DROPS * 4, 0)}});
  collected c;
  auto r = c.parse(d.bytes, 5);
  EXPECT_EQ(r.outcome, dump_chunk_result::status::error); // the second is one u32 short
  ASSERT_EQ(c.sockets.size(), 1u);
  EXPECT_EQ(c.sockets[0].drops, 34u);
  // The request asks for it only when told.
  dump_filter f;
  f.meminfo = true;
  auto req = make_dump_request(AF_INET, 1, f);
  inet_diag_req_v2 v2;
  std::memcpy(&v2, req.data() + NLMSG_HDRLEN, sizeof v2);
  EXPECT_EQ(v2.idiag_ext, 1u << (INET_DIAG_SKMEMINFO - 1));
  auto legacy = make_dump_request(AF_UNSPEC, 1, f);
  inet_diag_req old;
  std::memcpy(&old, legacy.data() + NLMSG_HDRLEN, sizeof old);
  EXPECT_EQ(old.idiag_ext, 1u << (INET_DIAG_SKMEMINFO - 1));
}

TEST(sock_diag_parse, both_families_use_the_legacy_request_and_its_replies_parse) {
  auto req = make_dump_request(AF_UNSPEC, 9);
  ASSERT_EQ(req.size(), NLMSG_HDRLEN + sizeof(inet_diag_req));
  nlmsghdr h;
  std::memcpy(&h, req.data(), sizeof h);
  EXPECT_EQ(h.nlmsg_type, TCPDIAG_GETSOCK);
  EXPECT_EQ(h.nlmsg_flags, NLM_F_REQUEST | NLM_F_DUMP);
  inet_diag_req r;
  std::memcpy(&r, req.data() + NLMSG_HDRLEN, sizeof r);
  EXPECT_EQ(r.idiag_states, all_states_mask);
  // Its replies carry the request's message type.
  std::vector<std::byte> payload(sizeof(inet_diag_msg));
  inet_diag_msg m = v4_msg(10, "0.0.0.0", 80, "0.0.0.0", 0, 0, 128, 1);
  std::memcpy(payload.data(), &m, sizeof m);
  datagram d;
  d.message(TCPDIAG_GETSOCK, 9, payload).done(9);
  collected c;
  EXPECT_EQ(c.parse(d.bytes, 9).outcome, dump_chunk_result::status::done);
  ASSERT_EQ(c.sockets.size(), 1u);
  EXPECT_EQ(c.sockets[0].state, tcp_state::listen);
}

TEST(sock_diag_parse, port_filters_become_bytecode_like_ss_builds_it) {
  dump_filter f;
  f.min_local_port = 1000;
  f.max_local_port = 2000;
  auto req = make_dump_request(AF_INET, 1, f);
  ASSERT_EQ(req.size(), NLMSG_HDRLEN + sizeof(inet_diag_req_v2) + NLA_HDRLEN + 16);
  nlmsghdr h;
  std::memcpy(&h, req.data(), sizeof h);
  EXPECT_EQ(h.nlmsg_len, req.size());
  nlattr a;
  std::memcpy(&a, req.data() + NLMSG_HDRLEN + sizeof(inet_diag_req_v2), sizeof a);
  EXPECT_EQ(a.nla_type, INET_DIAG_REQ_BYTECODE);
  EXPECT_EQ(a.nla_len, NLA_HDRLEN + 16);
  inet_diag_bc_op ops[4];
  std::memcpy(ops, req.data() + req.size() - 16, 16);
  // S_GE 1000: yes -> next comparison, no -> past the end (reject).
  EXPECT_EQ(ops[0].code, INET_DIAG_BC_S_GE);
  EXPECT_EQ(ops[0].yes, 8);
  EXPECT_EQ(ops[0].no, 20);
  EXPECT_EQ(ops[1].no, 1000);
  // S_LE 2000: yes -> the end (accept), no -> past the end.
  EXPECT_EQ(ops[2].code, INET_DIAG_BC_S_LE);
  EXPECT_EQ(ops[2].yes, 8);
  EXPECT_EQ(ops[2].no, 12);
  EXPECT_EQ(ops[3].no, 2000);
  // No filter: no attribute.
  EXPECT_EQ(make_dump_request(AF_INET, 1).size(), NLMSG_HDRLEN + sizeof(inet_diag_req_v2));
}

TEST(format_endpoint, matches_ss) {
  ip_address any6, lo6, mapped;
  ASSERT_TRUE(ip_address::parse("::", any6));
  ASSERT_TRUE(ip_address::parse("::1", lo6));
  ASSERT_TRUE(ip_address::parse("::ffff:198.51.100.1", mapped));
  EXPECT_EQ(format_endpoint({any6, 80}, false), "*:80");
  EXPECT_EQ(format_endpoint({any6, 80}, true), "[::]:80");
  EXPECT_EQ(format_endpoint({any6, 0}, true), "[::]:*");
  EXPECT_EQ(format_endpoint({lo6, 9001}, false), "[::1]:9001");
  EXPECT_EQ(format_endpoint({mapped, 30720}, false), "[::ffff:198.51.100.1]:30720");
  EXPECT_EQ(format_endpoint({ip_address::v4(0, 0, 0, 0), 0}, false), "0.0.0.0:*");
  ip_address bad;
  EXPECT_FALSE(ip_address::parse("[::1]", bad));
  EXPECT_FALSE(ip_address::parse("300.1.1.1", bad));
}

TEST(tcp_state, names_match_ss) {
  EXPECT_EQ(state_name(tcp_state::established), "ESTAB");
  EXPECT_EQ(state_name(tcp_state::syn_recv), "SYN-RECV");
  EXPECT_EQ(state_name(tcp_state::fin_wait1), "FIN-WAIT-1");
  EXPECT_EQ(state_name(tcp_state::close_wait), "CLOSE-WAIT");
  EXPECT_EQ(state_name(tcp_state::time_wait), "TIME-WAIT");
  EXPECT_EQ(state_name(tcp_state::close), "UNCONN");
  EXPECT_EQ(state_name(static_cast<tcp_state>(99)), "UNKNOWN");
  for (std::uint8_t i = 1; i <= 11; ++i)
    EXPECT_EQ(state_from_name(state_name(static_cast<tcp_state>(i))), static_cast<tcp_state>(i));
  EXPECT_EQ(state_from_name("CLOSE"), tcp_state::close);
  EXPECT_FALSE(state_from_name("estab"));
}

} // namespace
} // namespace backlog_lab::observer
