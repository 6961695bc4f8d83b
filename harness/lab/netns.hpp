#pragma once
// Anonymous network namespaces bound to this process, and scoped switching between them.
#include <sys/types.h>

#include <string>

#include "harness/core/unique_fd.hpp"

namespace backlog_lab::lab {

/// A network namespace held only by a file descriptor of this process. It has no name in
/// /run/netns, so it disappears, with its links, rules and sockets, when the last holder
/// (this fd, or a process or socket inside it) is gone, SIGKILL included.
class netns {
public:
  /// Buckets of a lab namespace's own TCP hash table unless asked otherwise.
  static constexpr unsigned default_tcp_hash_entries = 4096;

  /// Creates a fresh namespace (kernel defaults, loopback brought up) named `name` for reports.
  /// It gets a TCP established-hash table of its own with `tcp_hash_entries` buckets (a power of
  /// two; 0 = share the kernel's global table), so that a sock_diag dump of it walks only that
  /// table: the global one has 262144 buckets here and costs ~25 ms per dump even when empty.
  static netns create(std::string name, unsigned tcp_hash_entries = default_tcp_hash_entries);
  /// The calling thread's current namespace.
  static netns current();
  /// Opens a namespace file such as /proc/PID/ns/net or /run/netns/NAME.
  static netns open(const std::string& path);
  /// The namespace of process `pid`.
  static netns of_pid(pid_t pid);

  netns() = default;

  /// A second handle on the same namespace.
  netns duplicate() const;

  int fd() const noexcept { return fd_.get(); }
  bool valid() const noexcept { return fd_.valid(); }
  const std::string& name() const noexcept { return name_; }
  /// The nsfs inode number, as `ls -l /proc/PID/ns/net` shows it (net:[INODE]).
  unsigned long inode() const;
  /// A path through which other processes can open it while we run (/proc/PID/fd/N).
  std::string proc_path() const;

private:
  netns(unique_fd fd, std::string name) : fd_(std::move(fd)), name_(std::move(name)) {}
  unique_fd fd_;
  std::string name_;
};

/// Moves the calling thread into `ns` and back to where it was when destroyed. Sockets opened
/// inside the scope belong to `ns` for their whole life.
class netns_scope {
public:
  explicit netns_scope(const netns& ns);
  ~netns_scope();
  netns_scope(const netns_scope&) = delete;
  netns_scope& operator=(const netns_scope&) = delete;

private:
  netns previous_;
};

/// If not running as root, moves the (still single-threaded) process into a new user namespace
/// where it is root, so that namespaces, links and sysctls can be managed; throws lab_error
/// naming what is needed if the kernel does not allow it. Must run before any thread starts.
void ensure_privileges();

/// Raises the soft open-file limit to the hard one; returns the resulting limit.
unsigned long raise_fd_limit();

} // namespace backlog_lab::lab
