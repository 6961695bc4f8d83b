#include "harness/cli/netns_options.hpp"

namespace backlog_lab::cli {

netns_options add_netns_options(CLI::App& sub, std::optional<pid_t>& pid, std::string& netns_path,
                                const std::string& verb) {
  netns_options o;
  o.pid = sub.add_option("--pid", pid, verb + " the network namespace of process PID")
              ->check(CLI::PositiveNumber);
  o.path = sub.add_option("--netns", netns_path,
                          verb + " the network namespace at PATH (/proc/PID/ns/net, "
                                 "/run/netns/NAME)")
               ->check(CLI::ExistingPath);
  o.pid->excludes(o.path);
  return o;
}

} // namespace backlog_lab::cli
