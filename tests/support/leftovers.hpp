#pragma once
// What a lab can leave behind, as the system shows it: processes and fds holding a namespace,
// named namespaces, links in the host namespace, live processes. Used by the cleanup tests.
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <set>
#include <string>
#include <vector>

namespace backlog_lab::testing {

/// Every place on the system that still refers to one of `inodes` (net:[INODE]): namespace links
/// of every task (/proc/*/task/*/ns/net), open fds (/proc/*/fd/*), named namespaces
/// (/run/netns/*, which `ip netns list` shows), and this process's own sockets (SIOCGSKNS).
/// Empty when nothing holds them any more.
std::vector<std::string> holders_of(const std::set<unsigned long>& inodes);

/// Whether `pid` is a running (not zombie) process that started at `start_ticks` (field 22 of
/// /proc/PID/stat; 0 = any start time).
bool process_running(pid_t pid, unsigned long long start_ticks = 0);

/// Field 22 of /proc/PID/stat (start time in clock ticks), or 0 if there is no such process.
unsigned long long process_start_ticks(pid_t pid);

/// Link names in the calling thread's namespace, as `ip -j link` lists them.
std::vector<std::string> current_links();

/// Names that `ip netns list` prints.
std::vector<std::string> named_namespaces();

/// How many descriptors this process holds open (the listing's own included, so two counts
/// compare equal when nothing was leaked between them).
std::size_t open_descriptors();

/// The RLIMIT_NOFILE soft limit under which this process can open exactly `more` descriptors
/// more (the kernel hands out the lowest free number first).
unsigned long descriptor_limit_allowing(int more);

/// One item per line, for failure messages.
std::string lines(const std::vector<std::string>& items);

/// Polls `done` every 10 ms until it holds or `limit` passes (a hang guard, not a timing check).
bool eventually(const std::function<bool()>& done,
                std::chrono::milliseconds limit = std::chrono::seconds(5));

} // namespace backlog_lab::testing
