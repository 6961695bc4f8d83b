// doctor's text and JSON views of a report.
#include <nlohmann/json.hpp>

#include "harness/doctor/doctor.hpp"
#include "harness/observer/json.hpp"
#include "harness/observer/tcp_state.hpp"

namespace backlog_lab::doctor {
namespace {

namespace obs = observer;
using nlohmann::json;

std::string owner_text(const obs::socket_holder& h) {
  std::string s = obs::format_holders({h});
  if (!h.cgroup.empty()) s += " cgroup " + h.cgroup;
  if (!h.ids.pod_uid.empty()) s += " pod " + h.ids.pod_uid;
  if (!h.ids.container_id.empty()) s += " container " + h.ids.container_id.substr(0, 12);
  return s;
}

json owner_json(const obs::socket_holder& h) {
  return json{
      {"pid", h.pid},
      {"comm", h.comm},
      {"fd", h.fd},
      {"cgroup", h.cgroup},
      {"pod_uid", h.ids.pod_uid.empty() ? json(nullptr) : json(h.ids.pod_uid)},
      {"container_id", h.ids.container_id.empty() ? json(nullptr) : json(h.ids.container_id)}};
}

void print_finding(std::ostream& out, const namespace_finding& ns, const listener_finding& f) {
  const auto& l = f.last;
  out << "LISTEN " << obs::format_endpoint(l.local, l.v6only) << "  netns " << ns.inode << " "
      << ns.name << "  ino:" << l.inode << '\n';
  out << "  verdict: " << verdict_name(f.v) << (is_trouble(f.v) ? "  (TROUBLE)" : "") << '\n';
  for (const auto& e : f.evidence)
    out << "    - " << e << '\n';
  out << "  accept queue: Recv-Q " << l.accept_queue << " / Send-Q (backlog) " << l.backlog
      << (l.full ? "  FULL (holds backlog + 1)" : "  not full") << '\n';
  out << "  still dropping: " << (f.new_drops ? "yes, " : "no, ") << f.new_drops << " in "
      << f.interval_s << " s (" << f.drops_per_second << "/s); sk_drops " << l.drops
      << " since it was opened\n";
  out << "  owner: ";
  if (f.owners.empty())
    out << "none found (no process holds inode " << l.inode
        << ", or /proc/PID/fd could not be read: run as root)\n";
  else
    for (std::size_t i = 0; i < f.owners.size(); ++i)
      out << (i ? "         " : "") << owner_text(f.owners[i]) << '\n';
  out << "  in the queue: " << l.unaccepted() << " un-accepted "
      << (l.unaccepted() == 1 ? "child" : "children") << " (inode 0): CLOSE-WAIT "
      << l.unaccepted_close_wait << " holding " << l.unaccepted_close_wait_bytes << " bytes, ESTAB "
      << l.unaccepted_established << " holding " << l.unaccepted_established_bytes
      << " bytes (Recv-Q: unread bytes, +1 for a FIN)\n";
  if (!l.queued.empty()) {
    out << "    by state and Recv-Q:";
    std::size_t shown = 0;
    for (const auto& q : l.queued) {
      if (shown++ == 8) {
        out << " ...";
        break;
      }
      out << ' ' << obs::state_name(q.state) << ' ' << q.recv_q << " x" << q.count << ';';
    }
    out << "\n    peers:";
    shown = 0;
    for (const auto& p : l.peers) {
      if (shown++ == 8) {
        out << " ... (" << l.peers.size() << " peers)";
        break;
      }
      out << ' ' << p.address.to_string() << " x" << p.count << " (" << p.bytes << " B);";
    }
    out << '\n';
  }
  out << "  accepted during the interval: ";
  if (f.accepted_any)
    out << "yes, " << f.accepted << " left the queue";
  else if (f.reset_in_queue)
    out << "nothing (" << f.stayed << " children still queued, " << f.reset_in_queue
        << " reset by their clients but still counted in Recv-Q)";
  else if (f.stayed)
    out << "nothing (the same " << f.stayed << " children were still queued)";
  else
    out << "nothing to tell (no child was queued at the first look)";
  out << "; " << f.arrived << " arrived\n";
  if (!f.took) return;
  if (!f.take_error.empty()) {
    out << "  taken: nothing: " << f.take_error << '\n';
    return;
  }
  std::size_t bytes = 0, closed = 0;
  for (const auto& c : f.taken) {
    bytes += c.bytes;
    closed += c.peer_closed ? 1 : 0;
  }
  out << "  taken from the queue and closed: " << f.taken.size() << " connections, " << bytes
      << " bytes, " << closed << " of them CLOSE-WAIT (the client had sent FIN)\n";
  constexpr std::size_t shown_connections = 5;
  for (std::size_t i = 0; i < f.taken.size(); ++i) {
    const auto& c = f.taken[i];
    if (i == shown_connections) {
      out << "    ... " << f.taken.size() - i << " more (--json lists every one)\n";
      break;
    }
    out << "    from " << obs::format_endpoint(c.peer, false) << ": " << c.bytes << " bytes"
        << (c.peer_closed ? " + FIN" : "") << '\n';
    if (c.head.empty()) continue;
    std::string shown = show_bytes(c.head);
    std::string line;
    for (char ch : shown + "\n") {
      if (ch == '\n') {
        out << "      | " << line << '\n';
        line.clear();
      } else {
        line += ch;
      }
    }
  }
}

} // namespace

void print_text(std::ostream& out, const report& r) {
  std::size_t listeners = 0, errors = 0;
  for (const auto& ns : r.namespaces) {
    listeners += ns.listeners;
    errors += ns.error.empty() ? 0 : 1;
  }
  out << "backlog-lab doctor (kernel " << r.kernel << "): " << r.namespaces.size()
      << (r.namespaces.size() == 1 ? " namespace, " : " namespaces, ") << listeners
      << " listeners, looked twice " << r.interval_s << " s apart\n";
  bool any = false;
  for (const auto& ns : r.namespaces) {
    for (const auto& f : ns.findings) {
      out << '\n';
      print_finding(out, ns, f);
      any = true;
    }
  }
  for (const auto& ns : r.namespaces)
    if (!ns.error.empty())
      out << "\nnetns " << ns.inode << " " << ns.name << ": " << ns.error << '\n';
  out << '\n';
  if (!any) out << "No listener had anything in its accept queue or dropped anything.\n";
  out << r.trouble() << (r.trouble() == 1 ? " listener" : " listeners") << " in trouble";
  if (errors) out << "; " << errors << " namespaces could not be read";
  out << '\n';
}

void print_json(std::ostream& out, const report& r) {
  json namespaces = json::array();
  for (const auto& ns : r.namespaces) {
    json listeners = json::array();
    for (const auto& f : ns.findings) {
      json owners = json::array();
      for (const auto& h : f.owners)
        owners.push_back(owner_json(h));
      listeners.push_back(json{
          {"listener", obs::to_json(f.last)},
          {"verdict", verdict_name(f.v)},
          {"trouble", is_trouble(f.v)},
          {"evidence", f.evidence},
          {"new_drops", f.new_drops},
          {"drops_per_second", f.drops_per_second},
          {"accepted_during_interval", f.accepted_any},
          {"children",
           {{"stayed", f.stayed},
            {"left", f.left},
            {"reset_in_queue", f.reset_in_queue},
            {"accepted", f.accepted},
            {"arrived", f.arrived}}},
          {"accept_queue_at_first_look", f.first.accept_queue},
          {"owners", std::move(owners)},
      });
      if (f.took) {
        json taken = json::array();
        for (const auto& c : f.taken)
          taken.push_back({{"peer", obs::format_endpoint(c.peer, false)},
                           {"bytes", c.bytes},
                           {"peer_closed", c.peer_closed},
                           {"shown", show_bytes(c.head)}});
        listeners.back()["taken"] = std::move(taken);
        if (!f.take_error.empty()) listeners.back()["take_error"] = f.take_error;
      }
    }
    json j{{"name", ns.name},
           {"inode", ns.inode},
           {"pid", ns.pid ? json(ns.pid) : json(nullptr)},
           {"comm", ns.comm},
           {"listeners_seen", ns.listeners},
           {"listeners", std::move(listeners)}};
    if (!ns.error.empty()) j["error"] = ns.error;
    namespaces.push_back(std::move(j));
  }
  json j{{"format", json_format},
         {"kernel", r.kernel},
         {"interval_s", r.interval_s},
         {"trouble", r.trouble()},
         {"namespaces", std::move(namespaces)}};
  out << j.dump(2) << '\n';
}

} // namespace backlog_lab::doctor
