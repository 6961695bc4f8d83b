#pragma once
// Per-namespace sysctls (the net.* keys are per network namespace; see docs/reference/kernel.md
// section 6).
#include <map>
#include <optional>
#include <string>

#include "harness/lab/netns.hpp"

namespace backlog_lab::lab {

/// Sysctl keys in dotted form ("net.core.somaxconn") to values, applied in key order.
using sysctl_map = std::map<std::string, std::string>;

/// Whether the running kernel has `key` in `ns` (tcp_syn_linear_timeouts is 6.5+, for example).
bool sysctl_exists(const netns& ns, const std::string& key);

/// Reads `key` in `ns`, whitespace-trimmed; throws lab_error naming the key if it does not exist.
std::string read_sysctl(const netns& ns, const std::string& key);

/// Writes `key` in `ns` and reads it back; throws lab_error naming the key and the namespace if
/// the kernel lacks it, refuses the value, or stores something else.
void write_sysctl(const netns& ns, const std::string& key, const std::string& value);

/// Applies every entry of `values` in `ns`; on error nothing is rolled back (the namespace is new).
void apply_sysctls(const netns& ns, const sysctl_map& values);

/// The /proc/sys path of a dotted key; rejects keys outside net.* or with path tricks.
std::string sysctl_path(const std::string& key);

} // namespace backlog_lab::lab
