#include "harness/clients/connection.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>

namespace backlog_lab::clients {

int bind_source(int fd, const net::ip::address& source) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  tcp::endpoint local(source, 0);
  return ::bind(fd, local.data(), static_cast<socklen_t>(local.size())) == 0 ? 0 : errno;
}

std::uint16_t local_port(int fd) noexcept {
  sockaddr_storage local{};
  socklen_t len = sizeof local;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) return 0;
  // sin_port and sin6_port sit at the same offset
  return ntohs(reinterpret_cast<const sockaddr_in&>(local).sin_port);
}

io_step send_request(connection_slot& s, const request_source& request, std::span<char> scratch) {
  while (s.sent < s.request_size) {
    // The pieces are a pure function of the size (a POST header is re-formatted into the
    // scratch), so nothing per connection is kept between partial writes.
    auto pieces = request.pieces(s.request_size, scratch.data());
    iovec iov[2];
    std::size_t skip = s.sent;
    for (std::size_t i = 0; i < 2; ++i) {
      std::size_t cut = std::min(skip, pieces[i].size());
      iov[i].iov_base = const_cast<char*>(pieces[i].data() + cut);
      iov[i].iov_len = pieces[i].size() - cut;
      skip -= cut;
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;
    ssize_t n = ::sendmsg(s.fd.get(), &msg, MSG_NOSIGNAL);
    if (n < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) return {io_status::would_block};
      return {io_status::failed, err};
    }
    s.sent += static_cast<std::uint32_t>(n);
  }
  return {io_status::done};
}

io_step read_response(connection_slot& s, std::span<char> buffer, bool http) noexcept {
  for (;;) {
    ssize_t n = ::recv(s.fd.get(), buffer.data(), buffer.size(), 0);
    if (n > 0) {
      s.response_bytes += static_cast<std::uint32_t>(n);
      if (!http) return {io_status::done};
      auto r = s.parser.feed(buffer.data(), static_cast<std::size_t>(n));
      if (r == http_response_parser::result::complete) return {io_status::done};
      if (r == http_response_parser::result::malformed) return {io_status::failed, EPROTO};
      continue;
    }
    if (n == 0) { // EOF: the peer's FIN
      if (http && s.parser.on_eof()) return {io_status::done};
      return {io_status::closed_early};
    }
    int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) return {io_status::would_block};
    return {io_status::failed, err};
  }
}

outcome classify_connect_error(int err) noexcept {
  if (err == ECONNREFUSED) return outcome::refused;
  // A RST to the handshake's final ACK (tcp_abort_on_overflow=1 at a full accept queue).
  if (err == ECONNRESET) return outcome::reset;
  // The kernel gave up first (tcp_syn_retries): its SYNs went unanswered just the same.
  if (err == ETIMEDOUT) return outcome::syn_unanswered;
  return outcome::other;
}

outcome classify_io_error(int err) noexcept {
  if (err == ECONNRESET || err == EPIPE) return outcome::reset;
  return outcome::other;
}

} // namespace backlog_lab::clients
