#include "harness/cli/doctor_cmd.hpp"

#include <chrono>
#include <iostream>

#include "harness/cli/netns_options.hpp"
#include "harness/cli/signals.hpp"
#include "harness/core/error.hpp"
#include "harness/doctor/doctor.hpp"

namespace backlog_lab::cli {

void add_doctor_options(CLI::App& sub, doctor_options& o) {
  auto target = add_netns_options(sub, o.pid, o.netns_path, "Examine");
  auto* all = sub.add_flag("--all-netns", o.all_netns,
                           "Examine every network namespace with a process in it (on a "
                           "Kubernetes node: every pod)");
  target.pid->excludes(all);
  target.path->excludes(all);
  sub.add_option("--interval", o.interval_s, "Seconds between the two looks (default 2)")
      ->check(CLI::Range(0.05, 3600.0));
  sub.add_flag("--json", o.json, "Print the JSON document (format backlog-lab.doctor/1)");
  sub.add_flag("--peek", o.peek,
               "Take up to --take N queued connections from each listener with un-accepted "
               "children (through its owner's descriptor, pidfd_getfd), show their bytes and "
               "close them");
  sub.add_option("--take", o.take,
                 "Consent for --peek: how many connections to take away from each owner")
      ->check(CLI::Range(1, 1000000));
  sub.add_flag("--drain", o.drain,
               "Take and close every un-accepted child of each never-accepts listener (the "
               "remedy for a held port), and report what was freed");
  sub.add_flag("--watch", o.watch,
               "Redraw the text report after every pair of looks until Ctrl-C (text only; not "
               "with --peek or --drain)");
  sub.add_option("--port", o.port, "--peek/--drain: only listeners on this local port")
      ->check(CLI::Range(1, 65535));
}

void setup_doctor(CLI::App& app, std::function<int()>& action) {
  auto opts = std::make_shared<doctor_options>();
  CLI::App* sub = app.add_subcommand(
      "doctor", "Look at every listener twice, an interval apart: what its accept queue holds, "
                "who owns it, whether it still drops, and a verdict (exit 1: one is in trouble)");
  add_doctor_options(*sub, *opts);
  sub->callback([opts, &action] { action = [opts] { return run_doctor(*opts, std::cout); }; });
}

int run_doctor(const doctor_options& o, std::ostream& out) {
  doctor::target where;
  where.pid = o.pid;
  where.netns_path = o.netns_path;
  where.all_netns = o.all_netns;
  auto interval = std::chrono::milliseconds(static_cast<long>(o.interval_s * 1000 + 0.5));
  if (o.peek && o.take == 0)
    throw input_error("--peek", "--take N: peeking takes connections away from their owner (they "
                                "are accepted and closed); say how many per listener");
  if (o.take > 0 && !o.peek) throw input_error("--take", "--peek, which it gives consent for");
  if (o.watch) {
    if (o.json || o.peek || o.drain)
      throw input_error("--watch", "text only: not with --json, --peek or --drain");
    scoped_stop_signals signals; // the current pair of looks ends first: at most one interval
    while (!signals.requested()) {
      doctor::report r = doctor::examine(where, interval);
      if (signals.requested()) break;
      out << "\x1b[H\x1b[2J"; // home, clear: a terminal view
      doctor::print_text(out, r);
      out << "(--watch: redrawn every " << o.interval_s << " s; Ctrl-C ends)\n";
      out.flush();
    }
    return static_cast<int>(exit_code::ok);
  }
  doctor::report r = doctor::examine(where, interval);
  if (o.peek || o.drain)
    doctor::take(r, {.peek = o.peek ? o.take : 0, .drain = o.drain, .port = o.port});
  if (o.json)
    doctor::print_json(out, r);
  else
    doctor::print_text(out, r);
  return static_cast<int>(r.trouble() ? exit_code::expectations_failed : exit_code::ok);
}

} // namespace backlog_lab::cli
