#include "harness/cli/sweep_cmd.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>

#include "harness/cli/signals.hpp"
#include "harness/core/error.hpp"
#include "harness/lab/netns.hpp"
#include "harness/sweep/progress.hpp"
#include "harness/sweep/report.hpp"
#include "harness/sweep/settings.hpp"
#include "harness/sweep/sweep.hpp"

namespace backlog_lab::cli {
namespace {

// An output named by a flag: "-" is stdout; a file is opened before the sweep starts, so a bad
// path fails at once instead of after minutes of runs.
struct output {
  output(std::string p, std::string f) : path(std::move(p)), flag(std::move(f)) {}
  std::string path;
  std::string flag;
  std::ofstream file;
  std::ostream* stream = nullptr;

  void open() {
    if (path.empty()) return;
    if (path == "-") {
      stream = &std::cout;
      return;
    }
    file.open(path);
    if (!file) throw input_error(flag + " " + path, "a writable file path");
    stream = &file;
  }
};

std::size_t terminal_width(int fd) {
  winsize ws{};
  if (::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 100;
}

} // namespace

void setup_sweep(CLI::App& app, std::function<int()>& action) {
  auto opts = std::make_shared<sweep_options>();
  auto* cmd = app.add_subcommand(
      "sweep", "Run a scenario over a matrix of settings, each cell in fresh namespaces");
  cmd->add_option("scenario", opts->scenario, "A shipped scenario's name or a scenario file")
      ->required();
  cmd->add_option("--set", opts->sets,
                  "KEY=V1,V2,...: ROLE:net.x.y (a sysctl of clients, node or pods) or a JSON "
                  "pointer into the scenario (/proxy/backlog); repeat for more axes");
  cmd->add_option("--repeat", opts->repeat, "Runs per cell (mean and spread over them)")
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--metric", opts->metrics,
                  "A metric to report (docs/metrics.md; max:/min:/sum: aggregates too); repeat "
                  "for more; the first is charted across the cells (default: a set on drops, "
                  "outcomes and latency)");
  cmd->add_option("--csv", opts->csv_path, "Write one CSV row per cell to FILE ('-': stdout)");
  cmd->add_option("--json", opts->json_path, "Write the JSON report to FILE ('-': stdout)");
  cmd->add_option("--html", opts->html_path, "Write a self-contained HTML report with charts");
  cmd->add_option("--junit", opts->junit_path,
                  "Write JUnit XML (a testsuite per cell and repeat, a testcase per expectation)");
  cmd->add_option("--seed", opts->seed,
                  "Sweep seed; each repeat's seed derives from it (default: the scenario's seed, "
                  "else from the clock; printed)");
  cmd->add_flag("-q,--quiet", opts->quiet, "No progress and no table: only the verdict");
  cmd->callback([opts, &action] { action = [opts] { return execute_sweep(*opts); }; });
}

int execute_sweep(const sweep_options& o) {
  // Everything that can be wrong with the input is found here, before any cell runs.
  sweep::plan plan = sweep::make_plan(scenario::read_scenario_source(o.scenario), o.sets);
  output csv{o.csv_path, "--csv"}, json{o.json_path, "--json"}, html{o.html_path, "--html"},
      junit{o.junit_path, "--junit"};
  int on_stdout =
      (o.csv_path == "-") + (o.json_path == "-") + (o.html_path == "-") + (o.junit_path == "-");
  if (on_stdout > 1) throw input_error("outputs", "at most one of them on stdout ('-')");
  for (auto* out : {&csv, &json, &html, &junit})
    out->open();
  // With a report on stdout the human table goes to stderr.
  std::ostream& human = on_stdout ? std::cerr : std::cout;

  std::uint64_t seed = 0;
  if (o.seed)
    seed = *o.seed;
  else if (plan.cells.front().scenario.seed)
    seed = *plan.cells.front().scenario.seed;
  else
    seed =
        (std::random_device{}() ^
         static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count())) >>
        1;

  lab::ensure_privileges();
  lab::raise_fd_limit();
  scoped_stop_signals stop;
  sweep::sweep_options so;
  so.repeat = o.repeat;
  so.seed = seed;
  so.metrics = o.metrics;
  so.stop_requested = &stop.requested();
  std::unique_ptr<sweep::progress_bar> bar;
  if (!o.quiet) {
    bool tty = ::isatty(STDERR_FILENO) == 1;
    std::cerr << "sweep: " << plan.cells.front().scenario.name << " (" << plan.source << "), "
              << plan.cells.size() << " cell" << (plan.cells.size() == 1 ? "" : "s") << " x "
              << o.repeat << " repeat" << (o.repeat == 1 ? "" : "s") << ", seed " << seed << "\n";
    bar = std::make_unique<sweep::progress_bar>(std::cerr, tty, terminal_width(STDERR_FILENO));
    so.on_progress = [&bar](const sweep::progress& p) { bar->update(p); };
  }
  sweep::sweep_result r = sweep::run_sweep(plan, so);
  if (bar) bar->finish();

  if (!o.quiet && !r.cells.empty()) {
    human << "\n";
    sweep::write_table(human, r);
    human << "\n";
  }
  if (csv.stream) sweep::write_csv(*csv.stream, r);
  if (json.stream) *json.stream << sweep::to_json(r).dump(2) << "\n";
  if (html.stream) sweep::write_html(*html.stream, r, o.metrics.empty() ? "" : o.metrics.front());
  if (junit.stream) sweep::write_junit(*junit.stream, r);
  for (auto* out : {&csv, &json, &html, &junit})
    if (out->stream) out->stream->flush();
  human << sweep::verdict(r) << "\n";
  if (r.interrupted) return static_cast<int>(exit_code::interrupted);
  if (!r.error.empty()) return static_cast<int>(exit_code::bad_input);
  return static_cast<int>(r.passed() ? exit_code::ok : exit_code::expectations_failed);
}

} // namespace backlog_lab::cli
