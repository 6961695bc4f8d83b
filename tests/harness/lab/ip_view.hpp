#pragma once
// What the kernel's own tools show inside a namespace (`ip -j`, `nstat`), the oracle the lab's
// tests compare with.
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness/lab/netns.hpp"

namespace backlog_lab::testing {

/// `ip -j ARGS...` run inside `ns`, parsed; fails the test if ip fails.
nlohmann::json ip_json(const lab::netns& ns, std::vector<std::string> args);

/// The entry for link `name` in an `ip -j link` or `ip -j addr` listing, or null.
nlohmann::json find_link(const nlohmann::json& links, const std::string& name);

/// The IPv4 addresses of an `ip -j addr` entry as "a.b.c.d/len", in the kernel's order.
std::vector<std::string> inet_addresses(const nlohmann::json& link);

/// Whether an `ip -j link` entry carries `flag` ("UP", "LOWER_UP", ...).
bool has_flag(const nlohmann::json& link, const std::string& flag);

/// Every IPv4 route of `ns` as destination -> "gateway@dev" (gateway empty when direct).
std::map<std::string, std::string> routes(const lab::netns& ns);

/// A counter of `ns` as `nstat -asz` prints it (absolute, nstat's history left alone); -1 if
/// nstat does not list it.
long counter(const lab::netns& ns, const std::string& name);

} // namespace backlog_lab::testing
