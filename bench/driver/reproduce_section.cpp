// reproduce: wall time of `backlog-lab run [NAME]` from process start to verdict (its exit),
// for the default incident scenario and the 57-port node scenario.
#include <unistd.h>

#include <iostream>

#include "bench/driver/sections.hpp"

namespace backlog_lab::bench {

void run_reproduce_section(const compare_options& o, compare_report& report) {
  const std::string section = "reproduce";
  if (o.backlog_lab.empty() || ::access(o.backlog_lab.c_str(), X_OK) != 0) {
    report.notes[section] = "skipped: no backlog-lab binary at '" + o.backlog_lab + "'";
    return;
  }
  auto list = exec_in(nullptr, {o.backlog_lab, "run", "--list"}, true);
  struct target {
    std::string scenario; ///< empty: the default
    std::string key;
  };
  std::vector<target> targets = {{"", "default"}};
  const std::string node = "incident-2018-03-node";
  if (list.out.find(node) != std::string::npos)
    targets.push_back({node, "node57"});
  else
    report.notes[section + ".node57"] =
        "scenario '" + node + "' is not shipped yet: its slot is empty";
  std::string codes;
  for (int run = 0; run < o.runs; ++run)
    for (const auto& t : targets) {
      std::vector<std::string> argv = {o.backlog_lab, "run", "-q"};
      if (!t.scenario.empty()) argv.push_back(t.scenario);
      auto r = exec_in(nullptr, argv, false, -1, std::chrono::seconds(180));
      report.add(section, t.key + "_wall_s", "s", r.wall_ms / 1000.0);
      report.add(section, t.key + "_exit_status", "code", r.exit_status);
      codes += " " + t.key + "=" + std::to_string(r.exit_status);
      if (o.verbose) std::cerr << "reproduce " << t.key << " run " << run + 1 << " done\n";
    }
  report.notes[section] = "backlog-lab run -q [NAME], process start to exit (the verdict); exit "
                          "0 = expectations held, 1 = failed, 2 = error; exits:" +
                          codes;
  // Issue 13's target: each incident scenario's verdict within 3 s on 2 cores. Most of it is the
  // scenario's own timeline (run --json "wall" splits the rest).
  for (const auto& t : targets) {
    auto& row = report.value(
        section,
        "time to verdict, " +
            (t.scenario.empty() ? std::string("default incident scenario") : t.scenario) +
            " (s, not a ratio)",
        t.key + "_wall_s");
    row.target = "<= 3 s";
    row.limit = 3.0;
  }
}

} // namespace backlog_lab::bench
