#include "harness/cli/sweep_cmd.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>

#include "harness/cli/signals.hpp"
#include "harness/core/error.hpp"
#include "harness/lab/netns.hpp"
#include "harness/runner/descriptor_budget.hpp"
#include "harness/sweep/merge.hpp"
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

// The report files of a sweep (or of a merge of shards), opened up front.
struct report_outputs {
  output csv, json, html, junit;
  report_outputs(const std::string& c, const std::string& j, const std::string& h,
                 const std::string& u)
      : csv{c, "--csv"}, json{j, "--json"}, html{h, "--html"}, junit{u, "--junit"} {
    int on_stdout = (c == "-") + (j == "-") + (h == "-") + (u == "-");
    if (on_stdout > 1) throw input_error("outputs", "at most one of them on stdout ('-')");
    stdout_taken = on_stdout > 0;
    for (auto* out : {&csv, &json, &html, &junit})
      out->open();
  }
  bool stdout_taken = false;
};

// The table, every report file and the verdict; returns the exit code.
int write_reports(const sweep::sweep_result& r, report_outputs& outs, bool quiet,
                  const std::string& chart_metric) {
  // With a report on stdout the human table goes to stderr.
  std::ostream& human = outs.stdout_taken ? std::cerr : std::cout;
  if (!quiet && !r.cells.empty()) {
    human << "\n";
    sweep::write_table(human, r);
    human << "\n";
  }
  if (outs.csv.stream) sweep::write_csv(*outs.csv.stream, r);
  if (outs.json.stream) *outs.json.stream << sweep::to_json(r).dump(2) << "\n";
  if (outs.html.stream) sweep::write_html(*outs.html.stream, r, chart_metric);
  if (outs.junit.stream) sweep::write_junit(*outs.junit.stream, r);
  for (auto* out : {&outs.csv, &outs.json, &outs.html, &outs.junit})
    if (out->stream) out->stream->flush();
  if (!quiet) human << sweep::parallel_summary(r) << "\n";
  for (const auto& note : r.parallel.notes)
    std::cerr << "backlog-lab: warning: " << note << "\n";
  human << sweep::verdict(r) << "\n";
  if (r.interrupted) return static_cast<int>(exit_code::interrupted);
  if (!r.error.empty()) return static_cast<int>(exit_code::bad_input);
  return static_cast<int>(r.passed() ? exit_code::ok : exit_code::expectations_failed);
}

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
  cmd->add_option("--jobs,-j", opts->jobs,
                  "Runs at once, each in a child process with its own namespaces (default 1); the "
                  "sweep reports whether they disturbed each other")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--shard", opts->shard,
                  "I/N: run only run k (cell x repeat, 0-based) with k % N == I - 1, with the "
                  "seeds of the whole sweep; `backlog-lab merge` joins the shards' --json files");
  cmd->add_flag("-q,--quiet", opts->quiet, "No progress and no table: only the verdict");
  cmd->callback([opts, &action] { action = [opts] { return execute_sweep(*opts); }; });
}

int execute_sweep(const sweep_options& o) {
  // Everything that can be wrong with the input is found here, before any cell runs.
  sweep::plan plan = sweep::make_plan(scenario::read_scenario_source(o.scenario), o.sets);
  sweep::shard_spec shard;
  if (!o.shard.empty()) shard = sweep::parse_shard(o.shard);
  report_outputs outs{o.csv_path, o.json_path, o.html_path, o.junit_path};

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
  // A cell too big for the descriptor limit is found before the first cell runs, as a bad
  // --set is (each run checks again before building its lab).
  std::uint64_t available = runner::available_descriptors();
  for (const auto& c : plan.cells) {
    try {
      runner::check_descriptor_budget(c.scenario, available);
    } catch (const input_error& e) {
      if (c.label().empty()) throw;
      throw input_error(c.label() + ": " + e.where(), e.expected());
    }
  }
  scoped_stop_signals stop;
  sweep::sweep_options so;
  so.repeat = o.repeat;
  so.seed = seed;
  so.metrics = o.metrics;
  so.stop_requested = &stop.requested();
  so.jobs = o.jobs;
  so.shard = shard;
  std::unique_ptr<sweep::progress_bar> bar;
  if (!o.quiet) {
    bool tty = ::isatty(STDERR_FILENO) == 1;
    std::cerr << "sweep: " << plan.cells.front().scenario.name << " (" << plan.source << "), "
              << plan.cells.size() << " cell" << (plan.cells.size() == 1 ? "" : "s") << " x "
              << o.repeat << " repeat" << (o.repeat == 1 ? "" : "s") << ", seed " << seed;
    if (shard.count > 1) std::cerr << ", shard " << shard.index << "/" << shard.count;
    if (o.jobs > 1) std::cerr << ", " << o.jobs << " jobs";
    std::cerr << "\n";
    std::size_t cpus = sweep::usable_cpus();
    if (o.jobs > cpus)
      std::cerr << "sweep: warning: --jobs " << o.jobs << " exceeds the " << cpus
                << " CPUs this process may use; runs may wait for a CPU and measure the wait\n";
    bar = std::make_unique<sweep::progress_bar>(std::cerr, tty, terminal_width(STDERR_FILENO));
    so.on_progress = [&bar](const sweep::progress& p) { bar->update(p); };
  }
  sweep::sweep_result r = sweep::run_sweep(plan, so);
  if (bar) bar->finish();

  return write_reports(r, outs, o.quiet, o.metrics.empty() ? "" : o.metrics.front());
}

void setup_merge(CLI::App& app, std::function<int()>& action) {
  auto opts = std::make_shared<merge_options>();
  auto* cmd = app.add_subcommand(
      "merge", "Join the --json reports of a sweep's shards (sweep --shard I/N) into the reports "
               "of the whole sweep, or run --json reports into one client population");
  cmd->add_option("files", opts->files,
                  "The shards' sweep --json reports, every shard once; or run --json reports")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--csv", opts->csv_path, "Write one CSV row per cell to FILE ('-': stdout)");
  cmd->add_option("--json", opts->json_path, "Write the JSON report to FILE ('-': stdout)");
  cmd->add_option("--html", opts->html_path, "Write a self-contained HTML report with charts");
  cmd->add_option("--junit", opts->junit_path, "Write JUnit XML");
  cmd->add_option("--chart", opts->chart_metric,
                  "The metric the HTML report charts across the cells (default: the first)");
  cmd->add_flag("-q,--quiet", opts->quiet, "No table: only the verdict");
  cmd->callback([opts, &action] { action = [opts] { return execute_merge(*opts); }; });
}

int execute_merge(const merge_options& o) {
  std::vector<sweep::shard_file> files;
  for (const auto& path : o.files) {
    std::ifstream in(path);
    nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded()) throw input_error(path, "a JSON report (it does not parse as JSON)");
    files.push_back({path, std::move(j)});
  }
  bool runs = std::all_of(files.begin(), files.end(),
                          [](const auto& f) { return sweep::is_run_report(f.report); });
  if (runs) {
    if (!o.csv_path.empty() || !o.html_path.empty() || !o.junit_path.empty())
      throw input_error("merge", "only --json when merging run --json reports");
    output json{o.json_path, "--json"};
    json.open();
    nlohmann::json merged = sweep::merge_run_reports(files);
    if (json.stream) *json.stream << merged.dump(2) << "\n";
    if (!o.quiet)
      sweep::write_run_merge_table(json.stream == &std::cout ? std::cerr : std::cout, merged);
    return static_cast<int>(exit_code::ok);
  }
  report_outputs outs{o.csv_path, o.json_path, o.html_path, o.junit_path};
  sweep::sweep_result r;
  try {
    r = sweep::merge_shards(files);
  } catch (const nlohmann::json::exception& e) {
    throw input_error("merge", std::string("sweep --json reports as docs/sweep.md describes (") +
                                   e.what() + ")");
  }
  return write_reports(r, outs, o.quiet, o.chart_metric);
}

} // namespace backlog_lab::cli
