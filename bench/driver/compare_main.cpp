// backlog_lab_compare: backlog-lab side by side with Debian's peers (ss, wrk, nginx, haproxy) in
// lab namespaces; prints every ratio with its spread and writes the JSON of record. bench/compare
// builds and runs it (see the README's "Performance" section).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>

#include "bench/driver/sections.hpp"
#include "harness/core/error.hpp"
#include "harness/lab/netns.hpp"

namespace fs = std::filesystem;
using namespace backlog_lab;
using namespace backlog_lab::bench;

namespace {

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

int compare_main(int argc, char** argv) {
  CLI::App app{"backlog-lab vs ss, wrk, haproxy: ratios with their spread"};
  compare_options o;
  std::string only = "census,doctor,memory,load,openloop,proxy,sync,reproduce";
  std::string json_path;
  std::string markdown_path;
  std::string command;
  app.add_option("--runs", o.runs, "Runs of every measurement")->check(CLI::Range(1, 50));
  app.add_option("--only", only, "Sections, comma separated: " + only);
  app.add_option("--load-seconds", o.load_seconds, "Length of each closed-loop run")
      ->check(CLI::Range(1, 60));
  app.add_option("--open-loop-seconds", o.open_loop_seconds, "Length of each open-loop run")
      ->check(CLI::Range(0.5, 60.0));
  app.add_option("--census-pairs", o.census_pairs, "Connection pairs in the census namespace")
      ->check(CLI::Range(1, 200'000));
  app.add_option("--census-close-wait", o.census_close_wait, "Of those, half-closed (CLOSE_WAIT)");
  app.add_option("--doctor-namespaces", o.doctor_namespaces,
                 "doctor: namespaces the census's pairs are spread over")
      ->check(CLI::Range(1, 500));
  app.add_option("--memory-connections", o.memory_connections, "Open connections for memory")
      ->check(CLI::Range(1, 18'000));
  app.add_option("--backlog-lab", o.backlog_lab, "The backlog-lab binary")->required();
  app.add_option("--json", json_path, "Write the results here");
  app.add_option("--markdown", markdown_path, "Write the table of ratios as Markdown here");
  app.add_option("--command", command, "The command line to record in the results");
  app.add_flag("-v,--verbose", o.verbose, "Progress on stderr");
  CLI11_PARSE(app, argc, argv);
  if (o.census_close_wait > o.census_pairs)
    throw input_error("--census-close-wait", "at most --census-pairs");

  std::set<std::string> sections;
  for (std::size_t at = 0; at <= only.size();) {
    auto comma = only.find(',', at);
    if (comma == std::string::npos) comma = only.size();
    std::string s = only.substr(at, comma - at);
    static const std::set<std::string> known = {"census",   "doctor", "memory", "load",
                                                "openloop", "proxy",  "sync",   "reproduce"};
    if (!s.empty() && !known.count(s))
      throw input_error("--only",
                        "sections among census,doctor,memory,load,openloop,proxy,sync,reproduce");
    if (!s.empty()) sections.insert(s);
    at = comma + 1;
  }

  if (::geteuid() != 0) throw lab_error("bench/compare builds lab namespaces: run it as root");
  lab::raise_fd_limit();
  o.self = fs::canonical("/proc/self/exe").string();
  char dir_template[] = "/tmp/backlog-lab-compare-XXXXXX";
  if (!::mkdtemp(dir_template)) throw lab_error(errno_message("mkdtemp", errno));
  o.work_dir = dir_template;
  struct remove_dir {
    std::string path;
    ~remove_dir() {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  } cleanup{o.work_dir};

  compare_report report;
  auto machine = describe_machine();
  auto load_before = load_averages();
  auto started = std::chrono::steady_clock::now();
  const std::string date = utc_now();

  // Order: the census and doctor first (their farms fork worker processes), then what uses one
  // core each.
  auto run = [&](const std::string& name, auto&& body) {
    if (!sections.count(name)) return;
    auto t = std::chrono::steady_clock::now();
    try {
      body();
    } catch (const std::exception& e) {
      report.notes[name + ".error"] = e.what();
      std::cerr << "bench/compare: " << name << " failed: " << e.what() << "\n";
    }
    report.add("time", name + "_section_s", "s", ms_since(t) / 1000.0);
    if (o.verbose) std::cerr << name << ": " << ms_since(t) / 1000.0 << " s\n";
  };
  run("census", [&] { run_census_section(o, report); });
  run("doctor", [&] { run_doctor_section(o, report); });
  run("memory", [&] { run_memory_section(o, report); });
  bool load = sections.count("load") > 0, open_loop = sections.count("openloop") > 0,
       proxy = sections.count("proxy") > 0;
  if (load || open_loop || proxy) {
    sections.insert("traffic");
    run("traffic", [&] { run_traffic_sections(o, load, open_loop, proxy, report); });
  }
  run("sync", [&] { run_sync_section(o, report); });
  run("reproduce", [&] { run_reproduce_section(o, report); });

  double wall_s = ms_since(started) / 1000.0;
  auto load_after = load_averages();
  report.print(std::cout);
  std::cout << "machine: " << machine.nproc << " CPUs, " << machine.cpu_model << ", kernel "
            << machine.kernel << "; load average before " << load_before[0] << " " << load_before[1]
            << " " << load_before[2] << ", after " << load_after[0] << " " << load_after[1] << " "
            << load_after[2] << "; " << o.runs << " runs; " << wall_s << " s\n";

  if (!markdown_path.empty()) {
    std::ofstream md(markdown_path);
    report.print_markdown(md);
    if (!md) throw lab_error("cannot write " + markdown_path);
  }
  if (!json_path.empty()) {
    auto j = report.to_json();
    j["date"] = date;
    j["command"] = command.empty() ? std::string(argv[0]) : command;
    j["runs"] = o.runs;
    j["wall_time_s"] = wall_s;
    j["machine"] = {{"nproc", machine.nproc},
                    {"kernel", machine.kernel},
                    {"cpu_model", machine.cpu_model},
                    {"mem_gib", machine.mem_gib}};
    j["load_average"] = {{"before", load_before}, {"after", load_after}};
    std::ofstream out(json_path);
    out << j.dump(2) << "\n";
    if (!out) throw lab_error("cannot write " + json_path);
    std::cout << "results: " << json_path << "\n";
  }
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  try {
    if (argc == 5 && std::string(argv[1]) == "--memory-probe")
      return memory_probe_main(argv[2], static_cast<std::uint16_t>(std::stoi(argv[3])),
                               static_cast<std::size_t>(std::stoul(argv[4])));
    return compare_main(argc, argv);
  } catch (const input_error& e) {
    std::cerr << "bench/compare: " << e.where() << ": expected " << e.expected() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "bench/compare: " << e.what() << "\n";
    return 2;
  }
}
