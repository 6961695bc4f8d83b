#pragma once
// Endpoint choice of kube-proxy's userspace mode (pkg/proxy/userspace/roundrobin.go,
// LoadBalancerRR): shuffle once, then round robin; optional ClientIP affinity with a TTL.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "harness/core/asio.hpp"

namespace backlog_lab::proxy_sim {

/// The random source of every shuffle: seeded once per proxier, so a seed replays a run.
class shuffle_rng {
public:
  /// A SplitMix64 stream from `seed` (small, portable: same sequence on every standard library).
  explicit shuffle_rng(uint64_t seed) : state_(seed) {}
  /// The next 64 random bits.
  uint64_t next();
  /// Uniform in [0, bound) for bound > 0 (modulo bias is irrelevant for endpoint counts).
  std::size_t below(std::size_t bound) { return static_cast<std::size_t>(next() % bound); }

private:
  uint64_t state_;
};

/// One Service's balancer state: kube-proxy's `balancerState` plus its `affinityPolicy`.
class round_robin {
public:
  using clock = std::chrono::steady_clock;

  /// `client_ip_affinity` = sessionAffinity ClientIP; `affinity_ttl` its timeout.
  round_robin(bool client_ip_affinity, std::chrono::seconds affinity_ttl)
      : affinity_(client_ip_affinity), ttl_(affinity_ttl) {}

  /// Replaces the endpoints as OnEndpointsUpdate does: the same set (in any order) keeps the
  /// order, index and affinities; a different set is shuffled with `rng`, the index goes back to
  /// 0 and affinities that point at endpoints no longer (or not yet) listed are dropped.
  void update(std::vector<tcp::endpoint> endpoints, shuffle_rng& rng);

  /// NextEndpoint: the affinity's endpoint if the client has a live one and `affinity_reset` is
  /// false (kube-proxy sets it after a failed dial), else the next in turn; nullopt when there
  /// are no endpoints. With affinity on, the chosen endpoint becomes the client's affinity.
  std::optional<tcp::endpoint> next(const net::ip::address& client, bool affinity_reset,
                                    clock::time_point now);

  /// Endpoints in round-robin order (shuffled).
  const std::vector<tcp::endpoint>& endpoints() const noexcept { return endpoints_; }
  /// Index of the endpoint the next non-affine pick takes.
  std::size_t index() const noexcept { return index_; }
  /// Number of clients with an affinity entry (expired ones included until replaced).
  std::size_t affinity_entries() const noexcept { return affinity_map_.size(); }

private:
  struct affinity_state {
    tcp::endpoint endpoint;
    clock::time_point last_used;
  };
  bool affinity_;
  std::chrono::seconds ttl_;
  std::vector<tcp::endpoint> endpoints_;
  std::size_t index_ = 0;
  std::map<net::ip::address, affinity_state> affinity_map_;
};

/// The address as Go's RemoteAddr would key it: IPv4-mapped IPv6 (::ffff:a.b.c.d) becomes IPv4.
net::ip::address unmapped(const net::ip::address& address);

} // namespace backlog_lab::proxy_sim
