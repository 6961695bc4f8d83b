#include "proxy_sim/iptables/iptables_proxier.hpp"

#include <algorithm>
#include <chrono>
#include <regex>

#include "harness/core/error.hpp"
#include "harness/lab/process.hpp"
#include "harness/lab/sysctl.hpp"
#include "proxy_sim/iptables/rules.hpp"
#include "proxy_sim/node_port.hpp"

namespace backlog_lab::proxy_sim {
namespace {

// Hang guards, not targets: a restore takes ~30 us per line on 2 cores (10,000 Services with one
// endpoint each, 65,000 lines: ~2-3 s); a loaded machine may take several times that.
constexpr auto tool_timeout = std::chrono::seconds(10);
constexpr auto restore_time_per_line = std::chrono::microseconds(500);

std::chrono::milliseconds restore_timeout(const std::string& text) {
  auto lines = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
  return tool_timeout + std::chrono::duration_cast<std::chrono::milliseconds>(
                            restore_time_per_line * static_cast<long>(lines));
}

// What the tool said, or why there is nothing: a killed tool has often written nothing yet.
std::string tool_says(const lab::command_result& result, std::chrono::milliseconds timeout,
                      std::size_t lines) {
  std::string err = result.err;
  while (!err.empty() && (err.back() == '\n' || err.back() == ' '))
    err.pop_back();
  std::string why;
  if (result.timed_out)
    why = "killed after " + std::to_string(timeout.count()) + " ms (the limit for " +
          std::to_string(lines) + " lines of input)";
  else if (result.exit_status != 0)
    why = "exit status " + std::to_string(result.exit_status);
  if (err.empty()) return why + "; nothing on stderr";
  return why + "; stderr: " + err;
}

// The line of `text` that iptables-restore names in "line N failed", for the error message.
std::string failing_line(const std::string& err, const std::string& text) {
  std::smatch m;
  // "line 18 failed" (legacy), "line 18: CHAIN_DEL failed (...)" (nf_tables).
  if (!std::regex_search(err, m, std::regex("line ([0-9]+)(: [A-Z_]+)? failed"))) return {};
  std::size_t wanted = std::stoul(m[1]), n = 1, start = 0;
  while (n < wanted && start != std::string::npos) {
    start = text.find('\n', start);
    if (start != std::string::npos) ++start;
    ++n;
  }
  if (start == std::string::npos) return {};
  return text.substr(start, text.find('\n', start) - start);
}

class iptables_proxier final : public proxier {
public:
  iptables_proxier(net::io_context& io, const lab::netns& node, const scenario::proxy_spec& spec,
                   std::vector<service_endpoints> services)
      : node_(node.duplicate()), spec_(spec), options_(iptables::make_rule_options(spec)),
        services_(std::move(services)), sync_timer_(io), io_(io) {
    if (spec.backlog < -1)
      throw input_error("/proxy/backlog", "-1 (somaxconn, as Go's net.Listen) or a backlog >= 0");
    iptables::validate_services(services_);
  }

  ~iptables_proxier() override {
    try {
      stop();
    } catch (...) {
      // The namespace goes away with its rules anyway; nothing more to do in a destructor.
    }
  }

  void start() override {
    if (started_) return;
    started_ = true;
    // kube-proxy opened the ports before committing the rules (#108496, item 1).
    if (iptables::holds_node_ports(options_.version)) hold_node_ports();
    sync_rules();
  }

  void update_endpoints(const std::string& service, std::vector<tcp::endpoint> endpoints) override {
    auto it = std::find_if(services_.begin(), services_.end(),
                           [&](const service_endpoints& s) { return s.service == service; });
    if (it == services_.end())
      throw input_error("update_endpoints",
                        "a service of this proxier; \"" + service + "\" is not one");
    service_endpoints changed = *it;
    changed.endpoints = std::move(endpoints);
    iptables::validate_services({changed});
    *it = std::move(changed);
    schedule_sync();
  }

  void stop() override {
    if (stopped_) return;
    stopped_ = true;
    sync_timer_.cancel();
    // Closing a listener resets every connection still in its accept queue
    // (docs/reference/kernel.md 3).
    for (auto& socket : held_) {
      boost::system::error_code ignored;
      socket.close(ignored);
    }
    held_.clear();
    if (linked_) {
      apply(iptables::render_teardown(installed_, options_, linked_), "teardown");
      linked_ = false;
      installed_ = {};
    }
  }

  proxier_stats stats() const override { return stats_; }

  std::string rules_listing() const override {
    // Listing costs about what installing did: the same guard.
    const auto timeout = restore_timeout(installed_.text);
    auto result = lab::run_command(&node_, {"iptables", "-t", "nat", "-S"}, {}, timeout);
    if (result.exit_status != 0 || result.timed_out)
      throw lab_error("iptables -t nat -S in namespace '" + node_.name() +
                      "' failed: " + tool_says(result, timeout, 0));
    return result.out;
  }

private:
  // One `[::]:node_port` listener per NodePort, dual stack like Go's net.Listen("tcp", ":N").
  void hold_node_ports() {
    const int backlog = node_port_backlog(spec_, node_);
    for (const auto& s : services_) {
      if (s.node_port == 0) continue;
      tcp::acceptor socket(io_);
      // Held and never accept()ed: that is the point.
      listen_node_port(socket, node_, s.node_port, backlog,
                       "holding NodePort " + std::to_string(s.node_port) + " of \"" + s.service +
                           "\" in namespace '" + node_.name() + "'");
      held_.push_back(std::move(socket));
    }
  }

  // Endpoint changes wait for the sync delay; changes arriving meanwhile ride on the same sync.
  // Until it runs, the old rules stay in force (docs/reference/kube-proxy.md section 5).
  void schedule_sync() {
    if (!started_ || stopped_ || sync_pending_) return;
    sync_pending_ = true;
    sync_timer_.expires_after(std::chrono::milliseconds(spec_.sync_delay_ms));
    std::weak_ptr<bool> alive = alive_;
    sync_timer_.async_wait([this, alive](const boost::system::error_code& ec) {
      if (ec || alive.expired()) return; // cancelled, or the proxier is gone
      sync_pending_ = false;
      if (!stopped_) sync_rules();
    });
  }

  // A full rewrite of every chain of ours, like syncProxyRules().
  void sync_rules() {
    auto plan = iptables::render_sync(services_, options_, installed_.nat_chains, !linked_);
    auto begin = std::chrono::steady_clock::now();
    apply(plan.text, "sync");
    stats_.rule_sync_ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - begin)
            .count());
    linked_ = true;
    installed_ = std::move(plan);
    ++stats_.rule_syncs;
  }

  // --noflush: only the chains we declare are flushed, as kube-proxy did, so rules others put
  // in the node's tables (the topology's, a test's) survive our syncs.
  void apply(const std::string& rendered, const char* what) const {
    const std::string text = iptables::restore_input(rendered);
    const auto timeout = restore_timeout(text);
    auto result = lab::run_command(&node_, {"iptables-restore", "--noflush"}, text, timeout);
    if (result.exit_status == 0 && !result.timed_out) return;
    std::string line = failing_line(result.err, text);
    auto lines = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
    throw lab_error(std::string("iptables-restore (") + what + ") in namespace '" + node_.name() +
                    "' failed: " + tool_says(result, timeout, lines) +
                    (line.empty() ? "" : " [input: " + line + "]"));
  }

  lab::netns node_;
  scenario::proxy_spec spec_;
  iptables::rule_options options_;
  std::vector<service_endpoints> services_; ///< desired state; rules follow at the next sync
  net::steady_timer sync_timer_;
  net::io_context& io_;
  std::vector<tcp::acceptor> held_;
  iptables::restore_plan installed_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool started_ = false;
  bool stopped_ = false;
  bool linked_ = false; ///< the jumps from the built-in chains are in place
  bool sync_pending_ = false;
  proxier_stats stats_;
};

} // namespace

std::unique_ptr<proxier> make_iptables_proxier(net::io_context& io, const lab::netns& node,
                                               const scenario::proxy_spec& spec,
                                               std::vector<service_endpoints> services) {
  return std::make_unique<iptables_proxier>(io, node, spec, std::move(services));
}

} // namespace backlog_lab::proxy_sim
