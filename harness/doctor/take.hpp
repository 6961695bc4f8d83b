#pragma once
// Taking connections out of another process's accept queue (doctor --peek / --drain):
// pidfd_open + pidfd_getfd duplicate the owner's listener (docs/reference/kernel.md section 8), accept() takes
// queued children without blocking, their bytes are read without waiting, then they are closed.
// This changes what the owner will see: callers ask for explicit consent first.
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "harness/observer/owners.hpp"
#include "harness/observer/sock_diag.hpp"

namespace backlog_lab::doctor {

/// One connection taken from a listener's accept queue and closed.
struct taken_connection {
  observer::endpoint peer;
  std::string head;         ///< the first bytes it held (at most the keep limit)
  std::size_t bytes = 0;    ///< every byte read
  bool peer_closed = false; ///< the read reached the client's FIN (it was CLOSE-WAIT)
};

/// Duplicates descriptor `owner.fd` of process `owner.pid`, checks that it is the socket with
/// inode `listener_inode`, accepts up to `max` queued connections (never waiting for one),
/// reads each without waiting (keeping the first `keep` bytes), and closes them. The owner's
/// listener stays open and unchanged (no flag is set on the shared file). Throws lab_error
/// saying which privilege is missing (CAP_SYS_PTRACE, Yama ptrace_scope, another user's process).
std::vector<taken_connection> take_queued(const observer::socket_holder& owner,
                                          std::uint32_t listener_inode, std::size_t max,
                                          std::size_t keep = 4096);

/// The bytes as a reader wants them: an HTTP request or response head as text lines (up to the
/// blank line), anything else as hex; at most `limit` bytes shown, the rest counted.
std::string show_bytes(std::string_view bytes, std::size_t limit = 512);

} // namespace backlog_lab::doctor
