#pragma once
// The socket census's raw material: TCP sockets read from the kernel through sock_diag netlink
// (NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY, inet_diag), IPv4 and IPv6, every state.
// The parser is a pure function over bytes (tested on crafted buffers); the reader owns one
// netlink socket opened inside a namespace and reuses one large receive buffer.
// Not libmnl (which the lab's rtnetlink code uses): its parsing reads headers and attributes
// through struct pointers, so a fuzzed or crafted buffer at an odd offset is undefined
// behaviour, and mnl_cb_run gives up on a dump flagged NLM_F_DUMP_INTR (EINTR, libmnl
// src/callback.c) where the census keeps what it read and marks it interrupted.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "harness/lab/netns.hpp"
#include "harness/observer/tcp_state.hpp"

namespace backlog_lab::observer {

/// An IPv4 or IPv6 address in network byte order (IPv4 uses the first 4 bytes).
struct ip_address {
  std::array<std::uint8_t, 16> bytes{};
  std::uint8_t family = 0; ///< AF_INET or AF_INET6

  /// The IPv4 address a.b.c.d.
  static ip_address v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d);
  /// Parses "1.2.3.4", "::1" or "::ffff:1.2.3.4" (no brackets); false if it is neither.
  static bool parse(std::string_view text, ip_address& out);
  /// 0.0.0.0 or ::.
  bool is_any() const noexcept;
  /// Numeric form as inet_ntop writes it ("127.0.0.1", "::ffff:198.51.100.1").
  std::string to_string() const;
  bool operator==(const ip_address&) const = default;
  auto operator<=>(const ip_address&) const = default; // NOLINT(modernize-use-nullptr)
};

/// An address and a port (host byte order; 0 = none, printed "*").
struct endpoint {
  ip_address address;
  std::uint16_t port = 0;
  bool operator==(const endpoint&) const = default;
  auto operator<=>(const endpoint&) const = default;
};

/// One TCP socket as inet_diag reports it.
struct tcp_socket {
  endpoint local;
  endpoint remote;
  tcp_state state = tcp_state::close;
  std::uint8_t family = 0;   ///< AF_INET or AF_INET6 (v4-mapped peers of [::] sockets are AF_INET6)
  std::uint8_t shutdown = 0; ///< INET_DIAG_SHUTDOWN: bit 0 = peer's FIN received, bit 1 = ours sent
  bool v6only = false;       ///< INET_DIAG_SKV6ONLY (the kernel sends it for LISTEN and CLOSE only)
  std::uint32_t recv_q =
      0; ///< idiag_rqueue: LISTEN: accept_queue; else unread bytes (+1 after FIN)
  std::uint32_t send_q = 0; ///< idiag_wqueue: LISTEN: backlog; else unacknowledged bytes
  std::uint32_t inode = 0;  ///< 0 = no socket file: un-accepted child, orphan, TIME-WAIT, request
  std::uint32_t uid = 0;
  std::uint32_t ifindex = 0; ///< bound device (idiag_if), 0 if none
  /// sk_drops (INET_DIAG_SKMEMINFO, SK_MEMINFO_DROPS; `ss -m` d<N>): for a LISTEN socket every
  /// listen drop (tcp_listendrop). 0 unless the dump asked for dump_filter::meminfo.
  std::uint32_t drops = 0;
  bool operator==(const tcp_socket&) const = default;
};

/// "addr:port" exactly as `ss -tan` prints a column: 127.0.0.1:80, [::1]:80, *:80 (dual-stack
/// [::]), [::]:80 (v6only), [::ffff:198.51.100.1]:30720, 0.0.0.0:* (port 0 prints as *).
std::string format_endpoint(const endpoint& e, bool v6only);
/// The same with the address already formatted (`address_text` = e.address.to_string()).
std::string format_endpoint(const endpoint& e, bool v6only, std::string_view address_text);
/// format_endpoint(e, v6only, address_text) appended to `out`.
void append_endpoint(std::string& out, const endpoint& e, bool v6only,
                     std::string_view address_text);

class socket_visitor;

/// Anything callable with `const tcp_socket&` other than a socket_visitor itself.
template <class F>
concept socket_callable = !std::is_same_v<std::remove_cvref_t<F>, socket_visitor> &&
                          std::is_invocable_v<F&, const tcp_socket&>;

/// A callable taking `const tcp_socket&`, referenced (not owned) for the duration of one call.
class socket_visitor {
public:
  // Constrained (socket_callable), so it never hides the copy constructor.
  template <socket_callable F>
  socket_visitor(F&& f) noexcept // NOLINT(bugprone-forwarding-reference-overload)
      : ctx_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* ctx, const tcp_socket& s) {
          (*static_cast<std::remove_reference_t<F>*>(ctx))(s);
        }) {}
  void operator()(const tcp_socket& s) const { call_(ctx_, s); }

private:
  void* ctx_;
  void (*call_)(void*, const tcp_socket&);
};

/// Decodes one SOCK_DIAG_BY_FAMILY message payload (struct inet_diag_msg + attributes).
/// Returns nullptr on success, else a static description of what is malformed. Never throws.
const char* parse_inet_diag_payload(std::span<const std::byte> payload, tcp_socket& out) noexcept;

/// What one received netlink datagram of a dump contained.
struct dump_chunk_result {
  enum class status { more, done, error } outcome = status::more;
  std::size_t sockets = 0;  ///< sockets handed to the visitor
  int kernel_errno = 0;     ///< status::error from NLMSG_ERROR/NLMSG_DONE: the kernel's errno
  std::string error;        ///< status::error: what went wrong, for messages
  bool interrupted = false; ///< NLM_F_DUMP_INTR seen: the kernel says the dump was inconsistent
};

/// Walks the netlink messages of one datagram, decodes the socket messages of sequence `seq`
/// (others are skipped: leftovers of an earlier dump) and calls `visit` for each. Pure: no I/O.
/// Truncated or malformed messages give status::error with a description, never a crash.
dump_chunk_result parse_dump_chunk(std::span<const std::byte> datagram, std::uint32_t seq,
                                   socket_visitor visit);

/// Every TCP state `ss -a` asks for, as an idiag_states bit mask (bit n = state n). SYN-RECV's
/// bit also brings the request sockets; TCP_BOUND_INACTIVE is left out, as ss does.
inline constexpr std::uint32_t all_states_mask = 0xffe;

/// The bit of `s` in an idiag_states mask.
constexpr std::uint32_t state_bit(tcp_state s) noexcept {
  return std::uint32_t{1} << static_cast<unsigned>(s);
}

/// Which sockets a dump asks the kernel for.
struct dump_filter {
  std::uint8_t family = 0;                ///< AF_INET or AF_INET6 only; 0 (AF_UNSPEC): both
  std::uint32_t states = all_states_mask; ///< idiag_states mask (see state_bit)
  std::uint16_t min_local_port = 0;       ///< > 0: a bytecode filter "sport >= min"
  std::uint16_t max_local_port = 65535;   ///< < 65535: a bytecode filter "sport <= max"
  bool meminfo = false; ///< ask for INET_DIAG_SKMEMINFO (tcp_socket::drops): bigger messages
};

/// The dump request for `family` (AF_INET, AF_INET6, or AF_UNSPEC for both in one legacy
/// TCPDIAG_GETSOCK request): TCP, INET_DIAG_SKMEMINFO if filter.meminfo, the states and (as
/// INET_DIAG_REQ_BYTECODE, the way ss builds it) the local port range of `filter`.
std::vector<std::byte> make_dump_request(std::uint8_t family, std::uint32_t seq,
                                         const dump_filter& filter = {});

/// A NETLINK_SOCK_DIAG socket bound to one namespace, reused for many dumps.
class sock_diag_reader {
public:
  /// Opens the socket in `ns` (nullptr: the calling thread's namespace, no setns needed).
  /// `buffer_bytes` is the receive buffer; the kernel sends at most ~32 KiB per datagram.
  explicit sock_diag_reader(const lab::netns* ns = nullptr, std::size_t buffer_bytes = 1 << 20);

  /// Dumps every TCP socket of the namespace (IPv4, then IPv6) in kernel order, calling `visit`
  /// for each; returns how many. Throws lab_error on a kernel error or a malformed reply.
  std::size_t dump(socket_visitor visit) { return dump(dump_filter{}, visit); }
  /// Same for the sockets that pass `filter`.
  std::size_t dump(const dump_filter& filter, socket_visitor visit);

private:
  void open_socket();
  std::size_t dump_family(std::uint8_t family, const dump_filter& filter, socket_visitor visit,
                          bool* unsupported = nullptr);

  unique_fd fd_;
  lab::netns ns_; ///< the namespace the socket belongs to (reopened there if needed)
  std::unique_ptr<std::byte[]> buffer_;
  std::size_t buffer_bytes_ = 0;
  std::uint32_t seq_ = 0;
  bool combined_ = true; ///< both families in one request, until the kernel refuses it
};

} // namespace backlog_lab::observer
