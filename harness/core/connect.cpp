#include "harness/core/connect.hpp"

#include <sys/socket.h>

#include <cerrno>

namespace backlog_lab {
namespace {

boost::system::error_code errno_code(int err) {
  return {err, boost::system::system_category()};
}

} // namespace

boost::system::error_code start_connect(int fd, const tcp::endpoint& endpoint) {
  const auto len = static_cast<socklen_t>(endpoint.size());
  if (::connect(fd, endpoint.data(), len) == 0) return {};
  int err = errno;
  if (err != EINPROGRESS && err != EINTR) return errno_code(err);
  // Over loopback and veth the handshake usually completes inside that connect() (the SYN,
  // SYN-ACK and ACK run in softirq before it returns), but the call already said EINPROGRESS.
  // A second connect() reports the outcome (0, or the error such as ECONNREFUSED) or EALREADY
  // while it is still pending: one syscall instead of a readiness wait, a dial timer and an
  // SO_ERROR check.
  if (::connect(fd, endpoint.data(), len) == 0) return {};
  err = errno;
  if (err == EALREADY || err == EINPROGRESS || err == EINTR) return net::error::in_progress;
  if (err == EISCONN) return {};
  return errno_code(err);
}

boost::system::error_code connect_result(int fd) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  return errno_code(err);
}

} // namespace backlog_lab
