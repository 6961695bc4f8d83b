// Answers to the incident report's three open questions, written from a run's own numbers.
#include <algorithm>
#include <sstream>

#include "harness/report/report.hpp"

namespace backlog_lab::report {
namespace {

int64_t counter(const runner::run_result& r, const std::string& role, const std::string& name) {
  auto it = r.counters.find(role);
  if (it == r.counters.end()) return 0;
  auto v = it->second.find(name);
  return v == it->second.end() ? 0 : v->second;
}

double metric(const runner::run_result& r, const std::string& name, double fallback = -1) {
  auto it = r.metrics.find(name);
  return it == r.metrics.end() ? fallback : it->second;
}

} // namespace

std::vector<std::string> findings(const runner::run_result& r) {
  std::vector<std::string> out;
  auto node = r.census.find("node");
  if (node == r.census.end()) return out;
  std::vector<const observer::listener_summary*> full;
  for (const auto& l : node->second.listeners) {
    const runner::listener_track* t = r.find_listener("node", l.local.port);
    if (l.full || (t && t->peak > t->backlog)) full.push_back(&l);
  }
  if (full.empty()) return out;

  // 1. What is in the full queue.
  for (const auto* l : full) {
    std::ostringstream s;
    std::string port = std::to_string(l->local.port);
    const runner::listener_track* t = r.find_listener("node", l->local.port);
    if (l->accept_queue == 0 && t) {
      s << "What was in the queue of :" << port << ": it filled to " << t->peak
        << " (first at t=" << static_cast<long>(t->first_full_ms.value_or(0)) << " ms, full for "
        << static_cast<long>(t->full_ms)
        << " ms) with connections the kernel had completed and "
           "no process had accepted yet, then drained when the proxy's accept loop moved again.";
      out.push_back(s.str());
      continue;
    }
    s << "What is in the queue of :" << port << ": " << l->accept_queue
      << " connections no process has accepted (inode 0): " << l->unaccepted_close_wait
      << " in CLOSE-WAIT (their client sent its request, gave up and sent FIN) and "
      << l->unaccepted_established << " in ESTAB, holding " << l->unaccepted_bytes()
      << " unread bytes";
    if (!l->queued.empty()) {
      uint32_t lo = UINT32_MAX, hi = 0;
      for (const auto& q : l->queued)
        lo = std::min(lo, q.recv_q), hi = std::max(hi, q.recv_q);
      s << " (Recv-Q " << lo << (hi != lo ? ".." + std::to_string(hi) : "") << ")";
    }
    s << ".";
    double checked = metric(r, "listener.node." + port + ".recvq_checked", 0);
    double matched = metric(r, "listener.node." + port + ".recvq_is_request_plus_fin", 0);
    if (checked > 0)
      s << " For " << matched << " of " << checked
        << " CLOSE-WAIT children Recv-Q is exactly the bytes their client sent + 1: the FIN takes "
           "one "
           "sequence number and stays unread with the data.";
    if (!l->peers.empty()) {
      s << " Peers:";
      size_t n = 0;
      for (const auto& p : l->peers) {
        if (n++ == 3) break;
        s << " " << p.address.to_string() << " (" << p.count << ")";
      }
      s << ".";
    }
    s << " A listener's queue is told apart from accepted connections by this: state ESTAB or "
         "CLOSE-WAIT, inode 0, on the listener's port.";
    out.push_back(s.str());
  }

  // 2. What it does to traffic.
  {
    std::ostringstream s;
    s << "What it does to traffic: once a queue is full the kernel drops every SYN to that "
         "listener without a reply: TcpExtListenOverflows "
      << counter(r, "node", "TcpExtListenOverflows") << ", TcpExtListenDrops "
      << counter(r, "node", "TcpExtListenDrops") << " on the node; the clients retransmitted SYNs "
      << counter(r, "clients", "TcpExtTCPSynRetrans") << " times (TcpExtTCPSynRetrans).";
    for (const auto& [name, c] : r.clients) {
      using clients::outcome;
      s << " " << name << ": " << c.counts[outcome::answered] << " answered, "
        << c.counts[outcome::syn_unanswered] << " never got a SYN-ACK, "
        << c.counts[outcome::unanswered] << " connected but unanswered, "
        << c.counts[outcome::refused] << " refused, " << c.counts[outcome::reset] << " reset.";
      double total = metric(r, "clients." + name + ".while_full_with_endpoints.total", 0);
      double answered = metric(r, "clients." + name + ".while_full_with_endpoints.answered", 0);
      bool dnat = r.scenario.proxy && r.scenario.proxy->mode == scenario::proxy_mode::iptables;
      if (total > 0 && dnat)
        s << " Of its " << total
          << " connections started while its NodePort listener was full "
             "but the Service had endpoints, "
          << answered
          << " were answered: the DNAT rule in PREROUTING sends them to a pod before the socket "
             "lookup, so the port keeps serving although its listener is full.";
      else if (total > 0)
        s << " Of its " << total << " connections started while the proxy's listener was full, "
          << answered << " were answered: the proxy itself must accept them.";
    }
    out.push_back(s.str());
  }

  // 3. Why 129.
  {
    const auto* l = full.front();
    std::string somaxconn = "its value";
    auto sys = r.scenario.sysctls.find("node");
    if (sys != r.scenario.sysctls.end()) {
      auto v = sys->second.find("net.core.somaxconn");
      if (v != sys->second.end()) somaxconn = v->second;
    }
    std::ostringstream s;
    s << "Why " << l->backlog + 1 << ": the listener's backlog (Send-Q) is " << l->backlog
      << ", the listen() backlog capped by net.core.somaxconn (" << somaxconn
      << " in the node's namespace); the kernel refuses a new connection only when the queue "
         "length is greater than the backlog (sk_acceptq_is_full compares with >), so a queue "
         "holds backlog + 1 = "
      << l->backlog + 1 << ".";
    if (r.scenario.proxy && r.scenario.proxy->mode == scenario::proxy_mode::iptables)
      s << " Nothing ever accepts from a held NodePort socket, so its CLOSE-WAIT children stay "
           "until the listener is closed, and their number per port can never exceed "
        << l->backlog + 1 << ".";
    out.push_back(s.str());
  }
  return out;
}

} // namespace backlog_lab::report
