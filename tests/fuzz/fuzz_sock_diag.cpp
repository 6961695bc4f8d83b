// libFuzzer target: one netlink datagram of a sock_diag dump, as the kernel (or anything else on
// a live node) might send it. The first 4 bytes choose the sequence number the reader expects.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "harness/observer/sock_diag.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::uint32_t seq = 0;
  if (size >= sizeof seq) {
    std::memcpy(&seq, data, sizeof seq);
    data += sizeof seq;
    size -= sizeof seq;
  }
  std::span<const std::byte> datagram(reinterpret_cast<const std::byte*>(data), size);
  std::size_t sockets = 0;
  std::uint64_t sum = 0;
  auto result = backlog_lab::observer::parse_dump_chunk(
      datagram, seq, [&](const backlog_lab::observer::tcp_socket& s) {
        ++sockets;
        sum += s.recv_q + s.send_q + s.inode; // touch what the census reads
        (void)backlog_lab::observer::format_endpoint(s.local, s.v6only);
      });
  if (result.sockets != sockets) __builtin_trap(); // the count it reports is the count it gave
  // Also each payload on its own, as parse_inet_diag_payload is public.
  backlog_lab::observer::tcp_socket one;
  (void)backlog_lab::observer::parse_inet_diag_payload(datagram, one);
  return static_cast<int>(sum & 0);
}
