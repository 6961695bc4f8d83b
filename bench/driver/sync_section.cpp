// sync: proxy_sim's iptables rule sync against `iptables-restore --noflush < FILE` of the same
// text by hand, for 10,000 Services with one endpoint each, in fresh namespaces side by side.
#include <chrono>
#include <fstream>
#include <iostream>

#include "bench/driver/sections.hpp"
#include "harness/core/asio.hpp"
#include "harness/core/error.hpp"
#include "proxy_sim/iptables/iptables_proxier.hpp"
#include "proxy_sim/iptables/rules.hpp"

namespace backlog_lab::bench {
namespace {

constexpr std::size_t services_count = 10'000;

std::vector<proxy_sim::service_endpoints> bench_services() {
  std::vector<proxy_sim::service_endpoints> services;
  for (std::size_t i = 0; i < services_count; ++i) {
    proxy_sim::service_endpoints s;
    s.service = "bench/svc-" + std::to_string(i) + ":http";
    s.node_port = static_cast<uint16_t>(20'000 + i);
    s.cluster_ip = "10.96." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
    // Remote endpoints' addresses (198.19.0.0/16); the rules do not need them routed.
    auto address = net::ip::address_v4(0xC6130000u + static_cast<uint32_t>(i));
    s.endpoints.emplace_back(address, 8080);
    services.push_back(std::move(s));
  }
  return services;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::trunc);
  f << text;
  if (!f) throw lab_error("cannot write '" + path + "'");
}

} // namespace

void run_sync_section(const compare_options& o, compare_report& report) {
  const std::string section = "sync";
  scenario::proxy_spec spec;
  spec.mode = scenario::proxy_mode::iptables;
  spec.preset = scenario::proxy_preset::v1_24; // no held ports: the rules alone
  const auto services = bench_services();
  const auto options = proxy_sim::iptables::make_rule_options(spec);
  // The texts our proxier gives iptables-restore: the install, then a full rewrite.
  auto install = proxy_sim::iptables::render_sync(services, options);
  auto resync = proxy_sim::iptables::render_sync(services, options, install.nat_chains, false);
  const std::string install_file = o.work_dir + "/sync-install.rules";
  const std::string resync_file = o.work_dir + "/sync-resync.rules";
  const std::string install_text = proxy_sim::iptables::restore_input(install.text);
  write_file(install_file, install_text);
  write_file(resync_file, proxy_sim::iptables::restore_input(resync.text));
  auto lines = std::count(install_text.begin(), install_text.end(), '\n');

  // CPU time as well as wall time: the restore's own work (in iptables-restore and in the
  // kernel on its behalf) is charged to the process, the kernel's background freeing of an
  // earlier namespace's rules is not, and that freeing is what made the wall times swing.
  auto cpu_now = [] { return thread_cpu_ms() + children_cpu_ms(); };
  auto by_hand = [&](const lab::netns& ns, const std::string& file, const std::string& what) {
    auto r = exec_in(&ns, {"sh", "-c", "iptables-restore --noflush < " + file}, false, -1,
                     std::chrono::seconds(300));
    if (r.exit_status != 0) throw lab_error("iptables-restore --noflush < " + file + " failed");
    report.add(section, "restore_" + what + "_ms", "ms", r.wall_ms);
    report.add(section, "restore_" + what + "_cpu_ms", "ms", r.cpu_ms);
  };
  auto ours = [&] {
    {
      auto ns = lab::netns::create("sync-ours");
      net::io_context io{1};
      auto proxier = proxy_sim::make_iptables_proxier(io, ns, spec, services);
      auto t = std::chrono::steady_clock::now();
      double cpu = cpu_now();
      proxier->start(); // render + iptables-restore, as a run's first sync
      report.add(section, "ours_install_ms", "ms", ms_since(t));
      report.add(section, "ours_install_cpu_ms", "ms", cpu_now() - cpu);
      // The same rules again (one endpoint moved and back is the same text): a full rewrite.
      t = std::chrono::steady_clock::now();
      cpu = cpu_now();
      proxier->update_endpoints(services[0].service, services[0].endpoints);
      io.run_one(); // the sync timer (delay 0), then the sync itself
      report.add(section, "ours_resync_ms", "ms", ms_since(t));
      report.add(section, "ours_resync_cpu_ms", "ms", cpu_now() - cpu);
      report.add(section, "ours_reported_install_ms", "ms", proxier->stats().rule_sync_ms.at(0));
    }
    report.add(section, "settle_ms", "ms", wait_for_quiet_cpus(std::chrono::seconds(20)));
  };
  auto theirs = [&] {
    {
      auto ns = lab::netns::create("sync-hand");
      by_hand(ns, install_file, "install");
      by_hand(ns, resync_file, "resync");
    }
    report.add(section, "settle_ms", "ms", wait_for_quiet_cpus(std::chrono::seconds(20)));
  };
  wait_for_quiet_cpus(std::chrono::seconds(20));
  for (int run = 0; run < o.runs; ++run) {
    // Alternate who goes first, and let the CPUs settle after each namespace is dropped: its
    // rules are freed by the kernel in the background, and whoever follows would share the
    // CPUs with that.
    in_alternating_order(run, ours, theirs);
    if (o.verbose) std::cerr << "sync run " << run + 1 << " done\n";
  }
  report.notes[section] =
      std::to_string(services_count) + " Services (NodePort and ClusterIP, one endpoint each; " +
      std::to_string(lines) +
      " lines for the install), preset 1.24; ours = make_iptables_proxier start() (render + "
      "iptables-restore --noflush fed on stdin), then one update_endpoints (a full rewrite); "
      "theirs = sh -c 'iptables-restore --noflush < FILE' of the same text in a fresh namespace; "
      "after each, the CPUs are let settle (settle_ms) while the kernel frees the dropped "
      "namespace's rules; CPU time = this thread + reaped children (ours), wait4 rusage of sh "
      "and its iptables-restore (theirs)";
  report
      .ratio(section, "rule sync / iptables-restore of the same text, install (10,000 Services)",
             "ours_install_ms", "restore_install_ms")
      .at_most(1.10);
  report
      .ratio(section, "rule sync / iptables-restore of the same text, rewrite (10,000 Services)",
             "ours_resync_ms", "restore_resync_ms")
      .at_most(1.10);
  report
      .ratio(section, "rule sync / iptables-restore, install, CPU time", "ours_install_cpu_ms",
             "restore_install_cpu_ms")
      .at_most(1.10);
  report
      .ratio(section, "rule sync / iptables-restore, rewrite, CPU time", "ours_resync_cpu_ms",
             "restore_resync_cpu_ms")
      .at_most(1.10);
  report.value(section, "rule sync, install of 10,000 Services (ms, not a ratio)",
               "ours_install_ms");
}

} // namespace backlog_lab::bench
