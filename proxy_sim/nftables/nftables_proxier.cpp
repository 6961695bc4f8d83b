#include "proxy_sim/nftables/nftables_proxier.hpp"

#include <algorithm>
#include <chrono>
#include <map>

#include "harness/core/error.hpp"
#include "harness/lab/process.hpp"
#include "proxy_sim/iptables/rules.hpp"
#include "proxy_sim/nftables/localhost_node_ports.hpp"
#include "proxy_sim/nftables/rules.hpp"
#include "proxy_sim/rule_sync_thread.hpp"

namespace backlog_lab::proxy_sim {
namespace {

// Hang guard, not a target: nft commits thousands of lines in well under a second.
constexpr auto nft_timeout = std::chrono::seconds(20);
// syncProxyRules deletes a flushed chain once it has been stale for a second.
constexpr auto stale_chain_age = std::chrono::seconds(1);

class nftables_proxier final : public proxier {
public:
  nftables_proxier(net::io_context& io, const lab::netns& node, const scenario::proxy_spec& spec,
                   std::vector<service_endpoints> services, uint64_t seed)
      : node_(node.duplicate()), spec_(spec), options_(nftables::make_rule_options(spec)),
        services_(std::move(services)), sync_timer_(io), tool_(io) {
    // The same checks as the iptables mode's: names, IPv4 addresses, distinct NodePorts.
    iptables::validate_services(services_);
    if (spec.localhost_node_ports)
      localhost_ = std::make_unique<nftables::localhost_node_ports>(io, node_, spec, seed);
  }

  ~nftables_proxier() override {
    try {
      stop();
    } catch (...) {
      // The namespace goes away with its table anyway.
    }
  }

  void start() override {
    if (started_) return;
    started_ = true;
    sync_rules();
    tool_.finish(); // the install completes before start() returns
    if (stats_.rule_sync_failures > 0)
      throw lab_error("installing the nftables rules: " + stats_.sync_errors.front());
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
    tool_.finish(); // a sync in flight lands first, so the teardown follows it
    if (localhost_) localhost_->shutdown();
    if (installed_) {
      // CleanupLeftovers: the whole table goes, in one transaction.
      auto error = apply(nftables::render_teardown());
      if (!error.empty()) throw lab_error("teardown: " + error);
      installed_ = false;
    }
  }

  proxier_stats stats() const override {
    proxier_stats s = stats_;
    if (localhost_) localhost_->add_stats(s);
    return s;
  }

  bool sync_running() const override { return tool_.busy(); }

  std::string rules_listing() const override {
    auto result =
        lab::run_command(&node_, {"nft", "list", "table", "ip", "kube-proxy"}, {}, nft_timeout);
    if (result.exit_status != 0 || result.timed_out)
      throw lab_error("nft list table ip kube-proxy in namespace '" + node_.name() +
                      "' failed: " + result.err);
    return result.out;
  }

private:
  // Endpoint changes wait for the sync delay; changes arriving meanwhile ride on the same sync.
  void schedule_sync() {
    if (!started_ || stopped_) return;
    if (tool_.busy()) { // nft is running: one more sync follows it
      resync_ = true;
      return;
    }
    if (sync_pending_) return;
    sync_pending_ = true;
    sync_timer_.expires_after(std::chrono::milliseconds(spec_.sync_delay_ms));
    std::weak_ptr<bool> alive = alive_;
    sync_timer_.async_wait([this, alive](const boost::system::error_code& ec) {
      if (ec || alive.expired()) return;
      sync_pending_ = false;
      if (stopped_) return;
      if (tool_.busy())
        resync_ = true;
      else
        sync_rules();
    });
  }

  // syncProxyRules(): first the chains stale for a second are deleted (their own
  // transaction), then one transaction rewrites the table; nft commits it whole or not at all.
  // Both run on the sync thread; the outcome is recorded back on the io_context.
  void sync_rules() {
    const auto begin = std::chrono::steady_clock::now();
    std::string stale_deletion = take_old_stale_chains(begin);
    std::set<std::string> known = installed_chains_;
    for (const auto& [c, since] : stale_)
      known.insert(c);
    auto plan = std::make_shared<nftables::sync_plan>(
        nftables::render_sync(services_, options_, known, installed_sets_, !installed_));
    tool_.run(
        [this, stale_deletion = std::move(stale_deletion), plan] {
          // A failed deletion leaves the chains in the table; the next sync flushes them again.
          if (!stale_deletion.empty()) apply(stale_deletion);
          return apply(plan->text);
        },
        [this, plan, known = std::move(known), begin](const std::string& error) {
          sync_finished(error, *plan, known, begin);
        });
  }

  void sync_finished(const std::string& error, const nftables::sync_plan& plan,
                     const std::set<std::string>& known,
                     std::chrono::steady_clock::time_point begin) {
    if (!error.empty()) {
      // kube-proxy logs it and retries later; the rules in place stay.
      ++stats_.rule_sync_failures;
      if (stats_.sync_errors.size() < 5) stats_.sync_errors.push_back(error);
    } else {
      for (const auto& c : known)
        if (!plan.service_chains.count(c))
          stale_.emplace(c, begin); // keeps the first time it went stale
        else
          stale_.erase(c);
      installed_chains_ = plan.service_chains;
      installed_sets_ = plan.affinity_sets;
      installed_ = true;
      ++stats_.rule_syncs;
      stats_.rule_sync_ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - begin)
              .count());
      // SyncNodePorts follows the committed table (and stays out of the sync's nft time):
      // listeners for the Services with endpoints now.
      if (localhost_ && !stopped_) localhost_->sync(services_);
    }
    if (resync_ && !stopped_) {
      resync_ = false;
      schedule_sync();
    }
  }

  // The chains stale for a second, taken off the stale list, as one deletion transaction
  // (empty if none).
  std::string take_old_stale_chains(std::chrono::steady_clock::time_point now) {
    std::set<std::string> old;
    for (const auto& [c, since] : stale_)
      if (now - since >= stale_chain_age) old.insert(c);
    if (old.empty()) return {};
    for (const auto& c : old)
      stale_.erase(c);
    return nftables::render_stale_chain_deletion(old);
  }

  // One `nft -f -` run in the node's namespace; returns the error, or an empty string.
  std::string apply(const std::string& text) const {
    auto result = lab::run_command(&node_, {"nft", "-f", "-"}, text, nft_timeout);
    if (result.exit_status == 0 && !result.timed_out) return {};
    std::string err = result.err;
    while (!err.empty() && (err.back() == '\n' || err.back() == ' '))
      err.pop_back();
    return "nft -f in namespace '" + node_.name() + "' failed: " +
           (result.timed_out ? "killed after " + std::to_string(nft_timeout.count()) + " s"
                             : "exit status " + std::to_string(result.exit_status)) +
           (err.empty() ? "; nothing on stderr" : "; stderr: " + err);
  }

  lab::netns node_;
  scenario::proxy_spec spec_;
  nftables::rule_options options_;
  std::vector<service_endpoints> services_; ///< desired state; rules follow at the next sync
  net::steady_timer sync_timer_;
  std::set<std::string> installed_chains_; ///< per-service chains of the last committed sync
  std::set<std::string> installed_sets_;   ///< affinity sets of the last committed sync
  std::map<std::string, std::chrono::steady_clock::time_point> stale_; ///< flushed, not deleted
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool started_ = false;
  bool stopped_ = false;
  bool installed_ = false;
  bool sync_pending_ = false;
  bool resync_ = false; ///< endpoints changed while nft ran: sync again after it
  proxier_stats stats_;
  std::unique_ptr<nftables::localhost_node_ports> localhost_; ///< 1.37's gate on, else null
  rule_sync_thread tool_; ///< last: destroyed first, so no completion outlives the members
};

} // namespace

std::unique_ptr<proxier> make_nftables_proxier(net::io_context& io, const lab::netns& node,
                                               const scenario::proxy_spec& spec,
                                               std::vector<service_endpoints> services,
                                               uint64_t seed) {
  return std::make_unique<nftables_proxier>(io, node, spec, std::move(services), seed);
}

} // namespace backlog_lab::proxy_sim
