#include "harness/doctor/doctor.hpp"

#include <sys/utsname.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <set>
#include <thread>
#include <tuple>
#include <unordered_map>

#include "harness/core/error.hpp"
#include "harness/lab/netns.hpp"
#include "harness/observer/namespaces.hpp"

namespace backlog_lab::doctor {
namespace {

namespace obs = observer;

std::string kernel_release() {
  utsname u{};
  return ::uname(&u) == 0 ? u.release : "unknown";
}

std::string fixed(double v, int digits = 1) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string plural(std::uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// A child's identity across two looks: its local and peer address:port.
using child_key = std::tuple<obs::endpoint, obs::endpoint>;

child_key key_of(const obs::tcp_socket& s) {
  return {s.local, s.remote};
}

// A namespace being examined: its reader stays open between the two looks.
struct examined {
  namespace_finding meta;
  lab::netns ns; // invalid: the current namespace
  std::optional<obs::census_reader> reader;
  obs::census first, last;
};

constexpr obs::census_options look_options{.summary_only = true, .list_unaccepted = true};

void look(examined& e, obs::census& into) {
  if (!e.meta.error.empty()) return;
  try {
    e.reader->read(into, look_options);
  } catch (const std::exception& ex) {
    e.meta.error = std::string("could not read its sockets: ") + ex.what();
  }
}

} // namespace

const char* verdict_name(verdict v) noexcept {
  switch (v) {
  case verdict::healthy:
    return "healthy";
  case verdict::burst_drained:
    return "burst-drained";
  case verdict::accepts_slower_than_arrivals:
    return "accepts-slower-than-arrivals";
  case verdict::never_accepts:
    return "never-accepts";
  }
  return "?";
}

std::size_t report::trouble() const {
  std::size_t n = 0;
  for (const auto& ns : namespaces)
    for (const auto& f : ns.findings)
      n += is_trouble(f.v) ? 1 : 0;
  return n;
}

listener_finding compare(const obs::listener_summary* first, const obs::listener_summary& last,
                         double interval_s) {
  listener_finding f;
  if (first) f.first = *first;
  f.last = last;
  f.interval_s = interval_s;
  if (first)
    f.new_drops = last.drops >= first->drops ? last.drops - first->drops : last.drops;
  else
    f.new_drops = last.drops; // opened during the interval
  f.drops_per_second = interval_s > 0 ? f.new_drops / interval_s : 0;

  std::set<child_key> before;
  if (first)
    for (const auto& s : first->unaccepted_sockets)
      before.insert(key_of(s));
  for (const auto& s : last.unaccepted_sockets)
    f.stayed += before.count(key_of(s)) ? 1 : 0;
  const auto q0 = static_cast<std::uint32_t>(before.size());
  const auto q1 = static_cast<std::uint32_t>(last.unaccepted_sockets.size());
  f.left = q0 - f.stayed;
  f.arrived = q1 - f.stayed;
  // A queued child whose client resets it (e.g. a new SYN from a reused port draws a challenge
  // ACK, the client answers RST) goes to CLOSE and out of sock_diag's tables, yet stays in the
  // accept queue: Recv-Q keeps counting it. Children that vanished without Recv-Q falling by as
  // much were not accepted.
  const std::uint32_t hidden0 = first && first->accept_queue > q0 ? first->accept_queue - q0 : 0;
  const std::uint32_t hidden1 = last.accept_queue > q1 ? last.accept_queue - q1 : 0;
  f.reset_in_queue = std::min(f.left, hidden1 > hidden0 ? hidden1 - hidden0 : 0u);
  f.accepted = f.left - f.reset_in_queue;
  f.accepted_any = f.accepted > 0;

  const std::string secs = fixed(interval_s) + " s";
  auto& ev = f.evidence;
  std::string drops = plural(f.new_drops, "SYN or ACK", "SYNs or ACKs") + " dropped in " + secs +
                      " (" + fixed(f.drops_per_second) + "/s; sk_drops " +
                      std::to_string(last.drops) + " since it was opened)";
  std::string full = "the queue is full: Recv-Q " + std::to_string(last.accept_queue) +
                     " = backlog " + std::to_string(last.backlog) +
                     " + 1, so every new SYN is dropped and the client retransmits it";
  if (q0 > 0 && f.accepted == 0) {
    f.v = verdict::never_accepts;
    ev.push_back(f.reset_in_queue == 0
                     ? "all " + plural(q0, "child", "children") +
                           " queued at the first look were still queued " + secs +
                           " later: nothing was accepted"
                     : "nothing was accepted in " + secs + ": Recv-Q did not fall for the " +
                           std::to_string(f.left) + " of " + std::to_string(q0) +
                           " children that left the socket list");
    if (last.unaccepted_close_wait > 0)
      ev.push_back(plural(last.unaccepted_close_wait, "child is", "children are") +
                   " in CLOSE-WAIT: the client sent its bytes and a FIN and gave up; it stays "
                   "queued until the owner accepts it or closes the listener");
    if (last.full) ev.push_back(full);
    if (f.new_drops > 0) ev.push_back(drops);
  } else if (f.accepted > 0 && (f.new_drops > 0 || last.full || q1 > q0)) {
    f.v = verdict::accepts_slower_than_arrivals;
    ev.push_back(plural(f.accepted, "child was", "children were") + " accepted in " + secs + ", " +
                 plural(f.arrived, "arrived", "arrived") + "; the queue went from " +
                 std::to_string(q0) + " to " + std::to_string(q1));
    if (last.full) ev.push_back(full);
    if (f.new_drops > 0) ev.push_back(drops);
  } else if (f.accepted == 0 && f.new_drops > 0) {
    f.v = verdict::accepts_slower_than_arrivals;
    ev.push_back(drops + ": its queues overflowed between or during the looks");
    if (last.full) ev.push_back(full);
  } else if (f.accepted > 0) {
    f.v = verdict::burst_drained;
    ev.push_back(plural(f.accepted, "child was", "children were") + " accepted in " + secs +
                 "; the queue went from " + std::to_string(q0) + " to " + std::to_string(q1) +
                 " with no new drops");
  } else {
    f.v = verdict::healthy;
    if (q1 > 0)
      ev.push_back(plural(q1, "child", "children") +
                   " arrived during the interval and wait; none was queued at the first look, "
                   "so nothing says yet that it does not accept");
    else
      ev.push_back("nothing queued and nothing dropped in " + secs);
  }
  if (f.reset_in_queue > 0)
    ev.push_back(plural(f.reset_in_queue, "child", "children") +
                 " vanished from the socket list while Recv-Q did not fall: reset by their "
                 "clients while queued (state CLOSE), still in the queue until accepted");
  if (last.accept_queue > 0 && q1 == 0)
    ev.push_back(
        "Recv-Q " + std::to_string(last.accept_queue) +
        " but no child with inode 0 on its address: the queued children carry an inode "
        "(a kernel with 5d6b58c932ec but not 87ebb628a5ac, docs/reference/kernel.md section 3)");
  return f;
}

report examine(const target& where, std::chrono::milliseconds interval) {
  report r;
  r.kernel = kernel_release();
  r.interval_s = std::chrono::duration<double>(interval).count();

  std::vector<examined> targets;
  if (where.all_netns) {
    for (const auto& entry : obs::list_network_namespaces()) {
      examined e;
      e.meta.inode = entry.inode;
      e.meta.pid = entry.pid;
      e.meta.comm = entry.comm;
      e.meta.name = "pid " + std::to_string(entry.pid) + " (" + entry.comm + ")";
      try {
        e.ns = lab::netns::open("/proc/" + std::to_string(entry.pid) + "/ns/net");
        if (e.ns.inode() != entry.inode)
          throw lab_error("process " + std::to_string(entry.pid) + " moved to another namespace");
        e.reader.emplace(&e.ns);
      } catch (const std::exception& ex) {
        e.meta.error = ex.what();
      }
      targets.push_back(std::move(e));
    }
  } else {
    examined e;
    if (where.pid) {
      e.ns = lab::netns::of_pid(*where.pid);
      e.meta.pid = *where.pid;
      e.meta.comm = obs::comm_of(*where.pid);
      e.meta.name = "pid " + std::to_string(*where.pid) + " (" + e.meta.comm + ")";
    } else if (!where.netns_path.empty()) {
      e.ns = lab::netns::open(where.netns_path);
      e.meta.name = where.netns_path;
    } else {
      e.meta.name = "current";
    }
    e.meta.inode = e.ns.valid() ? e.ns.inode() : lab::netns::current().inode();
    e.reader.emplace(e.ns.valid() ? &e.ns : nullptr);
    targets.push_back(std::move(e));
  }

  for (auto& e : targets)
    look(e, e.first);
  std::this_thread::sleep_for(interval);
  for (auto& e : targets)
    look(e, e.last);
  if (!where.all_netns && !targets.front().meta.error.empty())
    throw lab_error(targets.front().meta.name + ": " + targets.front().meta.error);

  std::vector<std::uint32_t> inodes;
  for (auto& e : targets) {
    if (!e.meta.error.empty()) continue;
    e.meta.listeners = static_cast<std::uint32_t>(e.last.listeners.size());
    // The same listener at both looks: the same socket inode (a reopened port is a new one).
    std::unordered_map<std::uint32_t, const obs::listener_summary*> first_by_inode;
    for (const auto& p : e.first.listeners)
      first_by_inode.emplace(p.inode, &p);
    for (const auto& l : e.last.listeners) {
      const obs::listener_summary* before = nullptr;
      if (auto it = first_by_inode.find(l.inode);
          it != first_by_inode.end() && it->second->local == l.local)
        before = it->second;
      bool queued = l.accept_queue > 0 || (before && before->accept_queue > 0);
      bool dropping = before ? l.drops != before->drops : l.drops > 0;
      if (!queued && !dropping) continue;
      e.meta.findings.push_back(compare(before, l, r.interval_s));
      inodes.push_back(l.inode);
    }
  }
  // One pass over /proc/*/fd for every reported listener of every namespace.
  const obs::owner_map owners = obs::find_owners(inodes);
  for (auto& e : targets) {
    for (auto& f : e.meta.findings)
      if (auto it = owners.find(f.last.inode); it != owners.end()) f.owners = it->second;
    r.namespaces.push_back(std::move(e.meta));
  }
  return r;
}

std::size_t take(report& r, const take_request& what) {
  std::size_t total = 0;
  for (auto& ns : r.namespaces)
    for (auto& f : ns.findings) {
      if (what.port && f.last.local.port != what.port) continue;
      std::size_t max = 0;
      if (what.drain && f.v == verdict::never_accepts) max = f.last.unaccepted();
      if (what.peek && f.last.unaccepted() > 0) max = std::max(max, what.peek);
      if (max == 0) continue;
      f.took = true;
      if (f.owners.empty()) {
        f.take_error = "no owner found: nothing to duplicate the listener from";
        continue;
      }
      try {
        f.taken = take_queued(f.owners.front(), f.last.inode, max);
        total += f.taken.size();
      } catch (const std::exception& e) {
        f.take_error = e.what();
      }
    }
  return total;
}

} // namespace backlog_lab::doctor
