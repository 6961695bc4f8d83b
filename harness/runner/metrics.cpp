// The named metrics of a run (docs/metrics.md): flat names so expectations, sweeps and CI can
// address any number the run measured.
#include <sys/socket.h>

#include <algorithm>
#include <set>

#include "harness/runner/runner.hpp"

namespace backlog_lab::runner {
namespace {

bool within(const std::vector<std::pair<double, double>>& intervals, double t) {
  return std::any_of(intervals.begin(), intervals.end(),
                     [t](const auto& iv) { return t >= iv.first && t < iv.second; });
}

void add_census(expect::metric_map& m, const std::string& role, const observer::census& c) {
  for (uint8_t s = 1; s < observer::tcp_state_slots; ++s) {
    auto state = static_cast<observer::tcp_state>(s);
    m["census." + role + "." + std::string(observer::state_name(state))] = c.totals[state];
  }
  m["census." + role + ".sockets"] = c.socket_count;
}

// Un-accepted children whose Recv-Q is exactly what their client sent + 1 (the FIN).
struct recvq_match {
  double checked = 0;
  double matched = 0;
};

void add_listener(expect::metric_map& m, const std::string& role,
                  const observer::listener_summary& l, const recvq_match* match) {
  std::string p = "listener." + role + "." + std::to_string(l.local.port) + ".";
  m[p + "accept_queue"] = l.accept_queue;
  m[p + "backlog"] = l.backlog;
  m[p + "ipv4"] = l.local.address.family == AF_INET ? 1 : 0; // 0.0.0.0:N, not *:N / [::]:N
  m[p + "full"] = l.full ? 1 : 0;
  m[p + "drops"] = l.drops;
  m[p + "children_unaccepted"] = l.unaccepted();
  m[p + "close_wait_unaccepted"] = l.unaccepted_close_wait;
  m[p + "estab_unaccepted"] = l.unaccepted_established;
  m[p + "owned"] = l.owned;
  m[p + "close_wait_owned"] = 0;
  m[p + "unaccepted_bytes"] = static_cast<double>(l.unaccepted_bytes());
  m[p + "children_total"] = l.children.total();
  if (!l.queued.empty()) {
    uint32_t lo = UINT32_MAX, hi = 0;
    for (const auto& q : l.queued) {
      lo = std::min(lo, q.recv_q);
      hi = std::max(hi, q.recv_q);
    }
    m[p + "unaccepted_recvq_min"] = lo;
    m[p + "unaccepted_recvq_max"] = hi;
  }
  m[p + "peers"] = static_cast<double>(l.peers.size());
  if (match) {
    m[p + "recvq_is_request_plus_fin"] = match->matched;
    m[p + "recvq_checked"] = match->checked;
    if (match->checked > 0)
      m[p + "recvq_is_request_plus_fin_share"] = match->matched / match->checked;
  }
}

// For the node's listeners: match each un-accepted CLOSE-WAIT child with the client connection
// on its peer address:port (the last one to use that port) and compare Recv-Q with its bytes.
std::map<uint16_t, recvq_match> match_requests(const run_result& r) {
  std::map<std::pair<std::string, uint16_t>, uint32_t> sent;
  for (const auto& [name, res] : r.clients) {
    auto addrs = r.client_addresses.find(name);
    if (addrs == r.client_addresses.end()) continue;
    for (const auto& rec : res.records) {
      if (rec.local_port == 0 || rec.source_index >= addrs->second.size()) continue;
      sent[{addrs->second[rec.source_index], rec.local_port}] = rec.request_bytes;
    }
  }
  // Exec clients (a front proxy) log what they sent, not from which port: their connections
  // are matched by peer address and size, each logged request used once.
  std::map<std::string, std::multiset<uint32_t>> logged;
  for (const auto& [address, bytes] : r.exec_sent_bytes)
    logged[address].insert(bytes.begin(), bytes.end());
  std::map<uint16_t, recvq_match> out;
  auto node = r.census.find("node");
  if (node == r.census.end()) return out;
  std::set<uint16_t> listening;
  for (const auto& l : node->second.listeners)
    listening.insert(l.local.port);
  for (const auto& s : node->second.sockets) {
    if (s.state != observer::tcp_state::close_wait || s.inode != 0) continue;
    if (!listening.count(s.local.port)) continue;
    std::string peer = s.remote.address.to_string();
    if (peer.rfind("::ffff:", 0) == 0) peer = peer.substr(7);
    auto it = sent.find({peer, s.remote.port});
    auto& m = out[s.local.port];
    m.checked += 1;
    if (it != sent.end() && s.recv_q == it->second + 1) {
      m.matched += 1;
    } else if (auto l = logged.find(peer); l != logged.end() && s.recv_q > 0) {
      if (auto b = l->second.find(static_cast<uint32_t>(s.recv_q - 1)); b != l->second.end()) {
        l->second.erase(b);
        m.matched += 1;
      }
    }
  }
  return out;
}

} // namespace

expect::metric_map collect_metrics(const run_result& r) {
  expect::metric_map m;
  m["run.setup_ms"] = r.setup_ms;
  m["run.ms"] = r.run_ms;
  m["run.interrupted"] = r.interrupted ? 1 : 0;
  for (const auto& [role, values] : r.counters)
    for (const auto& [name, v] : values)
      m["counter." + role + "." + name] = static_cast<double>(v);

  for (const auto& [name, p] : r.programs) {
    std::string k = "program." + name + ".";
    m[k + "running"] = p.state == "running" || p.state == "frozen" ? 1 : 0;
    m[k + "starts"] = p.starts;
    m[k + "reloads"] = p.reloads;
    m[k + "errors"] = p.error.empty() ? 0 : 1;
    for (const auto& [key, value] : p.metrics)
      m[k + key] = value;
  }
  for (const auto& [address, bytes] : r.exec_sent_bytes)
    for (const auto& [name, addrs] : r.client_addresses)
      if (r.programs.count(name) && !addrs.empty() && addrs.front() == address)
        m["program." + name + ".sent_requests_logged"] = static_cast<double>(bytes.size());

  auto matches = match_requests(r);
  for (const auto& [role, c] : r.census) {
    add_census(m, role, c);
    for (const auto& l : c.listeners) {
      const recvq_match* match = nullptr;
      if (role == "node") {
        auto it = matches.find(l.local.port);
        static const recvq_match none{};
        match = it != matches.end() ? &it->second : &none;
      }
      add_listener(m, role, l, match);
    }
    if (role == "node") {
      double queued = 0, unaccepted = 0, nonempty = 0, full = 0;
      for (const auto& l : c.listeners) {
        queued += l.accept_queue;
        unaccepted += l.unaccepted();
        nonempty += l.accept_queue > 0;
        full += l.full;
      }
      m["node.listeners"] = static_cast<double>(c.listeners.size());
      m["node.accept_queue_total"] = queued;
      m["node.unaccepted_total"] = unaccepted;
      m["node.listeners_nonempty"] = nonempty;
      m["node.listeners_full"] = full;
    }
  }
  // Owned CLOSE-WAIT per listener port (accepted and never closed: the userspace-mode leak).
  for (const auto& [role, c] : r.census) {
    for (const auto& s : c.sockets)
      if (s.state == observer::tcp_state::close_wait && s.inode != 0) {
        std::string key =
            "listener." + role + "." + std::to_string(s.local.port) + ".close_wait_owned";
        if (m.count(key)) m[key] += 1;
      }
  }
  for (const auto& t : r.listeners) {
    std::string p = "listener." + t.role + "." + std::to_string(t.port) + ".";
    m[p + "accept_queue_peak"] = t.peak;
    m[p + "full_ms"] = t.full_ms;
    if (t.first_full_ms) m[p + "first_full_ms"] = *t.first_full_ms;
  }
  for (const auto& [name, res] : r.clients) {
    std::string p = "clients." + name + ".";
    for (const auto& [k, v] : clients::metrics(res))
      m[p + k] = v;
    // Connections that started while their NodePort's listener was full, and among those the
    // ones whose service had endpoints: does the port still serve with a full listener?
    uint16_t port = r.client_node_port.count(name) ? r.client_node_port.at(name) : 0;
    if (port == 0) continue;
    const listener_track* track = r.find_listener("node", port);
    if (!track) continue;
    const auto& svc = r.client_service.at(name);
    static const std::vector<std::pair<double, double>> no_intervals;
    auto ep = r.endpoint_intervals.find(svc);
    const auto& with_endpoints = ep == r.endpoint_intervals.end() ? no_intervals : ep->second;
    double full_total = 0, full_answered = 0, ep_total = 0, ep_answered = 0;
    for (const auto& rec : res.records) {
      if (rec.kind == clients::outcome::aborted) continue;
      double t = std::chrono::duration<double, std::milli>(rec.intended_start).count();
      if (!within(track->full_intervals, t)) continue;
      bool answered = rec.kind == clients::outcome::answered;
      full_total += 1;
      full_answered += answered;
      if (within(with_endpoints, t)) {
        ep_total += 1;
        ep_answered += answered;
      }
    }
    m[p + "while_full.total"] = full_total;
    m[p + "while_full.answered"] = full_answered;
    if (full_total > 0) m[p + "while_full.answered_share"] = full_answered / full_total;
    m[p + "while_full_with_endpoints.total"] = ep_total;
    m[p + "while_full_with_endpoints.answered"] = ep_answered;
    if (ep_total > 0) m[p + "while_full_with_endpoints.answered_share"] = ep_answered / ep_total;
  }
  for (const auto& [name, b] : r.backends) {
    std::string p = "backend." + name + ".";
    m[p + "accepted"] = static_cast<double>(b.accepted);
    m[p + "requests_served"] = static_cast<double>(b.requests_served);
    m[p + "bytes_in"] = static_cast<double>(b.bytes_in);
    m[p + "resets_sent"] = static_cast<double>(b.resets_sent);
    m[p + "session_failures"] = static_cast<double>(b.session_failures);
  }
  if (r.proxy) {
    m["proxy.accepted"] = static_cast<double>(r.proxy->accepted);
    m["proxy.dial_attempts"] = static_cast<double>(r.proxy->dial_attempts);
    m["proxy.dial_failures"] = static_cast<double>(r.proxy->dial_failures);
    m["proxy.dial_gave_up"] = static_cast<double>(r.proxy->dial_gave_up);
    m["proxy.listen_failures"] = static_cast<double>(r.proxy->listen_failures);
    m["proxy.rule_syncs"] = static_cast<double>(r.proxy->rule_syncs);
    m["proxy.rule_sync_failures"] = static_cast<double>(r.proxy->rule_sync_failures);
    // kube-proxy's own sync time: the window in which the rules are half old, half new.
    if (!r.proxy->rule_sync_ms.empty()) {
      const auto& ms = r.proxy->rule_sync_ms;
      m["proxy.rule_sync_ms.install"] = ms.front();
      m["proxy.rule_sync_ms.last"] = ms.back();
      m["proxy.rule_sync_ms.max"] = *std::max_element(ms.begin(), ms.end());
    }
  }
  for (const auto& [index, packets] : r.loss_dropped)
    m["loss." + std::to_string(index) + ".dropped"] = static_cast<double>(packets);
  return m;
}

} // namespace backlog_lab::runner
