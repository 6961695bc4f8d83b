#include "harness/runner/runner.hpp"

#include <sys/utsname.h>

#include <algorithm>
#include <random>
#include <set>

#include "backends/backend.hpp"
#include "harness/clients/client_group.hpp"
#include "harness/core/asio.hpp"
#include "harness/core/error.hpp"
#include "harness/lab/process.hpp"
#include "harness/lab/topology.hpp"
#include "harness/observer/census.hpp"
#include "harness/observer/counters.hpp"
#include "harness/observer/sampler.hpp"
#include "harness/runner/descriptor_budget.hpp"
#include "harness/runner/exec_actor.hpp"
#include "harness/runner/packet_loss.hpp"
#include "proxy_sim/proxier.hpp"

namespace backlog_lab::runner {
namespace {

using clock = std::chrono::steady_clock;

// Counters the timeline keeps per sample (the rest only as deltas over the run).
const std::vector<std::string> sampled_counters = {
    "TcpExtListenOverflows", "TcpExtListenDrops",    "TcpExtTCPSynRetrans", "TcpPassiveOpens",
    "TcpExtTCPReqQFullDrop", "TcpExtSyncookiesSent", "TcpOutRsts"};

std::string kernel_release() {
  utsname u{};
  return ::uname(&u) == 0 ? u.release : "unknown";
}

uint64_t choose_seed(const scenario::scenario& s, const run_options& o) {
  if (o.seed) return *o.seed;
  if (s.seed) return *s.seed;
  return std::random_device{}() ^ static_cast<uint64_t>(clock::now().time_since_epoch().count());
}

// The lab's own networks (lab/topology.hpp): clients, pods (three subnets), remote endpoints
// (198.19.0.0/16, with 198.18.0.0/16 one /15), and loopback.
bool inside_lab(const net::ip::address& a) {
  if (!a.is_v4()) return a.is_loopback();
  auto v = a.to_v4().to_uint();
  return (v >> 8) == (0xC6336400u >> 8) || (v >> 8) == (0xCB007100u >> 8) ||
         (v >> 8) == (0xC0000200u >> 8) || (v >> 17) == (0xC6120000u >> 17) || (v >> 24) == 127;
}

tcp::endpoint parse_target(const std::string& text, const std::string& where) {
  auto colon = text.rfind(':');
  boost::system::error_code ec;
  if (colon != std::string::npos) {
    std::string host = text.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']')
      host = host.substr(1, host.size() - 2);
    auto address = net::ip::make_address(host, ec);
    int port = 0;
    try {
      port = std::stoi(text.substr(colon + 1));
    } catch (...) {
      port = 0;
    }
    if (!ec && port > 0 && port < 65536) return {address, static_cast<uint16_t>(port)};
  }
  throw input_error(where, "\"ADDR:PORT\" with an IP address inside the lab, got \"" + text + "\"");
}

// One scenario run: owns the lab and the actors for its duration.
class scenario_run {
public:
  scenario_run(const scenario::scenario& s, const run_options& o) : s_(s), options_(o) {
    result_.scenario = s;
    result_.seed = choose_seed(s, o);
    result_.kernel = kernel_release();
  }

  run_result execute() {
    auto setup_start = clock::now();
    phase_start_ = setup_start;
    build_lab();
    end_phase("lab");
    start_actors();
    result_.setup_ms = ms_between(setup_start, clock::now());
    log("lab ready in " + std::to_string(static_cast<int>(result_.setup_ms)) + " ms; running " +
        std::to_string(s_.duration_ms) + " ms");
    play();
    teardown();
    end_phase("teardown");
    result_.metrics = collect_metrics(result_);
    result_.expectations = expect::evaluate(s_.expectations, result_.metrics);
    return std::move(result_);
  }

private:
  static double ms_between(clock::time_point a, clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
  }
  double now_ms() const { return ms_between(run_start_, clock::now()); }
  // Phases follow each other: each runs from the end of the one before.
  void end_phase(const char* name) {
    auto now = clock::now();
    result_.wall.push_back({name, ms_between(phase_start_, now)});
    phase_start_ = now;
  }
  void log(const std::string& line) const {
    if (options_.log) options_.log(line);
  }

  size_t backend_index(const std::string& name) const {
    for (size_t i = 0; i < s_.backends.size(); ++i)
      if (s_.backends[i].name == name) return i;
    throw input_error(s_.source, "a backend named '" + name + "'");
  }

  // The local pods `names`, then the service's remote endpoints (which timeline events keep).
  std::vector<tcp::endpoint> endpoints_of(const std::vector<std::string>& names,
                                          const scenario::service_spec& svc) const {
    std::vector<tcp::endpoint> out;
    for (const auto& n : names) {
      size_t i = backend_index(n);
      out.emplace_back(net::ip::make_address(topology_.pod_address(i)), s_.backends[i].port);
    }
    if (svc.remote.count > 0) {
      size_t pod = backend_index(svc.remote.stand_in);
      size_t first = remote_first_.at(&svc - s_.services.data());
      for (size_t k = 0; k < svc.remote.count; ++k)
        out.emplace_back(net::ip::make_address(topology_.remote_address(pod, first + k)),
                         s_.backends[pod].port);
    }
    return out;
  }

  const scenario::service_spec& service_named(const std::string& name) const {
    for (const auto& svc : s_.services)
      if (svc.name == name) return svc;
    throw input_error(s_.source, "a service named '" + name + "'");
  }

  void build_lab() {
    lab::nodeport_plan plan;
    plan.pods = s_.backends.size();
    // Each service's remote endpoints take the next addresses of its stand-in's block.
    for (const auto& svc : s_.services) {
      size_t first = 0;
      if (svc.remote.count > 0) {
        size_t& taken = plan.remote_addresses[backend_index(svc.remote.stand_in)];
        first = taken;
        taken += svc.remote.count;
      }
      remote_first_.push_back(first);
    }
    size_t next = 0;
    for (const auto& g : s_.clients) {
      size_t n = g.arrival == scenario::arrival::heartbeat ? g.checkers : 1;
      first_address_.push_back(next);
      next += n;
    }
    plan.client_addresses = std::max<size_t>(1, next);
    for (const auto& [role, values] : s_.sysctls)
      plan.sysctls_by_role[role] = values;
    topology_ = lab::topology::build_nodeport(plan);
    install_loss(topology_.node(), s_.loss, lab::topology::node_link());
  }

  // The placeholders every program sees (docs/your-software.md#placeholders).
  scenario::template_values base_values() const {
    scenario::template_values v;
    v.values["node_address"] = topology_.node_address();
    for (const auto& svc : s_.services) {
      v.values["service." + svc.name + ".node_port"] = std::to_string(svc.node_port);
      v.lists["service." + svc.name + ".endpoints"] = endpoint_items(svc.endpoints);
    }
    return v;
  }

  std::vector<scenario::template_values::item>
  endpoint_items(const std::vector<std::string>& names) const {
    std::vector<scenario::template_values::item> items;
    for (size_t k = 0; k < names.size(); ++k) {
      size_t i = backend_index(names[k]);
      items.push_back({{"address", topology_.pod_address(i)},
                       {"port", std::to_string(s_.backends[i].port)},
                       {"name", names[k]},
                       {"index", std::to_string(k)}});
    }
    return items;
  }

  std::string where(const std::string& path) const { return s_.source + ": " + path; }

  void start_actors() {
    backends_.resize(s_.backends.size());
    for (size_t i = 0; i < s_.backends.size(); ++i) {
      const auto& spec = s_.backends[i];
      if (spec.kind == scenario::backend_kind::exec) {
        auto values = base_values();
        values.values["address"] = topology_.pod_address(i);
        values.values["port"] = std::to_string(spec.port);
        auto& a =
            exec_backends_
                .emplace(i, exec_actor(spec.exec, where("/backends/" + std::to_string(i) + "/exec"),
                                       "backend", spec.name, topology_.pod(i), std::move(values),
                                       options_.logs_dir))
                .first->second;
        a.ready_when_accepting(topology_.pod_address(i), {spec.port});
        a.start();
        continue;
      }
      backends_[i].emplace(io_, topology_.pod(i), spec);
      backends_[i]->start();
    }
    end_phase("backends");
    if (s_.proxy && s_.proxy->mode == scenario::proxy_mode::exec) {
      std::vector<uint16_t> ports;
      for (const auto& svc : s_.services) {
        ports.push_back(svc.node_port);
        if (!svc.endpoints.empty() || svc.remote.count > 0)
          result_.endpoint_intervals[svc.name].push_back({0, -1});
      }
      exec_proxy_.emplace(s_.proxy->exec, where("/proxy/exec"), "proxy", "proxy", topology_.node(),
                          base_values(), options_.logs_dir);
      exec_proxy_->ready_when_accepting(topology_.node_address(), ports);
      exec_proxy_->start();
    } else if (s_.proxy) {
      std::vector<proxy_sim::service_endpoints> services;
      for (const auto& svc : s_.services) {
        proxy_sim::service_endpoints se;
        se.service = svc.name;
        se.node_port = svc.node_port;
        se.port = svc.port;
        se.cluster_ip = svc.cluster_ip;
        se.endpoints = endpoints_of(svc.endpoints, svc);
        bool has_endpoints = !se.endpoints.empty();
        se.external_policy_local = svc.external_traffic_policy == scenario::traffic_policy::local;
        for (uint32_t i = 0; i < svc.other_node_endpoints; ++i)
          se.other_node_endpoints.emplace_back(
              net::ip::make_address_v4("10.244.1." + std::to_string(10 + i)), svc.port);
        services.push_back(std::move(se));
        if (has_endpoints) result_.endpoint_intervals[svc.name].push_back({0, -1});
      }
      proxier_ = proxy_sim::make_proxier(io_, topology_.node(), *s_.proxy, std::move(services),
                                         result_.seed);
      proxier_->start();
    }
    end_phase("proxy");
    // The sampler watches the node, and the pods too when there are few of them.
    std::vector<observer::sampler_target> targets{{"node", &topology_.node()}};
    if (topology_.pod_count() <= 16)
      for (size_t i = 0; i < topology_.pod_count(); ++i)
        targets.push_back({s_.backends[i].name, &topology_.pod(i)});
    sampler_.emplace(io_, targets,
                     observer::sampler_options{std::chrono::milliseconds(s_.sample_interval_ms),
                                               sampled_counters});
    for (const auto* ns : {&topology_.clients(), &topology_.node()})
      counter_readers_.emplace_back(ns);
    for (size_t i = 0; i < topology_.pod_count(); ++i)
      pod_counters_.emplace_back(&topology_.pod(i));
    counters_before_.resize(counter_readers_.size());
    for (size_t i = 0; i < counter_readers_.size(); ++i)
      counter_readers_[i].read(counters_before_[i]);
    pods_before_.resize(pod_counters_.size());
    for (size_t i = 0; i < pod_counters_.size(); ++i)
      pod_counters_[i].read(pods_before_[i]);
    end_phase("observer");

    for (size_t g = 0; g < s_.clients.size(); ++g) {
      const auto& spec = s_.clients[g];
      if (spec.kind != scenario::client_kind::exec) continue;
      std::string at = "/clients/" + std::to_string(g);
      auto values = base_values();
      tcp::endpoint target = target_of(g, at);
      bool external = dials_from_host(g, target);
      if (external && spec.listen_port)
        throw input_error(where(at + "/listen_port"),
                          "no listen_port on an exec client whose target is outside the lab: it "
                          "runs in the host's namespace, where the lab's clients cannot reach it");
      std::string address = external ? "" : client_source(g, 0);
      values.values["address"] = address;
      values.values["listen_port"] = std::to_string(spec.listen_port);
      values.values["target"] =
          target.port() ? target.address().to_string() + ":" + std::to_string(target.port()) : "";
      values.values["target_address"] = target.port() ? target.address().to_string() : "";
      values.values["target_port"] = target.port() ? std::to_string(target.port()) : "";
      auto& a = exec_clients_
                    .emplace(g, exec_actor(spec.exec, where(at + "/exec"), "client", spec.name,
                                           client_namespace(g, external), std::move(values),
                                           options_.logs_dir))
                    .first->second;
      if (spec.listen_port) a.ready_when_accepting(address, {spec.listen_port});
      a.start();
      if (external)
        result_.external_clients.insert(spec.name);
      else
        result_.client_addresses[spec.name] = {address};
    }

    end_phase("clients"); // the exec clients; built-in groups start with the timeline
    run_start_ = phase_start_;
    std::set<std::string> started_by_event;
    for (const auto& e : s_.timeline)
      if (e.action == scenario::event_action::start_clients) started_by_event.insert(e.target);
    for (size_t g = 0; g < s_.clients.size(); ++g) {
      const auto& spec = s_.clients[g];
      if (spec.kind == scenario::client_kind::exec) continue;
      tcp::endpoint target = target_of(g, "/clients/" + std::to_string(g));
      uint16_t node_port = spec.target_service.empty() ? 0 : target.port();
      bool external = dials_from_host(g, target);
      // A group dialling outside the lab binds no lab address: its connections leave from the
      // host's own addresses, as any client program on the host would.
      std::vector<std::string> addresses;
      size_t n = external ? 0 : spec.arrival == scenario::arrival::heartbeat ? spec.checkers : 1;
      for (size_t k = 0; k < n; ++k)
        addresses.push_back(client_source(g, k));
      if (external) result_.external_clients.insert(spec.name);
      result_.client_addresses[spec.name] = addresses;
      result_.client_node_port[spec.name] = node_port;
      result_.client_service[spec.name] = spec.target.empty() ? spec.target_service : "";
      // Local ports let the report match queued connections with what their client sent.
      groups_.emplace_back(io_, client_namespace(g, external), spec, target, addresses,
                           result_.seed + 1 + g, run_start_,
                           clients::group_options{.record_local_port = true});
      if (!started_by_event.count(spec.name)) groups_.back().start();
    }
  }

  // Where client group `g` connects: a raw target (inside the lab unless --allow-external), a
  // Service's NodePort, or an exec client's listener. Port 0: no target (an exec client may
  // have none).
  tcp::endpoint target_of(size_t g, const std::string& at) const {
    const auto& spec = s_.clients[g];
    if (!spec.target.empty()) {
      auto t = parse_target(spec.target, where(at + "/target"));
      if (!options_.allow_external && !inside_lab(t.address()))
        throw input_error(where(at + "/target"),
                          "an address inside the lab (198.51.100.0/24, 203.0.113.0/24, "
                          "192.0.2.0/24, 198.18.0.0/15, 127.0.0.0/8), got " +
                              spec.target + "; a target outside the lab needs --allow-external");
      return t;
    }
    if (!spec.target_client.empty()) {
      for (size_t k = 0; k < s_.clients.size(); ++k)
        if (s_.clients[k].name == spec.target_client) // the same `from` (the reader checks)
          return {net::ip::make_address(client_source(k, 0)), s_.clients[k].listen_port};
    }
    // From the node itself a NodePort is dialled on 127.0.0.1, as node-local programs do.
    const bool from_node = spec.from == scenario::client_origin::node;
    for (const auto& svc : s_.services)
      if (svc.name == spec.target_service)
        return {net::ip::make_address(from_node ? "127.0.0.1" : topology_.node_address()),
                svc.node_port};
    return {};
  }

  // Where client group `g` runs: the clients' namespace, the node's (`from: node`), or the
  // host's for a target outside the lab.
  const lab::netns& client_namespace(size_t g, bool external) {
    if (external) return host();
    return s_.clients[g].from == scenario::client_origin::node ? topology_.node()
                                                               : topology_.clients();
  }

  // Source address `k` of client group `g`: on the clients' link, or for a group on the node a
  // loopback address of its own (127.1.G.K+1; lo holds all of 127.0.0.0/8), so that the report
  // can still tell groups and checkers apart.
  std::string client_source(size_t g, size_t k) const {
    if (s_.clients[g].from == scenario::client_origin::node)
      return "127.1." + std::to_string(g) + "." + std::to_string(k + 1);
    return topology_.client_address(first_address_[g] + k);
  }

  // Whether client `g` dials a target outside the lab (allowed by target_of only with
  // --allow-external). Such a client runs in the host's namespace: the lab's namespaces have no
  // route out, and giving them one would mean forwarding and NAT on the host
  // (docs/your-software.md).
  bool dials_from_host(size_t g, const tcp::endpoint& target) const {
    bool outside = !s_.clients[g].target.empty() && target.port() && !inside_lab(target.address());
    if (outside && s_.clients[g].from == scenario::client_origin::node)
      throw input_error(where("/clients/" + std::to_string(g) + "/from"),
                        "\"clients\" for a target outside the lab: the node's namespace has no "
                        "route out");
    return outside;
  }

  // The namespace backlog-lab was started in (this thread's: labs are built from it). Opened only
  // for a run that dials outside: a handle on it is one more namespace the run holds.
  const lab::netns& host() {
    if (!host_) host_ = lab::netns::current();
    return *host_;
  }

  void play() {
    for (const auto& e : s_.timeline) {
      auto timer =
          std::make_shared<net::steady_timer>(io_, run_start_ + std::chrono::milliseconds(e.at_ms));
      timer->async_wait([this, timer, &e](boost::system::error_code ec) {
        if (!ec && !ending_) apply(e);
      });
      timers_.push_back(timer);
    }
    sampler_->start();
    stop_timer_.emplace(io_);
    end_timer_.emplace(io_, run_start_ + std::chrono::milliseconds(s_.duration_ms));
    end_timer_->async_wait([this](boost::system::error_code ec) {
      if (!ec) begin_end();
    });
    // Only now: a stop requested at once ends the run through finish(), which needs every timer.
    watch_stop();
    // Hang guard only: the run ends by its own timers long before this.
    auto guard = std::chrono::milliseconds(s_.duration_ms + s_.drain_ms) + std::chrono::seconds(30);
    io_.run_for(guard);
    if (!finished_) {
      log("run did not finish in time; stopping");
      finish();
    }
  }

  void apply(const scenario::event_spec& e) {
    using action = scenario::event_action;
    event_record rec{now_ms(), std::string(scenario::name_of(e.action)), e.target, {}};
    const action a = e.action;
    if (a == action::set_endpoints) {
      if (proxier_)
        proxier_->update_endpoints(e.target, endpoints_of(e.endpoints, service_named(e.target)));
      if (exec_proxy_) {
        auto values = exec_proxy_->values();
        values.lists["service." + e.target + ".endpoints"] = endpoint_items(e.endpoints);
        exec_proxy_->reload(values);
      }
      double effective =
          now_ms() + (s_.proxy && (s_.proxy->mode == scenario::proxy_mode::iptables ||
                                   s_.proxy->mode == scenario::proxy_mode::nftables)
                          ? s_.proxy->sync_delay_ms
                          : 0);
      auto& intervals = result_.endpoint_intervals[e.target];
      bool open = !intervals.empty() && intervals.back().second < 0;
      bool any = !e.endpoints.empty() || service_named(e.target).remote.count > 0;
      if (!any && open) intervals.back().second = effective;
      if (any && !open) intervals.push_back({effective, -1});
      for (const auto& n : e.endpoints)
        rec.note += (rec.note.empty() ? "" : ",") + n;
      rec.note = "[" + rec.note + "]";
    } else if (a == action::start_clients || a == action::stop_clients) {
      for (auto& g : groups_)
        if (g.spec().name == e.target) a == action::start_clients ? g.start() : g.stop();
    } else if (auto x = exec_backends_.find(backend_index(e.target)); x != exec_backends_.end()) {
      size_t i = x->first;
      auto& p = x->second;
      // The reader refused close-listener and reset-all for programs.
      switch (a) {
      case action::kill:
        p.kill();
        break;
      case action::freeze:
        p.freeze();
        break;
      case action::resume:
        if (!topology_.pod_reachable(i)) topology_.set_pod_reachable(i, true);
        p.resume();
        break;
      case action::vanish:
        topology_.set_pod_reachable(i, false);
        break;
      case action::restart:
        if (!topology_.pod_reachable(i)) topology_.set_pod_reachable(i, true);
        p.restart();
        break;
      default:
        break;
      }
      rec.note = p.state();
    } else {
      size_t i = backend_index(e.target);
      auto& b = *backends_[i];
      switch (a) {
      case action::kill:
        b.kill();
        break;
      case action::freeze:
        b.freeze();
        break;
      case action::resume:
        if (!topology_.pod_reachable(i)) topology_.set_pod_reachable(i, true);
        b.resume();
        break;
      case action::vanish:
        topology_.set_pod_reachable(i, false);
        break;
      case action::restart:
        if (!topology_.pod_reachable(i)) topology_.set_pod_reachable(i, true);
        b.restart();
        break;
      case action::close_listener:
        b.close_listener();
        break;
      case action::reset_all:
        b.reset_all();
        break;
      default:
        break;
      }
      rec.note = std::string(backends::to_string(b.state()));
    }
    log("t=" + std::to_string(static_cast<int>(rec.at_ms)) + "ms " + rec.action + " " + e.target +
        " " + rec.note);
    result_.events.push_back(std::move(rec));
  }

  // Polls the stop request (a signal handler only sets a flag).
  void watch_stop() {
    if (finished_) return;
    if (options_.stop_requested && options_.stop_requested->load()) {
      result_.interrupted = true;
      log("interrupted: stopping");
      finish();
      return;
    }
    stop_timer_->expires_after(std::chrono::milliseconds(50));
    stop_timer_->async_wait([this](boost::system::error_code ec) {
      if (!ec) watch_stop();
    });
  }

  // The sampler's timeline as the report wants it: per listener, its queue series and the
  // intervals it was full (sample and hold, as the sampler counts time full).
  void take_timeline(double end_ms) {
    const observer::timeline& tl = sampler_->result();
    for (size_t li = 0; li < tl.listeners.size(); ++li) {
      const auto& src = tl.listeners[li];
      listener_track t;
      t.role = tl.namespaces[src.ns];
      t.port = src.local.port;
      t.backlog = src.backlog;
      t.peak = src.peak_accept_queue;
      t.full_ms = src.time_full_ms;
      t.first_full_ms = src.first_full_ms;
      for (const auto& smp : tl.samples)
        for (const auto& lp : smp.listeners) {
          if (lp.listener != li) continue;
          bool full = lp.accept_queue > lp.backlog;
          bool open = !t.full_intervals.empty() && t.full_intervals.back().second < 0;
          if (full && !open) t.full_intervals.push_back({smp.t_ms, -1});
          if (!full && open) t.full_intervals.back().second = smp.t_ms;
          if (t.samples.empty() || t.samples.back().accept_queue != lp.accept_queue)
            t.samples.push_back({smp.t_ms, lp.accept_queue});
          if (t.drop_samples.empty() || t.drop_samples.back().values["drops"] != lp.drops)
            t.drop_samples.push_back({smp.t_ms, {{"drops", lp.drops}}});
        }
      if (!t.full_intervals.empty() && t.full_intervals.back().second < 0)
        t.full_intervals.back().second = end_ms;
      // A port held by both an IPv4 and an IPv6 listener keeps the busier one.
      bool merged = false;
      for (auto& existing : result_.listeners)
        if (existing.role == t.role && existing.port == t.port) {
          if (t.peak > existing.peak) existing = t;
          merged = true;
        }
      if (!merged) result_.listeners.push_back(std::move(t));
    }
    for (const auto& smp : tl.samples) {
      counter_sample cs{smp.t_ms, {}};
      for (size_t k = 0; k < tl.counter_names.size() && k < smp.namespaces[0].counters.size(); ++k)
        cs.values[tl.counter_names[k]] = smp.namespaces[0].counters[k];
      result_.node_counter_samples.push_back(std::move(cs));
    }
  }

  // Clients stop opening connections; those in flight get drain_ms to end on their own. A rule
  // sync already running ends first whatever drain_ms says: the tool is bounded by its own
  // timeout, and before syncs had their own thread the run waited for it in any case.
  void begin_end() {
    ending_ = true;
    end_phase("timeline");
    for (auto& g : groups_)
      g.stop();
    drain_deadline_ = clock::now() + std::chrono::milliseconds(s_.drain_ms);
    wait_for_drain();
  }

  void wait_for_drain() {
    bool idle = std::all_of(groups_.begin(), groups_.end(), [](const auto& g) { return g.idle(); });
    bool syncing = proxier_ && proxier_->sync_running();
    if ((idle || clock::now() >= drain_deadline_) && !syncing) {
      finish();
      return;
    }
    end_timer_->expires_after(std::chrono::milliseconds(10));
    end_timer_->async_wait([this](boost::system::error_code ec) {
      if (!ec) wait_for_drain();
    });
  }

  // A sock_diag dump is not atomic: it walks the kernel's hash tables in batches and resumes by
  // position. If the listeners' queues and the children found disagree, read again (a few
  // times at most) and keep the last read; the report shows whatever the kernel gave.
  observer::census consistent_census(const lab::netns& ns) {
    observer::census_reader reader(&ns);
    observer::census c;
    for (int attempt = 0; attempt < 5; ++attempt) {
      reader.read(c);
      uint64_t queued = 0, found = 0;
      for (const auto& l : c.listeners) {
        queued += l.accept_queue;
        found += l.unaccepted();
      }
      if (queued == found) break;
      log("census: listener queues hold " + std::to_string(queued) + " but " +
          std::to_string(found) + " queued children were dumped; reading again");
    }
    return c;
  }

  // The final census and counters, then everything stops.
  void finish() {
    if (finished_) return;
    finished_ = true;
    end_phase(ending_ ? "drain" : "timeline"); // interrupted or hung: no drain
    double at = now_ms();
    result_.run_ms = at;
    sampler_->sample_now();
    sampler_->stop();
    take_timeline(at);
    result_.census["node"] = consistent_census(topology_.node());
    result_.census["clients"] = observer::census_reader(&topology_.clients()).read();
    for (size_t i = 0; i < topology_.pod_count(); ++i)
      result_.census[s_.backends[i].name] = observer::census_reader(&topology_.pod(i)).read();
    for (auto& [svc, intervals] : result_.endpoint_intervals)
      if (!intervals.empty() && intervals.back().second < 0) intervals.back().second = at;
    const char* roles[] = {"clients", "node"};
    for (size_t i = 0; i < counter_readers_.size(); ++i) {
      observer::counter_snapshot after = counter_readers_[i].read();
      result_.counters[roles[i]] = observer::delta(counters_before_[i], after);
    }
    auto& pods = result_.counters["pods"];
    for (size_t i = 0; i < pod_counters_.size(); ++i) {
      observer::counter_snapshot after = pod_counters_[i].read();
      for (const auto& [k, v] : observer::delta(pods_before_[i], after))
        pods[k] += v;
    }
    if (!s_.loss.empty()) result_.loss_dropped = loss_dropped(topology_.node());
    if (proxier_) {
      result_.proxy = proxier_->stats();
      result_.rules_listing = proxier_->rules_listing();
    }
    for (auto& g : groups_)
      g.abort();
    for (const auto& g : groups_)
      result_.clients[g.spec().name] = g.results();
    for (const auto& b : backends_)
      if (b) result_.backends[b->name()] = b->stats();
    for (auto& [i, p] : exec_backends_) {
      p.collect_metrics();
      result_.programs[s_.backends[i].name] = p.record();
    }
    if (exec_proxy_) {
      exec_proxy_->collect_metrics();
      result_.programs["proxy"] = exec_proxy_->record();
    }
    for (auto& [g, p] : exec_clients_) {
      p.collect_metrics();
      result_.programs[s_.clients[g].name] = p.record();
      auto addresses = result_.client_addresses.find(s_.clients[g].name);
      if (addresses == result_.client_addresses.end()) continue; // dialled outside the lab
      auto& sent = result_.exec_sent_bytes[addresses->second.front()];
      for (auto b : p.sent_bytes())
        sent.push_back(b);
    }
    for (auto& t : timers_)
      t->cancel();
    if (stop_timer_) stop_timer_->cancel();
    if (end_timer_) end_timer_->cancel();
    io_.stop();
    end_phase("final_census");
  }

  void teardown() {
    groups_.clear();
    exec_clients_.clear();
    exec_proxy_.reset();
    exec_backends_.clear();
    if (proxier_) proxier_->stop();
    proxier_.reset();
    backends_.clear();
    topology_ = lab::topology{}; // namespaces, links and rules go now, timed as teardown
  }

  const scenario::scenario& s_;
  const run_options& options_;
  run_result result_;
  net::io_context io_{1};
  std::optional<lab::netns> host_; // where clients of outside targets run, once one does
  lab::topology topology_;
  std::vector<size_t> first_address_;
  std::vector<size_t> remote_first_; ///< per service: its first address in its stand-in's block
  std::vector<std::optional<backends::backend>> backends_; // empty for exec backends
  std::map<size_t, exec_actor> exec_backends_;             // by backend index
  std::optional<exec_actor> exec_proxy_;
  std::map<size_t, exec_actor> exec_clients_; // by client index
  std::unique_ptr<proxy_sim::proxier> proxier_;
  std::vector<clients::client_group> groups_;
  std::optional<observer::sampler> sampler_;
  std::vector<observer::counter_reader> counter_readers_; // clients, node
  std::vector<observer::counter_reader> pod_counters_;
  std::vector<observer::counter_snapshot> counters_before_;
  std::vector<observer::counter_snapshot> pods_before_;
  std::vector<std::shared_ptr<net::steady_timer>> timers_;
  std::optional<net::steady_timer> stop_timer_;
  std::optional<net::steady_timer> end_timer_;
  clock::time_point run_start_;
  clock::time_point phase_start_;
  clock::time_point drain_deadline_;
  bool ending_ = false;
  bool finished_ = false;
};

} // namespace

const listener_track* run_result::find_listener(const std::string& role, std::uint16_t port) const {
  for (const auto& t : listeners)
    if (t.role == role && t.port == port) return &t;
  return nullptr;
}

bool run_result::passed() const {
  return !interrupted && expect::all_passed(expectations);
}

run_result run_scenario(const scenario::scenario& s, const run_options& options) {
  // Before anything is built, as a sysctl the kernel lacks would be: a lab too big for this
  // process's descriptor limit is refused whole rather than failing half-built with EMFILE.
  check_descriptor_budget(s, available_descriptors());
  scenario_run run(s, options);
  return run.execute();
}

} // namespace backlog_lab::runner
