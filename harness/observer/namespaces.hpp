#pragma once
// The network namespaces of the machine, each named by a process in it: what `doctor
// --all-netns` and `export --all-netns` walk (on a Kubernetes node, one per pod).
#include <sys/types.h>

#include <string>
#include <vector>

namespace backlog_lab::observer {

/// A network namespace to read, named by a process in it.
struct namespace_entry {
  unsigned long inode = 0; ///< nsfs inode (net:[INODE]); the exporter's `netns` label
  pid_t pid = 0;           ///< a process in it (the lowest pid found); 0 if unknown
  std::string comm;        ///< that process's /proc/PID/comm
};

/// Every network namespace with a process in it, one entry per inode, sorted by inode. Reads
/// only /proc/PID/ns/net (stat) and /proc/PID/comm, never cmdline or environ, which can block on
/// a stuck process's memory map lock. Processes that vanish meanwhile are skipped.
std::vector<namespace_entry> list_network_namespaces();

} // namespace backlog_lab::observer
