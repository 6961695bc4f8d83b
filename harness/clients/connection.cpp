#include "harness/clients/connection.hpp"

#include <cerrno>

namespace backlog_lab::clients {

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
