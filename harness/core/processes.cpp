#include "harness/core/processes.hpp"

#include <dirent.h>

#include <cstdlib>
#include <memory>

namespace backlog_lab {

std::vector<pid_t> list_pids() {
  std::vector<pid_t> pids;
  std::unique_ptr<DIR, int (*)(DIR*)> proc(::opendir("/proc"), ::closedir);
  if (!proc) return pids;
  while (const dirent* entry = ::readdir(proc.get())) {
    // Processes are the entries that are a positive decimal number; the rest is /proc's own.
    if (entry->d_name[0] < '1' || entry->d_name[0] > '9') continue;
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (*end == '\0') pids.push_back(static_cast<pid_t>(pid));
  }
  return pids;
}

} // namespace backlog_lab
