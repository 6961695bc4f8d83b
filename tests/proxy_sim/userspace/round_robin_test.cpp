#include <gtest/gtest.h>
#include <set>

#include "proxy_sim/userspace/round_robin.hpp"

namespace backlog_lab::proxy_sim {
namespace {

using namespace std::chrono_literals;

tcp::endpoint ep(const char* address, uint16_t port = 8080) {
  return {net::ip::make_address(address), port};
}

const net::ip::address client_a = net::ip::make_address("198.51.100.10");
const net::ip::address client_b = net::ip::make_address("198.51.100.11");
const round_robin::clock::time_point t0{};

TEST(round_robin, takes_each_endpoint_once_per_round_in_shuffled_order) {
  shuffle_rng rng(7);
  round_robin rr(false, 10800s);
  std::vector<tcp::endpoint> in{ep("203.0.113.10"), ep("203.0.113.11"), ep("203.0.113.12"),
                                ep("203.0.113.13")};
  rr.update(in, rng);
  std::vector<tcp::endpoint> picks;
  for (int i = 0; i < 8; ++i)
    picks.push_back(*rr.next(client_a, false, t0));
  EXPECT_EQ(std::set<tcp::endpoint>(picks.begin(), picks.begin() + 4),
            std::set<tcp::endpoint>(in.begin(), in.end()));
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(picks[i], picks[i + 4]);
  EXPECT_EQ(std::vector<tcp::endpoint>(picks.begin(), picks.begin() + 4), rr.endpoints());
}

TEST(round_robin, shuffle_depends_on_seed_only) {
  std::vector<tcp::endpoint> in;
  for (int i = 0; i < 10; ++i)
    in.push_back(ep("203.0.113.10", static_cast<uint16_t>(8000 + i)));
  auto order = [&](uint64_t seed) {
    shuffle_rng rng(seed);
    round_robin rr(false, 1s);
    rr.update(in, rng);
    return rr.endpoints();
  };
  EXPECT_EQ(order(1), order(1));
  EXPECT_NE(order(1), order(2));
  EXPECT_NE(order(1), in); // 10! orders: the identity would be a broken shuffle
}

TEST(round_robin, no_endpoints_gives_nothing) {
  shuffle_rng rng(1);
  round_robin rr(true, 10s);
  EXPECT_FALSE(rr.next(client_a, false, t0));
  rr.update({ep("203.0.113.10")}, rng);
  EXPECT_TRUE(rr.next(client_a, false, t0));
  rr.update({}, rng);
  EXPECT_FALSE(rr.next(client_a, false, t0));
}

TEST(round_robin, same_set_keeps_order_and_index_new_set_starts_over) {
  shuffle_rng rng(3);
  round_robin rr(false, 1s);
  std::vector<tcp::endpoint> in{ep("203.0.113.10"), ep("203.0.113.11"), ep("203.0.113.12")};
  rr.update(in, rng);
  auto order = rr.endpoints();
  rr.next(client_a, false, t0);
  ASSERT_EQ(rr.index(), 1u);
  rr.update({in[2], in[0], in[1]}, rng); // same set, other order: no change (slicesEquiv)
  EXPECT_EQ(rr.endpoints(), order);
  EXPECT_EQ(rr.index(), 1u);
  rr.update({in[0], in[1]}, rng);
  EXPECT_EQ(rr.index(), 0u);
  EXPECT_EQ(rr.endpoints().size(), 2u);
}

TEST(round_robin, client_ip_affinity_sticks_until_ttl_or_reset) {
  shuffle_rng rng(5);
  round_robin rr(true, 10s);
  rr.update({ep("203.0.113.10"), ep("203.0.113.11"), ep("203.0.113.12")}, rng);
  auto first = *rr.next(client_a, false, t0);
  for (int i = 1; i <= 5; ++i)
    EXPECT_EQ(*rr.next(client_a, false, t0 + i * 1s), first);
  // Another client takes the next endpoint in turn.
  auto other = *rr.next(client_b, false, t0);
  EXPECT_NE(other, first);
  // Age is measured from the last use (5 s); 9.9 s later truncates to 9 < 10: still affine.
  EXPECT_EQ(*rr.next(client_a, false, t0 + 14900ms), first);
  // 10 s after the last use the entry has expired: the next in turn.
  auto after_ttl = *rr.next(client_a, false, t0 + 24900ms);
  EXPECT_NE(after_ttl, first);
  // A failed dial resets affinity: next in turn, and that becomes the new affinity.
  auto reset = *rr.next(client_a, true, t0 + 25s);
  EXPECT_NE(reset, after_ttl);
  EXPECT_EQ(*rr.next(client_a, false, t0 + 26s), reset);
}

TEST(round_robin, removing_an_endpoint_drops_its_affinities) {
  shuffle_rng rng(11);
  round_robin rr(true, 10800s);
  std::vector<tcp::endpoint> in{ep("203.0.113.10"), ep("203.0.113.11")};
  rr.update(in, rng);
  auto a = *rr.next(client_a, false, t0);
  auto b = *rr.next(client_b, false, t0);
  ASSERT_NE(a, b);
  rr.update({b}, rng);
  EXPECT_EQ(rr.affinity_entries(), 1u);
  EXPECT_EQ(*rr.next(client_a, false, t0), b);
  EXPECT_EQ(*rr.next(client_b, false, t0), b);
}

TEST(round_robin, v4_mapped_client_keys_as_v4) {
  EXPECT_EQ(unmapped(net::ip::make_address("::ffff:198.51.100.10")), client_a);
  EXPECT_EQ(unmapped(client_a), client_a);
  EXPECT_TRUE(unmapped(net::ip::make_address("2001:db8::1")).is_v6());
}

} // namespace
} // namespace backlog_lab::proxy_sim
