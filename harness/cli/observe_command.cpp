#include "harness/cli/observe_command.hpp"

#include <sys/utsname.h>
#include <unistd.h>

#include <iostream>

#include "harness/cli/netns_options.hpp"
#include "harness/cli/signals.hpp"
#include "harness/core/error.hpp"
#include "harness/demo/accept_queue_demo.hpp"
#include "harness/lab/netns.hpp"
#include "harness/observer/census.hpp"
#include "harness/observer/counters.hpp"
#include "harness/observer/json.hpp"
#include "harness/observer/sampler.hpp"
#include "harness/observer/text.hpp"

namespace backlog_lab::cli {
namespace {

namespace obs = observer;
// docs/observe-json.md: bumped when a key changes meaning or goes away (additions do not).
constexpr int observe_json_format_version = 1;
using nlohmann::json;

std::string kernel_release() {
  utsname u{};
  return ::uname(&u) == 0 ? u.release : "unknown";
}

// The counters --counters prints in text form: the Tcp/TcpExt ones that moved, plus the
// accept-queue ones even when they are zero (a zero there is an answer too).
obs::counter_map tcp_counters_to_show(const obs::counter_map& all) {
  obs::counter_map shown;
  const auto always = obs::default_sampled_counters();
  for (const auto& [name, value] : all) {
    // Constants, not counters (nstat leaves them out too).
    if (name == "TcpRtoAlgorithm" || name == "TcpRtoMin" || name == "TcpRtoMax" ||
        name == "TcpMaxConn")
      continue;
    bool tcp = name.rfind("Tcp", 0) == 0;
    bool key = std::find(always.begin(), always.end(), name) != always.end();
    if (key || (tcp && value != 0)) shown.emplace(name, value);
  }
  return shown;
}

// `observe --json` of a namespace, streamed: a first walk of the namespace gives the listeners
// and totals, a second one the sockets as they are written (sorted keys put "listeners" and
// "socket_count" before "sockets"), so memory does not grow with the socket count.
void write_observe_json(const observe_options& o, const std::string& source, const lab::netns* ns,
                        obs::census_reader& reader, const obs::census& summary,
                        const std::optional<obs::counter_snapshot>& snap, std::ostream& out) {
  // Checked before anything is written: dump() would have refused it at the end.
  if (!obs::json_writer::valid_utf8(source))
    throw input_error("--netns " + printable(source), "a path in UTF-8 (JSON strings are UTF-8)");
  std::optional<std::uint64_t> inode;
  try {
    inode = ns ? ns->inode() : lab::netns::current().inode();
  } catch (const lab_error&) {
  }
  // stdout itself: straight to the fd in 64 KiB writes (EPIPE is then ours to see).
  const bool to_stdout = &out == &std::cout;
  if (to_stdout) std::cout.flush();
  std::optional<obs::json_writer> stream;
  if (to_stdout)
    stream.emplace(STDOUT_FILENO);
  else
    stream.emplace(out);
  obs::json_writer& w = *stream;
  w.begin_object();
  w.key("census");
  if (o.listeners_only)
    obs::write_json(w, summary, false);
  else
    obs::write_json(w, summary, reader);
  if (snap) {
    w.key("counters");
    obs::write_json(w, snap->values);
  }
  w.member("format_version", observe_json_format_version);
  w.member("kernel", kernel_release());
  w.key("namespace");
  w.begin_object();
  w.key("inode");
  if (inode)
    w.value(*inode);
  else
    w.null();
  w.member("source", source);
  w.end_object();
  w.end_object();
  w.text("\n");
  w.finish();
}

int observe_namespace(const observe_options& o, std::ostream& out) {
  lab::netns target;
  std::string source = "current";
  if (o.pid) {
    target = lab::netns::of_pid(*o.pid);
    source = "pid " + std::to_string(*o.pid);
  } else if (!o.netns_path.empty()) {
    target = lab::netns::open(o.netns_path);
    source = o.netns_path;
  }
  const lab::netns* ns = target.valid() ? &target : nullptr;
  obs::census_reader reader(ns);
  std::optional<obs::counter_reader> counters;
  if (o.counters) counters.emplace(ns);
  obs::census c = reader.read(obs::census_options{.summary_only = o.listeners_only || o.json});
  std::optional<obs::counter_snapshot> snap;
  if (counters) snap = counters->read();

  if (o.json) {
    write_observe_json(o, source, ns, reader, c, snap, out);
    return static_cast<int>(exit_code::ok);
  }
  if (!o.listeners_only) {
    obs::print_sockets(out, c.sockets, o.extended);
    out << '\n';
  }
  out << "Namespace " << source << ": " << c.socket_count << " TCP sockets (";
  obs::print_totals(out, c.totals);
  out << "); un-accepted CLOSE-WAIT: " << c.unaccepted_close_wait << "\n\n";
  obs::print_listeners(out, c);
  if (snap) {
    out << "\nCounters (absolute, since the namespace was created):\n";
    obs::print_counters(out, tcp_counters_to_show(snap->values), false);
  }
  return static_cast<int>(exit_code::ok);
}

int observe_demo(const observe_options& o, std::ostream& out) {
  lab::ensure_privileges();
  demo::demo_options d;
  scoped_stop_signals signals; // SIGINT/SIGTERM: end early, namespace gone, exit 130 as run does
  d.stop = &signals.requested();
  const demo::demo_result r = demo::run_accept_queue_demo(d);
  if (signals.requested()) {
    std::cerr << "backlog-lab observe --demo: interrupted; the demo's namespace is gone\n";
    return static_cast<int>(exit_code::interrupted);
  }
  const auto checks = demo::check_demo(r);
  bool all_ok = true;
  for (const auto& c : checks)
    all_ok = all_ok && c.ok;

  // The listener and its children only: the clients' own sockets are in the same namespace.
  std::vector<obs::tcp_socket> mine;
  for (const auto& s : r.final_census.sockets)
    if (s.local.port == r.listen_endpoint.port) mine.push_back(s);

  if (o.json) {
    json jchecks = json::array();
    for (const auto& c : checks)
      jchecks.push_back({{"expectation", c.expectation}, {"measured", c.measured}, {"ok", c.ok}});
    json j{{"format_version", observe_json_format_version},
           {"kernel", r.kernel},
           {"demo",
            {{"connections", d.connections},
             {"backlog", d.backlog},
             {"somaxconn", d.somaxconn},
             {"request_bytes", d.request_bytes},
             {"connect_window_ms", d.connect_window.count()},
             {"connected", r.connected},
             {"requests_sent", r.requests_sent},
             {"gave_up", r.gave_up},
             {"elapsed_ms", r.elapsed_ms},
             {"listener", obs::to_json(r.listener)},
             {"counters", obs::to_json(r.counters)},
             {"checks", std::move(jchecks)},
             {"explanation", demo::explain(r)}}},
           {"census", obs::to_json(r.final_census, true)}};
    out << j.dump(2) << '\n';
    return static_cast<int>(all_ok ? exit_code::ok : exit_code::expectations_failed);
  }

  out << "backlog-lab observe --demo (kernel " << r.kernel << ")\n"
      << "A fresh namespace with net.core.somaxconn=" << d.somaxconn << "; a listener on "
      << obs::format_endpoint(r.listen_endpoint, false) << " with listen(" << d.backlog
      << ") that never calls accept(); " << d.connections
      << " clients connect at once, and those that connect send a " << d.request_bytes
      << "-byte HTTP request and close.\n"
      << "Clients: " << r.connected << " connected and sent their request; " << r.gave_up
      << " were still waiting for an answer to their SYN after " << d.connect_window.count()
      << " ms.\n\n";

  constexpr std::size_t shown_children = 5;
  std::vector<obs::tcp_socket> head;
  std::size_t children = 0;
  for (const auto& s : mine) {
    if (s.state == obs::tcp_state::listen) {
      head.insert(head.begin(), s);
    } else if (children++ < shown_children) {
      head.push_back(s);
    }
  }
  out << "The listener and its first " << std::min(children, shown_children) << " of " << children
      << " children, as ss -tane shows them:\n";
  obs::print_sockets(out, head, true);
  if (children > shown_children) out << "... " << children - shown_children << " more\n";
  out << '\n';
  obs::census only;
  for (const auto& l : r.final_census.listeners)
    if (l.local == r.listen_endpoint) only.listeners.push_back(l);
  obs::print_listeners(out, only);

  out << "\nCounters of the namespace over the run (deltas):\n";
  obs::counter_map key;
  for (const char* name :
       {"TcpExtListenOverflows", "TcpExtListenDrops", "TcpExtTCPSynRetrans", "TcpPassiveOpens",
        "TcpActiveOpens", "TcpOutRsts", "TcpExtTCPReqQFullDrop", "TcpExtSyncookiesSent"}) {
    auto it = r.counters.find(name);
    key[name] = it == r.counters.end() ? 0 : it->second;
  }
  obs::print_counters(out, key, false);

  out << "\nChecks:\n";
  for (const auto& c : checks)
    out << "  [" << (c.ok ? "ok" : "FAILED") << "] " << c.expectation << ": " << c.measured << '\n';
  out << '\n' << demo::explain(r) << "\n\n";
  out << "Took " << static_cast<long>(r.elapsed_ms)
      << " ms; the namespace and every socket in it are gone.\n";
  return static_cast<int>(all_ok ? exit_code::ok : exit_code::expectations_failed);
}

} // namespace

void add_observe_options(CLI::App& sub, observe_options& o) {
  auto target = add_netns_options(sub, o.pid, o.netns_path, "Observe");
  sub.add_flag("--json", o.json, "Print JSON (docs/observe-json.md) instead of text");
  sub.add_flag("-e,--extended", o.extended, "Add uid, inode and shutdown columns (ss -e)");
  sub.add_flag("--counters", o.counters, "Add the namespace's Tcp/TcpExt counters");
  sub.add_flag("--listeners", o.listeners_only,
               "Only the per-listener summary, not every socket (faster on big namespaces)");
  auto* demo = sub.add_flag("--demo", o.demo,
                            "Build a lab namespace, fill a listener's accept queue and show "
                            "what the kernel reports, with an explanation");
  demo->excludes(target.pid)->excludes(target.path);
}

void setup_observe(CLI::App& app, std::function<int()>& action) {
  auto opts = std::make_shared<observe_options>();
  CLI::App* sub = app.add_subcommand(
      "observe", "Print the TCP socket census of a network namespace (like ss -tan), every "
                 "listener's accept queue and its un-accepted children; --demo shows a full one");
  add_observe_options(*sub, *opts);
  sub->callback([opts, &action] { action = [opts] { return run_observe(*opts); }; });
}

int run_observe(const observe_options& o, std::ostream& out) {
  return o.demo ? observe_demo(o, out) : observe_namespace(o, out);
}

int run_observe(const observe_options& o) {
  return run_observe(o, std::cout);
}

} // namespace backlog_lab::cli
