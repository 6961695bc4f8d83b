#pragma once
// The processes of this pid namespace, as /proc lists them.
#include <sys/types.h>

#include <vector>

namespace backlog_lab {

/// Every process (thread group) /proc lists now, in /proc's order; empty if /proc cannot be read.
/// A process may exit between this call and any use of its id.
std::vector<pid_t> list_pids();

} // namespace backlog_lab
