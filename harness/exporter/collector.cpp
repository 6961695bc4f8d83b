#include "harness/exporter/collector.hpp"

#include <algorithm>
#include <future>
#include <set>
#include <thread>

#include "harness/core/error.hpp"
#include "harness/exporter/exposition.hpp"
#include "harness/observer/tcp_state.hpp"

namespace backlog_lab::exporter {
namespace {

namespace obs = observer;

// States whose un-accepted children sit in an accept queue (docs/reference/kernel.md section 3).
constexpr std::array queued_states{obs::tcp_state::established, obs::tcp_state::close_wait};

} // namespace

const std::vector<exported_counter>& exported_counters() {
  static const std::vector<exported_counter> list{
      {"TcpExtListenOverflows", "backlog_lab_tcpext_listen_overflows_total",
       "Times a connection's final ACK found its listener's accept queue full "
       "(TcpExtListenOverflows; "
       "node_exporter: node_netstat_TcpExt_ListenOverflows)."},
      {"TcpExtListenDrops", "backlog_lab_tcpext_listen_drops_total",
       "SYNs and final ACKs to listeners that were dropped, overflows included (TcpExtListenDrops; "
       "node_exporter: node_netstat_TcpExt_ListenDrops)."},
      {"TcpExtTCPReqQFullDrop", "backlog_lab_tcpext_tcp_reqq_full_drop_total",
       "SYNs dropped because the SYN queue was full and syncookies were off "
       "(TcpExtTCPReqQFullDrop)."},
      {"TcpExtTCPReqQFullDoCookies", "backlog_lab_tcpext_tcp_reqq_full_do_cookies_total",
       "SYNs answered with a syncookie because the SYN queue was full "
       "(TcpExtTCPReqQFullDoCookies)."},
      {"TcpExtSyncookiesSent", "backlog_lab_tcpext_syncookies_sent_total",
       "Syncookies sent (TcpExtSyncookiesSent)."},
      {"TcpExtSyncookiesRecv", "backlog_lab_tcpext_syncookies_recv_total",
       "Valid syncookies received (TcpExtSyncookiesRecv)."},
      {"TcpExtSyncookiesFailed", "backlog_lab_tcpext_syncookies_failed_total",
       "Invalid syncookies received (TcpExtSyncookiesFailed)."},
      {"TcpExtEmbryonicRsts", "backlog_lab_tcpext_embryonic_rsts_total",
       "Resets sent to connections still in the SYN queue, e.g. by tcp_abort_on_overflow "
       "(TcpExtEmbryonicRsts)."},
      {"TcpExtTCPAbortOnData", "backlog_lab_tcpext_tcp_abort_on_data_total",
       "Connections reset because they were closed with unread data "
       "(TcpExtTCPAbortOnData)."},
      {"TcpExtTCPSynRetrans", "backlog_lab_tcpext_tcp_syn_retrans_total",
       "SYN and SYN-ACK retransmissions (TcpExtTCPSynRetrans)."},
      {"TcpPassiveOpens", "backlog_lab_tcp_passive_opens_total",
       "Connections accepted by the kernel on listeners: SYN-RECV entered (TcpPassiveOpens)."},
  };
  return list;
}

std::string render(const std::vector<namespace_reading>& readings, double scrape_seconds,
                   std::uint64_t namespace_errors, const obs::owner_map& owners) {
  exposition x;
  std::vector<std::string> inodes;
  inodes.reserve(readings.size());
  for (const auto& r : readings)
    inodes.push_back(std::to_string(r.entry.inode));

  // Per listener: one pass per family, so that every family's samples are contiguous.
  struct listener_labels {
    const std::string* netns;
    std::string address, port, inode;
    std::string owner; ///< the holders' comms, sorted, unique, joined by ','; "" when none
  };
  const std::vector<obs::socket_holder> no_holders;
  auto holders_of = [&](std::uint32_t inode) -> const std::vector<obs::socket_holder>& {
    auto it = owners.find(inode);
    return it == owners.end() ? no_holders : it->second;
  };
  std::vector<std::pair<listener_labels, const obs::listener_summary*>> listeners;
  for (std::size_t i = 0; i < readings.size(); ++i)
    for (const auto& l : readings[i].census.listeners) {
      std::set<std::string> comms;
      for (const auto& h : holders_of(l.inode))
        comms.insert(h.comm);
      std::string owner;
      for (const auto& comm : comms)
        owner += (owner.empty() ? "" : ",") + comm;
      listeners.push_back({{&inodes[i], l.local.address.to_string(), std::to_string(l.local.port),
                            std::to_string(l.inode), std::move(owner)},
                           &l});
    }
  auto each_listener = [&](auto&& f) {
    for (const auto& [lab, l] : listeners)
      f(lab, *l);
  };
#define BACKLOG_LAB_LISTENER_LABELS(lab)                                                           \
  label{"netns", *(lab).netns}, label{"address", (lab).address}, label{"port", (lab).port},        \
      label{"inode", (lab).inode}, label{"owner", (lab).owner}

  x.family("backlog_lab_listener_accept_queue", "gauge",
           "Connections in the listener's accept queue, waiting for accept() (Recv-Q of the "
           "LISTEN socket in ss -tl).");
  each_listener([&](const listener_labels& lab, const obs::listener_summary& l) {
    x.sample("backlog_lab_listener_accept_queue", {BACKLOG_LAB_LISTENER_LABELS(lab)},
             std::uint64_t{l.accept_queue});
  });
  x.family("backlog_lab_listener_backlog", "gauge",
           "The accept queue's limit, min(listen() backlog, net.core.somaxconn) (Send-Q of the "
           "LISTEN socket in ss -tl); the queue is full above it.");
  each_listener([&](const listener_labels& lab, const obs::listener_summary& l) {
    x.sample("backlog_lab_listener_backlog", {BACKLOG_LAB_LISTENER_LABELS(lab)},
             std::uint64_t{l.backlog});
  });
  x.family("backlog_lab_listener_unaccepted_children", "gauge",
           "Connections on the listener's address and port that no process accepted yet "
           "(inode 0), by state: ESTAB, or CLOSE-WAIT when the peer already gave up.");
  each_listener([&](const listener_labels& lab, const obs::listener_summary& l) {
    for (auto s : queued_states)
      x.sample("backlog_lab_listener_unaccepted_children",
               {BACKLOG_LAB_LISTENER_LABELS(lab), label{"state", obs::state_name(s)}},
               std::uint64_t{s == obs::tcp_state::established ? l.unaccepted_established
                                                              : l.unaccepted_close_wait});
  });
  x.family("backlog_lab_listener_unaccepted_bytes", "gauge",
           "Bytes received on un-accepted connections that nobody read, by state (their Recv-Q "
           "summed; a queued FIN counts 1).");
  each_listener([&](const listener_labels& lab, const obs::listener_summary& l) {
    for (auto s : queued_states)
      x.sample("backlog_lab_listener_unaccepted_bytes",
               {BACKLOG_LAB_LISTENER_LABELS(lab), label{"state", obs::state_name(s)}},
               s == obs::tcp_state::established ? l.unaccepted_established_bytes
                                                : l.unaccepted_close_wait_bytes);
  });
  x.family("backlog_lab_listener_drops_total", "counter",
           "SYNs and final ACKs this listener dropped since it was opened, its accept queue's "
           "overflows among them (sk_drops; ss -tlm shows it as d<N>).");
  each_listener([&](const listener_labels& lab, const obs::listener_summary& l) {
    x.sample("backlog_lab_listener_drops_total", {BACKLOG_LAB_LISTENER_LABELS(lab)},
             std::uint64_t{l.drops});
  });
  x.family("backlog_lab_listener_owner_info", "gauge",
           "A process holding the listener (as ss -tlp names it), its cgroup's Kubernetes pod "
           "UID and container id where the cgroup path names them; 1 per holder.");
  each_listener([&](const listener_labels& lab, const obs::listener_summary& l) {
    for (const auto& h : holders_of(l.inode))
      x.sample("backlog_lab_listener_owner_info",
               {label{"netns", *lab.netns}, label{"address", lab.address}, label{"port", lab.port},
                label{"inode", lab.inode}, label{"pid", std::to_string(h.pid)},
                label{"comm", h.comm}, label{"fd", std::to_string(h.fd)}, label{"cgroup", h.cgroup},
                label{"pod_uid", h.ids.pod_uid}, label{"container_id", h.ids.container_id}},
               std::uint64_t{1});
  });
#undef BACKLOG_LAB_LISTENER_LABELS

  // Per namespace.
  x.family("backlog_lab_netns_info", "gauge",
           "A network namespace read by this scrape, named by a process in it (the lowest pid).");
  for (std::size_t i = 0; i < readings.size(); ++i) {
    const auto& e = readings[i].entry;
    std::string pid = e.pid > 0 ? std::to_string(e.pid) : "";
    x.sample("backlog_lab_netns_info",
             {label{"netns", inodes[i]}, label{"pid", pid}, label{"comm", e.comm}},
             std::uint64_t{1});
  }
  x.family("backlog_lab_netns_tcp_sockets", "gauge",
           "TCP sockets of the namespace by state, as ss -tan counts them.");
  for (std::size_t i = 0; i < readings.size(); ++i)
    for (std::uint8_t s = 1; s < obs::tcp_state_slots; ++s) {
      auto state = static_cast<obs::tcp_state>(s);
      x.sample("backlog_lab_netns_tcp_sockets",
               {label{"netns", inodes[i]}, label{"state", obs::state_name(state)}},
               std::uint64_t{readings[i].census.totals[state]});
    }
  for (const auto& c : exported_counters()) {
    x.family(c.metric, "counter", c.help);
    for (std::size_t i = 0; i < readings.size(); ++i) {
      auto it = readings[i].counters.find(c.nstat_name);
      if (it == readings[i].counters.end()) continue; // this kernel lacks it
      x.sample_signed(c.metric, {label{"netns", inodes[i]}}, it->second);
    }
  }

  // The exporter itself.
  x.family("backlog_lab_exporter_build_info", "gauge", "The backlog-lab version serving this.");
  x.sample("backlog_lab_exporter_build_info", {label{"version", BACKLOG_LAB_VERSION}},
           std::uint64_t{1});
  x.family("backlog_lab_exporter_scrape_duration_seconds", "gauge",
           "Time this scrape took to read every namespace.");
  x.sample("backlog_lab_exporter_scrape_duration_seconds", {}, scrape_seconds);
  x.family("backlog_lab_exporter_namespaces", "gauge", "Network namespaces this scrape read.");
  x.sample("backlog_lab_exporter_namespaces", {}, std::uint64_t{readings.size()});
  x.family("backlog_lab_exporter_namespace_errors_total", "counter",
           "Namespaces that could not be read (vanished between listing and reading, or not "
           "permitted) and were left out of a scrape.");
  x.sample("backlog_lab_exporter_namespace_errors_total", {}, namespace_errors);
  return x.take();
}

collector::collector(collect_target target) : target_(std::move(target)) {
  if (target_.pid) {
    ns_ = lab::netns::of_pid(*target_.pid);
    single_ = {ns_.inode(), *target_.pid, obs::comm_of(*target_.pid)};
  } else if (!target_.netns_path.empty()) {
    ns_ = lab::netns::open(target_.netns_path);
    single_ = {ns_.inode(), 0, ""};
  } else if (!target_.all_netns) {
    single_ = {lab::netns::current().inode(), ::getpid(), obs::comm_of(::getpid())};
  }
  if (!target_.all_netns) {
    const lab::netns* ns = ns_.valid() ? &ns_ : nullptr;
    reader_.emplace(ns);
    counters_.emplace(ns);
  }
}

collector::collector(collector&&) noexcept = default;
collector& collector::operator=(collector&&) noexcept = default;
collector::~collector() = default;

std::string collector::collect() {
  auto start = std::chrono::steady_clock::now();
  // Owners: one pass over /proc/*/fd, run beside the census on the cores the machine has spare
  // (docs/performance.md, "Exporter"); it lists every socket descriptor, and the listeners'
  // holders are picked once the census has named them.
  auto socket_fds = std::async(std::launch::async, [] {
    return obs::list_socket_fds(std::max(2U, std::thread::hardware_concurrency()) - 1);
  });
  if (!target_.all_netns) {
    readings_.resize(1);
    readings_[0].entry = single_;
    reader_->read(readings_[0].census, {.summary_only = true});
    obs::counter_snapshot snap;
    counters_->read(snap);
    readings_[0].counters = std::move(snap.values);
  } else {
    read_namespaces(obs::list_network_namespaces());
  }
  std::vector<std::uint32_t> inodes;
  for (const auto& r : readings_)
    for (const auto& l : r.census.listeners)
      inodes.push_back(l.inode);
  const obs::owner_map owners = obs::owners_among(socket_fds.get(), inodes);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return render(readings_, seconds, namespace_errors_, owners);
}

void collector::read_namespaces(std::vector<obs::namespace_entry> entries) {
  readings_.resize(entries.size());
  std::size_t kept = 0;
  for (auto& e : entries) {
    try {
      // Opened afresh each scrape and closed after it: holding it would keep a deleted pod's
      // namespace alive. The open fd keeps the namespace whole while we read it, so a process
      // that exits meanwhile cannot make the dump wait or fail half-way; one that exited before
      // fails the open at once.
      lab::netns ns = lab::netns::open("/proc/" + std::to_string(e.pid) + "/ns/net");
      if (ns.inode() != e.inode) throw lab_error("pid reused by another namespace");
      auto& r = readings_[kept];
      r.entry = std::move(e);
      read_one(r, &ns);
      ++kept;
    } catch (const std::exception&) {
      ++namespace_errors_;
    }
  }
  readings_.resize(kept);
}

void collector::read_one(namespace_reading& r, const lab::netns* ns) {
  obs::census_reader reader(ns);
  reader.read(r.census, {.summary_only = true});
  obs::counter_reader counters(ns);
  obs::counter_snapshot snap;
  counters.read(snap);
  r.counters = std::move(snap.values);
}

} // namespace backlog_lab::exporter
