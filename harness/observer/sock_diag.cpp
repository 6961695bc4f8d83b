#include "harness/observer/sock_diag.hpp"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <limits>

#include "harness/core/error.hpp"

namespace backlog_lab::observer {
namespace {

// Netlink data is 4-byte aligned in the buffer but we copy headers out with memcpy anyway, so
// crafted test buffers at any offset are read without undefined behaviour.
template <class T> T load(const std::byte* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// The errno in a netlink status (-errno). Anything may arrive: INT_MIN has no positive
// counterpart (negating it was undefined behaviour, found by fuzzing), so it is kept as INT_MAX.
constexpr int negated_errno(int status) noexcept {
  return status == std::numeric_limits<int>::min() ? std::numeric_limits<int>::max() : -status;
}

constexpr std::size_t align4(std::size_t n) noexcept {
  return (n + 3) & ~std::size_t{3};
}

} // namespace

ip_address ip_address::v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  ip_address r;
  r.family = AF_INET;
  r.bytes[0] = a;
  r.bytes[1] = b;
  r.bytes[2] = c;
  r.bytes[3] = d;
  return r;
}

bool ip_address::parse(std::string_view text, ip_address& out) {
  std::string s(text);
  ip_address r;
  if (::inet_pton(AF_INET, s.c_str(), r.bytes.data()) == 1) {
    r.family = AF_INET;
  } else if (::inet_pton(AF_INET6, s.c_str(), r.bytes.data()) == 1) {
    r.family = AF_INET6;
  } else {
    return false;
  }
  out = r;
  return true;
}

bool ip_address::is_any() const noexcept {
  std::size_t n = family == AF_INET ? 4 : 16;
  for (std::size_t i = 0; i < n; ++i)
    if (bytes[i] != 0) return false;
  return true;
}

std::string ip_address::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family == AF_INET) {
    // What inet_ntop prints ("%u.%u.%u.%u"), without its printf: a census formats two
    // addresses per socket, observe --json four.
    char* p = buf;
    for (int i = 0; i < 4; ++i) {
      if (i) *p++ = '.';
      p = std::to_chars(p, buf + sizeof buf, bytes[static_cast<std::size_t>(i)]).ptr;
    }
    return std::string(buf, p);
  }
  if (family != AF_INET6) return "?";
  ::inet_ntop(family, bytes.data(), buf, sizeof buf);
  return buf;
}

std::string format_endpoint(const endpoint& e, bool v6only) {
  return format_endpoint(e, v6only, e.address.to_string());
}

std::string format_endpoint(const endpoint& e, bool v6only, std::string_view address_text) {
  std::string out;
  out.reserve(address_text.size() + 8);
  append_endpoint(out, e, v6only, address_text);
  return out;
}

void append_endpoint(std::string& out, const endpoint& e, bool v6only,
                     std::string_view address_text) {
  // iproute2 misc/ss.c inet_addr_print(): a dual-stack [::] prints as "*"; IPv6 is bracketed.
  if (e.address.family == AF_INET6) {
    if (!v6only && e.address.is_any()) {
      out += '*';
    } else {
      out += '[';
      out += address_text;
      out += ']';
    }
  } else {
    out += address_text;
  }
  out += ':';
  if (e.port == 0) {
    out += '*';
    return;
  }
  char digits[8];
  out.append(digits, std::to_chars(digits, digits + sizeof digits, e.port).ptr);
}

const char* parse_inet_diag_payload(std::span<const std::byte> payload, tcp_socket& out) noexcept {
  if (payload.size() < sizeof(inet_diag_msg)) return "inet_diag_msg shorter than its header";
  const auto msg = load<inet_diag_msg>(payload.data());
  if (msg.idiag_family != AF_INET && msg.idiag_family != AF_INET6)
    return "inet_diag_msg with a family other than AF_INET/AF_INET6";
  if (!is_valid_state(msg.idiag_state)) return "inet_diag_msg with an unknown TCP state";
  tcp_socket s;
  s.family = msg.idiag_family;
  s.state = static_cast<tcp_state>(msg.idiag_state);
  const std::size_t addr_len = s.family == AF_INET ? 4 : 16;
  s.local.address.family = s.remote.address.family = s.family;
  std::memcpy(s.local.address.bytes.data(), msg.id.idiag_src, addr_len);
  std::memcpy(s.remote.address.bytes.data(), msg.id.idiag_dst, addr_len);
  s.local.port = ntohs(msg.id.idiag_sport);
  s.remote.port = ntohs(msg.id.idiag_dport);
  s.ifindex = msg.id.idiag_if;
  s.recv_q = msg.idiag_rqueue;
  s.send_q = msg.idiag_wqueue;
  s.uid = msg.idiag_uid;
  s.inode = msg.idiag_inode;

  // Attributes: only the three we use are decoded; the rest are skipped after a bounds check.
  std::size_t off = align4(sizeof(inet_diag_msg));
  while (off + sizeof(nlattr) <= payload.size()) {
    const auto attr = load<nlattr>(payload.data() + off);
    if (attr.nla_len < sizeof(nlattr) || off + attr.nla_len > payload.size())
      return "inet_diag attribute runs past the end of its message";
    const std::byte* data = payload.data() + off + sizeof(nlattr);
    const std::size_t data_len = attr.nla_len - sizeof(nlattr);
    switch (attr.nla_type & NLA_TYPE_MASK) {
    case INET_DIAG_SHUTDOWN:
      if (data_len < 1) return "INET_DIAG_SHUTDOWN attribute without a value";
      s.shutdown = static_cast<std::uint8_t>(data[0]);
      break;
    case INET_DIAG_SKMEMINFO: {
      constexpr std::size_t at = SK_MEMINFO_DROPS * sizeof(std::uint32_t);
      if (data_len < at + sizeof(std::uint32_t)) return "INET_DIAG_SKMEMINFO attribute too short";
      s.drops = load<std::uint32_t>(data + at);
      break;
    }
    case INET_DIAG_SKV6ONLY:
      if (data_len < 1) return "INET_DIAG_SKV6ONLY attribute without a value";
      s.v6only = data[0] != std::byte{0};
      break;
    default:
      break;
    }
    off += align4(attr.nla_len);
  }
  out = s;
  return nullptr;
}

dump_chunk_result parse_dump_chunk(std::span<const std::byte> datagram, std::uint32_t seq,
                                   socket_visitor visit) {
  dump_chunk_result r;
  auto fail = [&r](std::string what) {
    r.outcome = dump_chunk_result::status::error;
    r.error = std::move(what);
    return r;
  };
  std::size_t off = 0;
  tcp_socket s;
  while (off < datagram.size()) {
    if (datagram.size() - off < sizeof(nlmsghdr))
      return fail("netlink datagram ends inside a message header (" +
                  std::to_string(datagram.size() - off) + " bytes left)");
    const auto hdr = load<nlmsghdr>(datagram.data() + off);
    if (hdr.nlmsg_len < sizeof(nlmsghdr) || hdr.nlmsg_len > datagram.size() - off)
      return fail("netlink message length " + std::to_string(hdr.nlmsg_len) + " does not fit the " +
                  std::to_string(datagram.size() - off) + " bytes left");
    auto payload = datagram.subspan(off + NLMSG_HDRLEN, hdr.nlmsg_len - NLMSG_HDRLEN);
    off += align4(hdr.nlmsg_len);
    if (hdr.nlmsg_seq != seq) continue;
    if (hdr.nlmsg_flags & NLM_F_DUMP_INTR) r.interrupted = true;
    switch (hdr.nlmsg_type) {
    case NLMSG_DONE: {
      // Since 4.x the kernel puts the dump's final status (0 or -errno) after the header.
      int status = payload.size() >= sizeof(int) ? load<int>(payload.data()) : 0;
      if (status < 0) {
        r.kernel_errno = negated_errno(status);
        return fail("sock_diag dump ended with an error");
      }
      r.outcome = dump_chunk_result::status::done;
      return r;
    }
    case NLMSG_ERROR: {
      if (payload.size() < sizeof(int)) return fail("NLMSG_ERROR without an error code");
      int err = load<int>(payload.data());
      if (err == 0) continue; // an acknowledgement
      r.kernel_errno = negated_errno(err);
      return fail("the kernel refused the sock_diag request");
    }
    case NLMSG_NOOP:
      continue;
    case SOCK_DIAG_BY_FAMILY:
    case TCPDIAG_GETSOCK: { // replies carry the request's type
      if (const char* why = parse_inet_diag_payload(payload, s)) return fail(why);
      visit(s);
      ++r.sockets;
      break;
    }
    default:
      return fail("unexpected netlink message type " + std::to_string(hdr.nlmsg_type));
    }
  }
  return r;
}

std::vector<std::byte> make_dump_request(std::uint8_t family, std::uint32_t seq,
                                         const dump_filter& filter) {
  // Bytecode: a chain of port comparisons that must all hold. Each is two inet_diag_bc_ops
  // (the second carries the port in `no`); `yes` steps to the next comparison, `no` jumps past
  // the end, which the kernel's inet_diag_bc_run() reads as "reject" (iproute2 ss does the same).
  std::vector<inet_diag_bc_op> ops;
  auto compare = [&ops](std::uint8_t code, std::uint16_t port) {
    ops.push_back({code, 8, 0});
    ops.push_back({0, 0, port});
  };
  if (filter.min_local_port > 0) compare(INET_DIAG_BC_S_GE, filter.min_local_port);
  if (filter.max_local_port < 65535) compare(INET_DIAG_BC_S_LE, filter.max_local_port);
  const std::size_t bc_len = ops.size() * sizeof(inet_diag_bc_op);
  for (std::size_t i = 0; i < ops.size(); i += 2)
    ops[i].no = static_cast<std::uint16_t>(bc_len - i * sizeof(inet_diag_bc_op) + 4);

  const std::size_t attr_len = bc_len ? NLA_HDRLEN + bc_len : 0;
  // AF_UNSPEC: the legacy TCPDIAG_GETSOCK request (struct inet_diag_req), which the kernel
  // still serves (inet_diag_dump_compat) as a dump of both families in ONE walk of its hash
  // tables. The tables are global (or sized by tcp_child_ehash_entries), so on a small
  // namespace the walk over empty buckets is most of a census: one walk instead of two.
  const bool legacy = family == AF_UNSPEC;
  const std::uint8_t ext = filter.meminfo ? 1u << (INET_DIAG_SKMEMINFO - 1) : 0;
  const std::size_t req_len = legacy ? sizeof(inet_diag_req) : sizeof(inet_diag_req_v2);
  const std::size_t total = NLMSG_HDRLEN + req_len + NLA_ALIGN(attr_len);
  std::vector<std::byte> out(total);
  nlmsghdr hdr{};
  hdr.nlmsg_len = static_cast<std::uint32_t>(total);
  hdr.nlmsg_type = legacy ? TCPDIAG_GETSOCK : SOCK_DIAG_BY_FAMILY;
  hdr.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  hdr.nlmsg_seq = seq;
  std::memcpy(out.data(), &hdr, sizeof hdr);
  if (legacy) {
    inet_diag_req req{};
    req.idiag_states = filter.states;
    req.idiag_ext = ext;
    std::memcpy(out.data() + NLMSG_HDRLEN, &req, sizeof req);
  } else {
    inet_diag_req_v2 req{};
    req.sdiag_family = family;
    req.sdiag_protocol = IPPROTO_TCP;
    req.idiag_states = filter.states;
    req.idiag_ext = ext; // by default none: the smallest messages, the fastest dump
    std::memcpy(out.data() + NLMSG_HDRLEN, &req, sizeof req);
  }
  if (bc_len) {
    nlattr attr{static_cast<std::uint16_t>(attr_len), INET_DIAG_REQ_BYTECODE};
    std::byte* at = out.data() + NLMSG_HDRLEN + req_len;
    std::memcpy(at, &attr, sizeof attr);
    std::memcpy(at + NLA_HDRLEN, ops.data(), bc_len);
  }
  return out;
}

sock_diag_reader::sock_diag_reader(const lab::netns* ns, std::size_t buffer_bytes)
    : buffer_(new std::byte[buffer_bytes < 65536 ? 65536 : buffer_bytes]),
      buffer_bytes_(buffer_bytes < 65536 ? 65536 : buffer_bytes) {
  // Without `ns`, remember the namespace we start in, so that a socket reopened after a failed
  // dump still reports on it even if the thread has moved elsewhere since.
  ns_ = ns ? ns->duplicate() : lab::netns::current();
  open_socket();
}

void sock_diag_reader::open_socket() {
  auto make = [] { return ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG); };
  unique_fd fd;
  if (ns_.inode() != lab::netns::current().inode()) {
    // A netlink socket answers for the namespace it was created in, wherever it is used later.
    lab::netns_scope in(ns_);
    fd.reset(make());
  } else {
    fd.reset(make()); // already there: no setns, so no privilege is needed
  }
  if (!fd) throw lab_error(errno_message("socket(AF_NETLINK, NETLINK_SOCK_DIAG)", errno));
  // A hang guard: the kernel always answers a dump, so a 5 s silence means something is broken.
  timeval tv{5, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  fd_ = std::move(fd);
}

std::size_t sock_diag_reader::dump(const dump_filter& filter, socket_visitor visit) {
  if (!fd_) open_socket();
  if (filter.family == AF_INET || filter.family == AF_INET6)
    return dump_family(filter.family, filter, visit);
  if (combined_) {
    // One walk of the kernel's hash tables for both families (see make_dump_request).
    bool unsupported = false;
    std::size_t n = dump_family(AF_UNSPEC, filter, visit, &unsupported);
    if (!unsupported) return n;
    combined_ = false;
  }
  return dump_family(AF_INET, filter, visit) + dump_family(AF_INET6, filter, visit);
}

std::size_t sock_diag_reader::dump_family(std::uint8_t family, const dump_filter& filter,
                                          socket_visitor visit, bool* unsupported) {
  // If anything below throws mid-dump, the rest of the dump would still be queued on the
  // socket: drop the socket and open a fresh one next time instead of draining it.
  struct reset_on_throw {
    unique_fd& fd;
    bool armed = true;
    ~reset_on_throw() {
      if (armed) fd.reset();
    }
  } guard{fd_};

  const std::uint32_t seq = ++seq_;
  const auto request = make_dump_request(family, seq, filter);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  ssize_t sent;
  do {
    sent = ::sendto(fd_.get(), request.data(), request.size(), 0,
                    reinterpret_cast<sockaddr*>(&kernel), sizeof kernel);
  } while (sent < 0 && errno == EINTR);
  if (sent != static_cast<ssize_t>(request.size()))
    throw lab_error(errno_message("sending the sock_diag dump request", errno));

  std::size_t count = 0;
  for (;;) {
    iovec iov{buffer_.get(), buffer_bytes_};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    ssize_t n = ::recvmsg(fd_.get(), &mh, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw lab_error(errno_message("receiving the sock_diag dump", errno));
    }
    if (mh.msg_flags & MSG_TRUNC)
      throw lab_error("sock_diag reply truncated: a datagram exceeded the " +
                      std::to_string(buffer_bytes_) + "-byte receive buffer");
    if (n == 0) throw lab_error("sock_diag socket closed in the middle of a dump");
    auto r = parse_dump_chunk({buffer_.get(), static_cast<std::size_t>(n)}, seq, visit);
    count += r.sockets;
    if (r.outcome == dump_chunk_result::status::done) break;
    if (r.outcome == dump_chunk_result::status::error) {
      // A kernel built without IPv6 diag support has no handler for AF_INET6: no sockets.
      if (family == AF_INET6 && count == 0 &&
          (r.kernel_errno == ENOENT || r.kernel_errno == EAFNOSUPPORT)) {
        guard.armed = false;
        return 0;
      }
      // A kernel without the legacy both-families request: the caller falls back.
      if (unsupported && count == 0 &&
          (r.kernel_errno == EINVAL || r.kernel_errno == ENOENT || r.kernel_errno == EOPNOTSUPP ||
           r.kernel_errno == EAFNOSUPPORT)) {
        *unsupported = true;
        guard.armed = false;
        return 0;
      }
      throw lab_error(r.kernel_errno ? errno_message(r.error, r.kernel_errno) : r.error);
    }
  }
  guard.armed = false;
  return count;
}

} // namespace backlog_lab::observer
