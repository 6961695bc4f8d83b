#pragma once
// The comparison's sections; each adds its figures, ratios and notes to the report.
#include <cstdint>
#include <string>

#include "bench/driver/report.hpp"

namespace backlog_lab::bench {

/// Settings of one `bench/compare`.
struct compare_options {
  int runs = 5; ///< runs of every measurement (the spread is over these; 5 so that one slow run
                ///< of the VM does not decide a median)
  int load_seconds = 3;         ///< each wrk / closed-loop client run
  double open_loop_seconds = 2; ///< each open-loop rate run
  std::size_t census_pairs = 50'000;
  std::size_t census_close_wait = 20'000;
  std::size_t doctor_namespaces = 50; ///< the census's pairs spread over this many namespaces
  std::size_t memory_connections = 15'000;
  std::string backlog_lab; ///< the backlog-lab binary (time to reproduce, observe)
  std::string self;        ///< this binary (re-executed for the memory probe)
  std::string work_dir;    ///< peers' configuration files and logs
  bool verbose = false;
};

/// census: observer vs `ss -tan` vs /proc/net/tcp{,6} on a farm of 2 * pairs sockets.
void run_census_section(const compare_options& o, compare_report& report);
/// doctor: `backlog-lab doctor --all-netns` vs `ss -tanp` in each namespace, on a farm of the
/// census's pairs spread over doctor_namespaces namespaces.
void run_doctor_section(const compare_options& o, compare_report& report);
/// load, openloop, proxy: clients vs wrk, open-loop accuracy, proxy_sim vs haproxy, all in
/// front of one nginx (one worker) in one namespace; the flags pick which of the three run.
void run_traffic_sections(const compare_options& o, bool load, bool open_loop, bool proxy,
                          compare_report& report);
/// memory: RSS per open client connection, measured in a fresh process per run.
void run_memory_section(const compare_options& o, compare_report& report);
/// sync: proxy_sim's iptables rule sync vs `iptables-restore --noflush < FILE` of the same text,
/// 10,000 Services, install and full rewrite.
void run_sync_section(const compare_options& o, compare_report& report);
/// reproduce: wall time from start to verdict of `backlog-lab run` scenarios.
void run_reproduce_section(const compare_options& o, compare_report& report);

/// The memory probe's entry point (a fresh process): opens `connections` client connections
/// to 127.0.0.1:`port` in the namespace at `netns_path`, prints one JSON line with its RSS
/// before and after. Returns the exit code.
int memory_probe_main(const std::string& netns_path, std::uint16_t port, std::size_t connections);

} // namespace backlog_lab::bench
