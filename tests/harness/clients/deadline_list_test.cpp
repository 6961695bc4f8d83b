// The intrusive deadline list: order, O(1) removal from anywhere, expiry.
#include <gtest/gtest.h>
#include <vector>

#include "harness/clients/deadline_list.hpp"

namespace backlog_lab::clients {
namespace {

using namespace std::chrono_literals;
using clock = deadline_list::clock;

std::vector<deadline_entry*> order(const deadline_list& l) {
  std::vector<deadline_entry*> out;
  for (auto* e = l.head(); e; e = e->next)
    out.push_back(e);
  return out;
}

TEST(deadline_list, keeps_push_order_and_unlinks_from_anywhere) {
  deadline_list l(100ms);
  deadline_entry a, b, c, d;
  auto t0 = clock::now();
  l.push(a, t0);
  l.push(b, t0 + 1ms);
  l.push(c, t0 + 2ms);
  l.push(d, t0 + 3ms);
  EXPECT_EQ(order(l), (std::vector<deadline_entry*>{&a, &b, &c, &d}));
  EXPECT_EQ(b.deadline, t0 + 101ms);
  deadline_list::unlink(b); // middle
  deadline_list::unlink(a); // head
  deadline_list::unlink(d); // tail
  EXPECT_EQ(order(l), (std::vector<deadline_entry*>{&c}));
  EXPECT_EQ(a.list, nullptr);
  deadline_list::unlink(a); // not on a list: nothing happens
  deadline_list::unlink(c);
  EXPECT_EQ(l.head(), nullptr);
  l.push(a, t0); // the emptied list takes new entries
  EXPECT_EQ(order(l), (std::vector<deadline_entry*>{&a}));
}

TEST(deadline_list, pops_only_what_is_due) {
  deadline_list l(10ms);
  deadline_entry a, b, c;
  auto t0 = clock::now();
  l.push(a, t0);
  l.push(b, t0 + 5ms);
  l.push(c, t0 + 20ms);
  EXPECT_EQ(l.pop_due(t0 + 9ms), nullptr);
  EXPECT_EQ(l.pop_due(t0 + 15ms), &a);
  EXPECT_EQ(l.pop_due(t0 + 15ms), &b);
  EXPECT_EQ(l.pop_due(t0 + 15ms), nullptr);
  EXPECT_EQ(b.list, nullptr);
  EXPECT_EQ(l.head(), &c);
}

} // namespace
} // namespace backlog_lab::clients
