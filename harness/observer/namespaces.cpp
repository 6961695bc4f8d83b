#include "harness/observer/namespaces.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <map>

#include "harness/core/error.hpp"
#include "harness/core/processes.hpp"
#include "harness/observer/owners.hpp"

namespace backlog_lab::observer {

std::vector<namespace_entry> list_network_namespaces() {
  std::map<unsigned long, pid_t> first_pid;
  const std::vector<pid_t> pids = list_pids();
  if (pids.empty()) throw lab_error(errno_message("reading /proc", errno));
  std::string path;
  for (pid_t pid : pids) {
    path = "/proc/" + std::to_string(pid) + "/ns/net";
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) continue; // gone, a kernel thread, or not ours to see
    auto [it, added] = first_pid.emplace(st.st_ino, pid);
    if (!added && pid < it->second) it->second = pid;
  }
  std::vector<namespace_entry> out;
  out.reserve(first_pid.size());
  for (const auto& [inode, pid] : first_pid)
    out.push_back({inode, pid, comm_of(pid)});
  return out;
}

} // namespace backlog_lab::observer
