#include "harness/observer/namespaces.hpp"

#include <dirent.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <map>

#include "harness/core/error.hpp"
#include "harness/observer/owners.hpp"

namespace backlog_lab::observer {

std::vector<namespace_entry> list_network_namespaces() {
  std::map<unsigned long, pid_t> first_pid;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) throw lab_error(errno_message("opendir /proc", errno));
  std::string path;
  while (const dirent* d = ::readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(d->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    path = "/proc/";
    path += d->d_name;
    path += "/ns/net";
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) continue; // gone, a kernel thread, or not ours to see
    auto [it, added] = first_pid.emplace(st.st_ino, static_cast<pid_t>(pid));
    if (!added && pid < it->second) it->second = static_cast<pid_t>(pid);
  }
  ::closedir(proc);
  std::vector<namespace_entry> out;
  out.reserve(first_pid.size());
  for (const auto& [inode, pid] : first_pid)
    out.push_back({inode, pid, comm_of(pid)});
  return out;
}

} // namespace backlog_lab::observer
