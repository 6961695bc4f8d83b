// doctor: `backlog-lab doctor --all-netns` against `ss -tanp` run in each namespace, over a
// farm of many namespaces (socket_farm with `namespaces`) holding about 100,000 sockets in all:
// a node's pods, a few of them with listeners that never accept (queues full, CLOSE-WAIT
// children), the rest accepting every connection.
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "bench/driver/measure.hpp"
#include "bench/driver/sections.hpp"
#include "bench/support/socket_farm.hpp"

namespace backlog_lab::bench {
namespace {

// The smallest interval doctor allows (harness/cli/doctor_cmd.cpp); its sleep is taken out of
// the timed figure, since a user chooses it and no tool could look twice faster.
constexpr const char* doctor_interval = "0.05";
constexpr double doctor_interval_ms = 50;

// What a captured `doctor --json` said about the farm, as a warning ("" when as expected):
// every namespace found; in each never-accepting one every listener reported never-accepts with
// an owner; in each accepting one none reported.
std::string check_doctor_output(const socket_farm& farm, const std::string& out,
                                std::size_t& other_namespaces) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(out);
  } catch (const std::exception& e) {
    return std::string("doctor printed no JSON: ") + e.what();
  }
  std::map<unsigned long, const nlohmann::json*> by_inode;
  for (const auto& ns : doc.at("namespaces"))
    by_inode[ns.at("inode").get<unsigned long>()] = &ns;
  std::string problems;
  std::size_t found = 0;
  for (std::size_t k = 0; k < farm.namespaces().size(); ++k) {
    auto it = by_inode.find(farm.namespaces()[k].inode());
    if (it == by_inode.end()) {
      problems += " namespace " + std::to_string(k) + " not found;";
      continue;
    }
    ++found;
    const auto& ns = *it->second;
    const std::size_t reported = ns.at("listeners").size();
    const std::size_t expected = farm.accepting(k) ? 0 : farm.spec().listeners;
    std::size_t named = 0;
    for (const auto& l : ns.at("listeners"))
      named += l.at("verdict") == "never-accepts" && !l.at("owners").empty() ? 1 : 0;
    if (reported != expected || named != expected)
      problems += " namespace " + std::to_string(k) + ": " + std::to_string(reported) +
                  " listeners reported, " + std::to_string(named) +
                  " never-accepts with an owner, expected " + std::to_string(expected) + ";";
  }
  other_namespaces = by_inode.size() - found;
  return problems;
}

} // namespace

void run_doctor_section(const compare_options& o, compare_report& report) {
  const std::string section = "doctor";
  if (o.backlog_lab.empty() || ::access(o.backlog_lab.c_str(), X_OK) != 0) {
    report.notes[section] = "skipped: no backlog-lab binary at '" + o.backlog_lab + "'";
    return;
  }
  // A node: the census's pairs spread over its pods, a fifth of them with listeners that never
  // accept (doctor reports those and resolves their owners), the rest healthy.
  farm_spec spec;
  spec.namespaces = o.doctor_namespaces;
  spec.pairs = std::max<std::size_t>(o.census_pairs / spec.namespaces, 1);
  spec.close_wait = o.census_close_wait / spec.namespaces;
  spec.listeners = 10;
  spec.accepting_namespaces = spec.namespaces - std::max<std::size_t>(spec.namespaces / 5, 1);
  spec.full_queues = true;
  spec.tcp_hash_entries = lab::netns::default_tcp_hash_entries;
  auto built = std::chrono::steady_clock::now();
  socket_farm farm = socket_farm::build(spec);
  report.add(section, "farm_build_ms", "ms", ms_since(built));
  const auto& counted = farm.counted();

  // Untimed: doctor must find the farm and name its listeners (exit 1: trouble was found).
  const std::string interval = doctor_interval;
  const std::vector<std::string> doctor_argv = {o.backlog_lab, "doctor", "--all-netns",
                                                "--interval",  interval, "--json"};
  auto checked = exec_in(nullptr, doctor_argv, true);
  std::size_t other_namespaces = 0;
  std::string problems = check_doctor_output(farm, checked.out, other_namespaces);
  if (checked.exit_status != 1)
    problems += " doctor exited " + std::to_string(checked.exit_status) + ", expected 1;";
  if (!problems.empty()) report.notes[section + ".warning"] = "doctor's report:" + problems;

  const std::size_t never = spec.namespaces - spec.accepting_namespaces;
  report.notes[section] =
      std::to_string(counted.total) + " sockets in " + std::to_string(spec.namespaces) +
      " namespaces of " + std::to_string(spec.listeners) + " listeners and " +
      std::to_string(spec.pairs) + " pairs each (" + std::to_string(spec.close_wait) +
      " half-closed); in " + std::to_string(never) +
      " the listeners never accept (queues exactly full, CLOSE-WAIT children with " +
      std::to_string(spec.request_bytes) + " B + FIN unread), in " +
      std::to_string(spec.accepting_namespaces) +
      " a worker accepted every connection (queues empty); " + std::to_string(farm.workers()) +
      " worker processes, one or more in each namespace, hold the clients and accepted sides. "
      "doctor --all-netns --interval " +
      interval +
      " --json (stdout to /dev/null) as a process; its wall time less the interval "
      "is the timed figure; namespaces of the machine outside the farm that it examined too: " +
      std::to_string(other_namespaces) +
      ". ss -tanp run once in each farm namespace, "
      "the wall times summed";

  for (int run = 0; run < o.runs; ++run) {
    auto time_ss = [&] {
      double wall = 0, cpu = 0;
      for (const auto& ns : farm.namespaces()) {
        auto r = exec_in(&ns, {"ss", "-tanp"}, false);
        wall += r.wall_ms;
        cpu += r.cpu_ms;
      }
      report.add(section, "ss_tanp_all_ms", "ms", wall);
      report.add(section, "ss_tanp_all_cpu_ms", "ms", cpu);
    };
    auto time_doctor = [&] {
      auto r = exec_in(nullptr, doctor_argv, false);
      report.add(section, "doctor_process_ms", "ms", r.wall_ms);
      report.add(section, "doctor_less_interval_ms", "ms", r.wall_ms - doctor_interval_ms);
      report.add(section, "doctor_cpu_ms", "ms", r.cpu_ms);
      if (r.exit_status != 1)
        report.notes[section + ".exit"] =
            "a timed doctor exited " + std::to_string(r.exit_status) + ", expected 1";
    };
    in_alternating_order(run, time_ss, time_doctor);
    if (o.verbose) std::cerr << "doctor run " << run + 1 << " done\n";
  }

  report
      .ratio(section, "doctor --all-netns (less interval) / ss -tanp in each netns",
             "doctor_less_interval_ms", "ss_tanp_all_ms")
      .at_most(0.5);
  report.ratio(section, "doctor --all-netns (interval included) / ss -tanp in each",
               "doctor_process_ms", "ss_tanp_all_ms");
  report.ratio(section, "doctor --all-netns / ss -tanp in each netns, CPU time", "doctor_cpu_ms",
               "ss_tanp_all_cpu_ms");
}

} // namespace backlog_lab::bench
