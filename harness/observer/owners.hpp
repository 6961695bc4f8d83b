#pragma once
// Who holds a socket: the processes with a file descriptor on its inode, found in one pass over
// /proc/*/fd (as `ss -p` does, but only for the inodes asked for), with each process's cgroup
// and the Kubernetes pod UID or container id that cgroup path names.
#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace backlog_lab::observer {

/// The Kubernetes and container ids a cgroup path names (empty when it names none).
struct cgroup_ids {
  std::string pod_uid;      ///< "1d7f3c2a-…" (dashes, as the API shows it), from "pod<uid>"
  std::string container_id; ///< 64 hex digits, from "cri-containerd-<id>.scope", "docker-<id>"...
  bool operator==(const cgroup_ids&) const = default;
};

/// Parses a cgroup path such as
/// "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_with_underscores>.slice/
/// cri-containerd-<64hex>.scope" (systemd driver) or "/kubepods/burstable/pod<uid>/<64hex>"
/// (cgroupfs driver). Pure.
cgroup_ids parse_cgroup_ids(std::string_view path);

/// The cgroup path of a process from /proc/PID/cgroup: the v2 entry ("0::PATH"), else the v1
/// line of name=systemd, else the first v1 line. Empty if the process is gone.
std::string cgroup_of(pid_t pid);

/// The command name of a process (/proc/PID/comm without its newline); empty if it is gone.
std::string comm_of(pid_t pid);

/// One process holding a socket.
struct socket_holder {
  pid_t pid = 0;
  std::string comm; ///< /proc/PID/comm
  int fd = -1;      ///< the descriptor number in that process
  std::string cgroup;
  cgroup_ids ids; ///< parsed from cgroup
  bool operator==(const socket_holder&) const = default;
};

/// Socket inode -> the processes holding it (a socket shared across fork has several).
using owner_map = std::unordered_map<std::uint32_t, std::vector<socket_holder>>;

/// One descriptor of one process that refers to a socket.
struct socket_fd {
  std::uint32_t inode = 0; ///< the socket's inode (sock_diag's idiag_inode)
  pid_t pid = 0;
  int fd = -1;
};

/// One pass over /proc/*/fd listing every socket descriptor of every process, split over
/// `threads` threads (a process at a time). Lets the pass run beside a census that has not yet
/// named the inodes it wants; owners_among() picks them afterwards.
std::vector<socket_fd> list_socket_fds(unsigned threads = 1);

/// The holders of `inodes` (0s ignored) among `fds`, each with its comm and cgroup; holders are
/// sorted by pid, then fd.
owner_map owners_among(std::span<const socket_fd> fds, std::span<const std::uint32_t> inodes);

/// One pass over /proc/*/fd resolving only `inodes` (0s ignored), over `threads` threads;
/// holders are sorted by pid, then fd. Processes that vanish or cannot be read (permissions) are
/// skipped.
owner_map find_owners(std::span<const std::uint32_t> inodes, unsigned threads = 1);

/// "comm(pid=P,fd=F)" for each holder, comma-separated, as `ss -p` names them.
std::string format_holders(const std::vector<socket_holder>& holders);

} // namespace backlog_lab::observer
