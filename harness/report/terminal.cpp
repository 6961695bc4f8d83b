#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

#include "harness/report/report.hpp"

namespace backlog_lab::report {
namespace {

std::string fixed(double v, int digits = 0) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

std::string ms_text(double ms) {
  return ms >= 1000 ? fixed(ms / 1000, 2) + "s" : fixed(ms, ms < 10 ? 1 : 0) + "ms";
}

std::string ms_text(std::chrono::nanoseconds ns) {
  return ms_text(std::chrono::duration<double, std::milli>(ns).count());
}

std::string number(double v) {
  return std::fabs(v - std::round(v)) < 1e-9 ? fixed(v, 0) : fixed(v, 3);
}

void write_listeners(std::ostream& out, const runner::run_result& r) {
  auto it = r.census.find("node");
  if (it == r.census.end()) return;
  out << "\nNode listeners (as `ss -ltn` shows them; peak and time full from the sampler)\n";
  out << "  State  Recv-Q Send-Q Local Address:Port          peak  full for\n";
  for (const auto& l : it->second.listeners) {
    const auto* t = r.find_listener("node", l.local.port);
    out << "  LISTEN " << std::left << std::setw(6) << l.accept_queue << " " << std::setw(6)
        << l.backlog << " " << std::setw(27) << observer::format_endpoint(l.local, l.v6only)
        << std::right << std::setw(5) << (t ? t->peak : l.accept_queue) << "  " << std::setw(7)
        << (t ? fixed(t->full_ms / 1000, 1) + "s" : "-") << (l.full ? "  FULL" : "") << "\n";
  }
  bool any = false;
  for (const auto& l : it->second.listeners) {
    if (l.unaccepted() == 0 && l.owned == 0) continue;
    if (!any) out << "\nCLOSE-WAIT and queued connections per port (node)\n";
    any = true;
    out << "  :" << l.local.port << "  " << l.unaccepted_close_wait
        << " CLOSE-WAIT un-accepted (inode 0), " << l.unaccepted_established
        << " ESTAB un-accepted, " << l.owned << " owned by a process";
    if (!l.queued.empty()) {
      uint32_t lo = UINT32_MAX, hi = 0;
      for (const auto& q : l.queued)
        lo = std::min(lo, q.recv_q), hi = std::max(hi, q.recv_q);
      out << "; Recv-Q " << lo << (hi != lo ? ".." + std::to_string(hi) : "") << " bytes";
    }
    out << "\n";
    size_t shown = 0;
    for (const auto& p : l.peers) {
      if (shown++ == 4) {
        out << "      ... " << (l.peers.size() - 4) << " more peers\n";
        break;
      }
      out << "      from " << p.address.to_string() << ": " << p.count << " connections, "
          << p.bytes << " bytes unread\n";
    }
  }
}

void write_counters(std::ostream& out, const runner::run_result& r) {
  for (const char* role : {"node", "clients"}) {
    auto it = r.counters.find(role);
    if (it == r.counters.end()) continue;
    out << "\nCounters in the " << role << " namespace over the run (`netstat -st` words)\n";
    for (const auto& name : reported_counters()) {
      auto v = it->second.find(name);
      if (v == it->second.end() || v->second == 0) continue;
      out << "  " << std::setw(9) << v->second << " " << std::left << std::setw(58)
          << netstat_words(name) << std::right << name << "\n";
    }
  }
}

void write_clients(std::ostream& out, const runner::run_result& r) {
  if (r.clients.empty()) return;
  out << "\nClients (latency from each connection's intended start)\n";
  out << "  group           started answered syn_unans unanswered refused  reset  other"
         "   connect p50/p99/max\n";
  for (const auto& [name, c] : r.clients) {
    using clients::outcome;
    auto s = c.connect_latency.summary();
    out << "  " << std::left << std::setw(15) << name << std::right << std::setw(8) << c.started
        << std::setw(9) << c.counts[outcome::answered] << std::setw(10)
        << c.counts[outcome::syn_unanswered] << std::setw(11) << c.counts[outcome::unanswered]
        << std::setw(8) << c.counts[outcome::refused] << std::setw(7) << c.counts[outcome::reset]
        << std::setw(7) << (c.counts[outcome::other] + c.counts[outcome::closed_early]) << "   "
        << (s.count ? ms_text(s.p50) + "/" + ms_text(s.p99) + "/" + ms_text(s.max) : "-") << "\n";
  }
  for (const auto& name : r.external_clients)
    out << "  " << name << " dialled outside the lab from the host's namespace: client side only\n";
  // Where the SYN retransmissions show: connect latency modes beyond 500 ms.
  for (const auto& [name, c] : r.clients) {
    std::string modes;
    for (const auto& b : c.connect_latency.buckets()) {
      if (b.lower < std::chrono::milliseconds(500) || b.count == 0) continue;
      if (b.upper == std::chrono::nanoseconds::max()) continue;
      modes += " " + ms_text(b.lower) + "(" + std::to_string(b.count) + ")";
    }
    if (!modes.empty()) out << "  " << name << " connects after SYN retransmits:" << modes << "\n";
  }
}

} // namespace

namespace {

// The counters the reports show, in this order, with their `netstat -st` wording.
const std::vector<std::pair<std::string, std::string>>& counter_words() {
  static const std::vector<std::pair<std::string, std::string>> words = {
      {"TcpExtListenOverflows", "times the listen queue of a socket overflowed"},
      {"TcpExtListenDrops", "SYNs to LISTEN sockets dropped"},
      {"TcpExtTCPSynRetrans", "SYN and SYN-ACK retransmissions (TCPSynRetrans)"},
      {"TcpExtTCPReqQFullDrop", "SYNs dropped because the SYN queue was full"},
      {"TcpExtTCPReqQFullDoCookies", "times the SYN queue was full and a cookie was wanted"},
      {"TcpExtSyncookiesSent", "SYN cookies sent"},
      {"TcpExtEmbryonicRsts", "resets received for embryonic SYN_RECV sockets"},
      {"TcpExtTCPAbortOnData", "connections reset due to unexpected data"},
      {"TcpPassiveOpens", "passive connection openings"},
      {"TcpActiveOpens", "active connections openings"},
      {"TcpOutRsts", "resets sent"},
      {"TcpAttemptFails", "failed connection attempts"},
  };
  return words;
}

} // namespace

std::string netstat_words(const std::string& counter) {
  for (const auto& [name, words] : counter_words())
    if (name == counter) return words;
  return {};
}

std::vector<std::string> reported_counters() {
  std::vector<std::string> out;
  for (const auto& entry : counter_words())
    out.push_back(entry.first);
  return out;
}

void write_terminal(std::ostream& out, const runner::run_result& r, const terminal_options& o) {
  size_t passed = std::count_if(r.expectations.begin(), r.expectations.end(),
                                [](const auto& e) { return e.passed; });
  if (!o.quiet) {
    out << "backlog-lab run: " << r.scenario.name << " (" << r.scenario.source << ")\n";
    out << "kernel " << r.kernel << ", seed " << r.seed << ", lab built in " << fixed(r.setup_ms)
        << " ms, ran " << fixed(r.run_ms / 1000, 1) << " s"
        << (r.interrupted ? ", INTERRUPTED" : "") << "\n";
    if (!r.wall.empty()) {
      // Which phases bound the run (issue: time to verdict): the timeline is the scenario's own.
      double total = 0;
      for (const auto& p : r.wall)
        total += p.ms;
      out << "wall time " << ms_text(total) << ":";
      for (const auto& p : r.wall)
        out << " " << p.name << " " << ms_text(p.ms);
      if (r.proxy && !r.proxy->rule_sync_ms.empty()) {
        out << " (iptables-restore";
        for (double ms : r.proxy->rule_sync_ms)
          out << " " << ms_text(ms);
        out << ")";
      }
      out << "\n";
    }
    // kube-proxy logged a failed restore and went on; so does the run, and it says so here.
    if (r.proxy && r.proxy->rule_sync_failures > 0) {
      out << "iptables-restore failed in " << r.proxy->rule_sync_failures
          << " sync(s); the proxier reverted the ports it had opened and went on\n";
      for (const auto& e : r.proxy->sync_errors)
        out << "  " << e << "\n";
    }
    if (!r.events.empty()) {
      out << "\nTimeline\n";
      for (const auto& e : r.events)
        out << "  t=" << std::setw(6) << fixed(e.at_ms) << "ms  " << e.action << " " << e.target
            << (e.note.empty() ? "" : "  " + e.note) << "\n";
    }
    write_listeners(out, r);
    write_counters(out, r);
    write_clients(out, r);
    auto f = findings(r);
    if (!f.empty()) {
      out << "\nWhat the kernel saw\n";
      for (const auto& p : f)
        out << "  " << p << "\n";
    }
    if (o.show_rules && !r.rules_listing.empty())
      out << "\nNAT rules on the node (iptables -t nat -S)\n" << r.rules_listing;
    out << "\nExpectations\n";
  }
  for (const auto& e : r.expectations) {
    if (o.quiet && e.passed) continue;
    out << "  " << (e.passed ? "PASS" : "FAIL") << "  " << e.spec.metric << " "
        << scenario::name_of(e.spec.op) << " "
        << (e.spec.value ? number(*e.spec.value) : *e.spec.other) << "   measured "
        << (e.measured ? number(*e.measured) : "-");
    if (e.spec.other && e.expected) out << " vs " << number(*e.expected);
    out << "\n";
    if (!e.note.empty())
      out << "        " << e.note << "\n";
    else if (!e.spec.description.empty() && !o.quiet)
      out << "        " << e.spec.description << "\n";
  }
  if (!r.programs.empty()) {
    out << "\nPrograms\n";
    for (const auto& [name, p] : r.programs) {
      out << "  " << p.role << " " << name << ": " << p.state << ", started " << p.starts
          << (p.reloads ? ", reloaded " + std::to_string(p.reloads) : std::string()) << "  ("
          << p.command << ")\n";
      if (!p.error.empty()) out << "    error: " << p.error << "\n";
      // Its last words, when they may explain a failure.
      if (!r.passed() && !p.stderr_tail.empty()) {
        std::istringstream lines(p.stderr_tail);
        for (std::string line; std::getline(lines, line);)
          out << "    | " << line << "\n";
      }
    }
  }
  out << (r.passed() ? "PASS" : "FAIL") << ": " << r.scenario.name << ", " << passed << "/"
      << r.expectations.size() << " expectations held" << (r.interrupted ? " (interrupted)" : "")
      << "\n";
}

} // namespace backlog_lab::report
