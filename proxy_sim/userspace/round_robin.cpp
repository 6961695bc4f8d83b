#include "proxy_sim/userspace/round_robin.hpp"

#include <algorithm>

namespace backlog_lab::proxy_sim {

uint64_t shuffle_rng::next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

namespace {

bool same_set(std::vector<tcp::endpoint> a, std::vector<tcp::endpoint> b) {
  if (a.size() != b.size()) return false;
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  return a == b;
}

} // namespace

void round_robin::update(std::vector<tcp::endpoint> endpoints, shuffle_rng& rng) {
  if (same_set(endpoints_, endpoints)) return;
  // updateAffinityMap: an endpoint in only one of the two lists loses its affinities.
  for (auto it = affinity_map_.begin(); it != affinity_map_.end();) {
    bool in_new =
        std::find(endpoints.begin(), endpoints.end(), it->second.endpoint) != endpoints.end();
    it = in_new ? std::next(it) : affinity_map_.erase(it);
  }
  // slice.ShuffleStrings: Fisher-Yates; a fresh list starts at index 0.
  for (std::size_t i = endpoints.size(); i > 1; --i)
    std::swap(endpoints[i - 1], endpoints[rng.below(i)]);
  endpoints_ = std::move(endpoints);
  index_ = 0;
}

std::optional<tcp::endpoint> round_robin::next(const net::ip::address& client, bool affinity_reset,
                                               clock::time_point now) {
  if (endpoints_.empty()) return std::nullopt;
  if (affinity_ && !affinity_reset) {
    auto it = affinity_map_.find(client);
    // roundrobin.go truncates the age to whole seconds before comparing with the TTL.
    if (it != affinity_map_.end() &&
        std::chrono::duration_cast<std::chrono::seconds>(now - it->second.last_used) < ttl_) {
      it->second.last_used = now;
      return it->second.endpoint;
    }
  }
  tcp::endpoint chosen = endpoints_[index_];
  index_ = (index_ + 1) % endpoints_.size();
  if (affinity_) affinity_map_[client] = affinity_state{chosen, now};
  return chosen;
}

net::ip::address unmapped(const net::ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped())
    return net::ip::make_address_v4(net::ip::v4_mapped, address.to_v6());
  return address;
}

} // namespace backlog_lab::proxy_sim
