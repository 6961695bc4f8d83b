#include "harness/cli/run_cmd.hpp"

#include <csignal>
#include <fstream>
#include <iostream>

#include "harness/cli/signals.hpp"
#include "harness/core/error.hpp"
#include "harness/lab/netns.hpp"
#include "harness/report/report.hpp"
#include "harness/runner/runner.hpp"
#include "harness/scenario/overrides.hpp"
#include "harness/scenario/reader.hpp"
#include "scenarios/builtin.hpp"

namespace backlog_lab::cli {
namespace {

// Opens `path` for writing ("-" is stdout); throws input_error naming the flag.
std::ostream& open_output(const std::string& path, std::ofstream& file, const std::string& flag) {
  if (path == "-") return std::cout;
  file.open(path);
  if (!file) throw input_error(flag + " " + path, "a writable file path");
  return file;
}

} // namespace

void setup_run(CLI::App& app, std::function<int()>& action) {
  auto opts = std::make_shared<run_options>();
  auto* cmd = app.add_subcommand("run", "Run a scenario and check its expectations");
  cmd->add_option("scenario", opts->scenario,
                  "A shipped scenario's name or a scenario file (default: " +
                      std::string(scenario::default_scenario) + ")");
  cmd->add_flag("--list", opts->list, "List the shipped scenarios");
  cmd->add_option("--json", opts->json_path, "Write the JSON report to FILE ('-': stdout)");
  cmd->add_option("--junit", opts->junit_path, "Write JUnit XML (one testcase per expectation)");
  cmd->add_option("--html", opts->html_path,
                  "Write the run as a self-contained HTML page with charts to FILE ('-': stdout)");
  cmd->add_option("--connections", opts->connections_path,
                  "Write every client connection (times, outcome, ports) as CSV to FILE");
  cmd->add_option("--seed", opts->seed, "Seed for random choices (overrides the scenario's)");
  cmd->add_flag("-q,--quiet", opts->quiet, "Print only failed expectations and the verdict");
  cmd->add_option("--set", opts->sets,
                  "KEY=VALUE: a sysctl (ROLE:net.x.y) or a JSON pointer into the scenario, as "
                  "`sweep --set` takes them; re-runs one sweep cell");
  cmd->add_flag("--show-rules", opts->show_rules,
                "Print the node's NAT rules as `iptables -t nat -S` lists them");
  cmd->add_option("--logs", opts->logs_dir,
                  "Write each exec program's stdout and stderr to DIR/ROLE-NAME.stdout|.stderr")
      ->check(CLI::ExistingDirectory);
  cmd->add_flag("--allow-external", opts->allow_external,
                "Let client targets lie outside the lab's namespaces (docs/your-software.md)");
  cmd->callback([opts, &action] { action = [opts] { return execute_run(*opts); }; });
}

int execute_run(const run_options& o) {
  if (o.list) {
    for (const auto& b : scenarios::builtin_scenarios()) {
      auto s = scenario::parse_scenario(std::string(b.json), "builtin:" + std::string(b.name));
      std::cout << std::string(b.name) << (b.name == scenario::default_scenario ? " (default)" : "")
                << "\n    " << s.description.substr(0, s.description.find(". ") + 1) << "\n";
    }
    return 0;
  }
  const std::string& name = o.scenario; // '' given on the command line is an error, not the default
  auto s = o.sets.empty() ? scenario::load_scenario(name)
                          : scenario::apply_sets(scenario::read_scenario_source(name), o.sets);
  // Every output is opened before the lab is built: a bad path must not throw a finished run away.
  std::ofstream json_file, junit_file, csv_file, html_file;
  std::ostream* json_out =
      o.json_path.empty() ? nullptr : &open_output(o.json_path, json_file, "--json");
  std::ostream* junit_out =
      o.junit_path.empty() ? nullptr : &open_output(o.junit_path, junit_file, "--junit");
  std::ostream* csv_out = o.connections_path.empty()
                              ? nullptr
                              : &open_output(o.connections_path, csv_file, "--connections");
  std::ostream* html_out =
      o.html_path.empty() ? nullptr : &open_output(o.html_path, html_file, "--html");
  // With the JSON or the page on stdout the human summary goes to stderr.
  std::ostream& human = o.json_path == "-" || o.html_path == "-" ? std::cerr : std::cout;

  lab::ensure_privileges();
  lab::raise_fd_limit();
  scoped_stop_signals stop;
  runner::run_options ro;
  ro.seed = o.seed;
  ro.stop_requested = &stop.requested();
  ro.logs_dir = o.logs_dir;
  ro.allow_external = o.allow_external;
  if (!o.quiet) ro.log = [&human](const std::string& line) { human << "  " << line << std::endl; };
  runner::run_result r = runner::run_scenario(s, ro);
  report::write_terminal(human, r, {.quiet = o.quiet, .show_rules = o.show_rules});
  if (json_out) *json_out << report::to_json(r).dump(2) << "\n";
  if (junit_out) report::write_junit(*junit_out, {&r});
  if (csv_out) report::write_connections_csv(*csv_out, r);
  if (html_out) report::write_html(*html_out, r);
  if (r.interrupted) return static_cast<int>(exit_code::interrupted);
  return static_cast<int>(r.passed() ? exit_code::ok : exit_code::expectations_failed);
}

} // namespace backlog_lab::cli
