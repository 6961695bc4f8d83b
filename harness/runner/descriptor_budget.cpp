#include "harness/runner/descriptor_budget.hpp"

#include <dirent.h>

#include <algorithm>
#include <memory>

#include "harness/core/error.hpp"
#include "harness/lab/netns.hpp"

namespace backlog_lab::runner {
namespace {

using costs = descriptor_costs;

/// 14200 as "14,200".
std::string with_commas(std::uint64_t n) {
  std::string digits = std::to_string(n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

/// "1 pod", "2 pods".
std::string count_of(std::uint64_t n, const std::string& thing) {
  return std::to_string(n) + " " + thing + (n == 1 ? "" : "s");
}

/// Connections a built-in group keeps in flight at most, or 0 when the scenario does not bound
/// them (open-loop arrivals without max_connections).
std::uint64_t bounded_in_flight(const scenario::client_group_spec& c) {
  std::uint64_t bound = 0;
  if (c.arrival == scenario::arrival::closed)
    bound = c.concurrency;
  else if (c.arrival == scenario::arrival::heartbeat)
    bound = c.checkers; // one connection per checker and interval
  if (c.max_connections > 0)
    bound = bound == 0 ? c.max_connections : std::min<std::uint64_t>(bound, c.max_connections);
  return bound;
}

bool holds_node_ports(const scenario::proxy_spec& p) {
  if (p.mode == scenario::proxy_mode::userspace) return true;
  return p.mode == scenario::proxy_mode::iptables && p.preset != scenario::proxy_preset::v1_24;
}

} // namespace

descriptor_estimate estimate_descriptors(const scenario::scenario& s) {
  descriptor_estimate e;
  auto add = [&e](std::string where, std::string what, std::uint64_t n) {
    if (n == 0) return;
    e.parts.push_back({std::move(where), std::move(what), n});
    e.total += n;
  };
  std::uint64_t exec_programs = 0;
  for (const auto& b : s.backends)
    if (b.kind == scenario::backend_kind::exec) ++exec_programs;
  add("/backends", count_of(s.backends.size(), "pod"), s.backends.size() * costs::per_pod);
  bool userspace = s.proxy && s.proxy->mode == scenario::proxy_mode::userspace;
  if (s.proxy && holds_node_ports(*s.proxy))
    add("/services", count_of(s.services.size(), "held NodePort"),
        s.services.size() * costs::per_held_node_port);
  std::uint64_t groups = 0, in_flight = 0;
  for (const auto& c : s.clients) {
    if (c.kind == scenario::client_kind::exec) {
      ++exec_programs;
      continue;
    }
    ++groups;
    in_flight += bounded_in_flight(c);
  }
  std::uint64_t per_connection =
      costs::per_connection + (userspace ? costs::per_userspace_connection : 0);
  add("/clients", count_of(in_flight, "connection") + " in flight", in_flight * per_connection);
  add("/clients", count_of(groups, "client group"), groups * costs::per_client_group);
  if (s.proxy && s.proxy->mode == scenario::proxy_mode::exec) ++exec_programs;
  add("", count_of(exec_programs, "exec program"), exec_programs * costs::per_exec_program);
  if (userspace) add("/proxy", "the userspace proxier", costs::userspace_proxier);
  add("", "the run itself", costs::fixed);
  return e;
}

void check_descriptor_budget(const scenario::scenario& s, std::uint64_t available) {
  auto e = estimate_descriptors(s);
  if (e.total <= available) return;
  // The costly parts first; the fixed ones are summed into "and the rest".
  auto parts = e.parts;
  std::stable_sort(parts.begin(), parts.end(),
                   [](const auto& a, const auto& b) { return a.descriptors > b.descriptors; });
  std::string named;
  std::uint64_t rest = e.total;
  for (std::size_t i = 0; i < parts.size() && i < 3; ++i) {
    if (parts[i].where.empty()) continue;
    named += (named.empty() ? "" : " + ") + parts[i].where + ": " + parts[i].what + " (" +
             with_commas(parts[i].descriptors) + ")";
    rest -= parts[i].descriptors;
  }
  if (rest > 0) named += (named.empty() ? "" : " + ") + with_commas(rest) + " for the rest";
  throw input_error(s.source,
                    named + " need ~" + with_commas(e.total) +
                        " file descriptors; this process may open " + with_commas(available) +
                        " more (RLIMIT_NOFILE, `ulimit -n`): raise the hard limit (`ulimit -Hn`, "
                        "systemd's LimitNOFILE=) or use fewer Services, pods or connections "
                        "(docs/scenario-format.md#what-a-lab-holds). Nothing was built");
}

std::uint64_t available_descriptors() {
  std::uint64_t limit = lab::raise_fd_limit();
  std::uint64_t open = 0;
  if (std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir("/proc/self/fd"), ::closedir); d) {
    while (const dirent* entry = ::readdir(d.get()))
      if (entry->d_name[0] != '.') ++open;
    if (open > 0) --open; // the directory's own descriptor
  }
  return limit > open ? limit - open : 0;
}

} // namespace backlog_lab::runner
