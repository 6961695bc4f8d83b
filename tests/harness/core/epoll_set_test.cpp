#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <future>
#include <gtest/gtest.h>
#include <vector>

#include "harness/core/epoll_set.hpp"

namespace backlog_lab {
namespace {

using namespace std::chrono_literals;

/// Counts the events it is handed.
struct counting_watcher final : fd_watcher {
  std::vector<std::uint32_t> seen;
  void on_events(std::uint32_t events) override { seen.push_back(events); }
};

/// A connected pair of stream sockets: [0] is watched, [1] is the peer that writes.
struct socket_pair {
  socket_pair() {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    watched.reset(fds[0]);
    peer.reset(fds[1]);
  }
  unique_fd watched;
  unique_fd peer;
};

void poke(const unique_fd& fd) {
  ASSERT_EQ(::write(fd.get(), "x", 1), 1);
}

/// An io_context and an epoll_set on it; settle() runs it until it has nothing left to do now
/// (the set re-arms when idle).
class epoll_set_test : public ::testing::Test {
protected:
  /// Watches `pair.watched` for arrivals (edge-triggered) on behalf of `w`.
  epoll_set::token watch(const socket_pair& pair, counting_watcher& w) {
    auto t = set->add(pair.watched.get(), EPOLLIN | EPOLLET, &w);
    EXPECT_NE(t, 0u);
    return t;
  }
  void settle() {
    if (io.stopped()) io.restart();
    io.run_for(50ms);
  }
  void TearDown() override { set->stop(); }

  net::io_context io{1};
  std::shared_ptr<epoll_set> set = epoll_set::create(io);
};

TEST_F(epoll_set_test, delivers_each_arrival_to_its_watcher) {
  socket_pair a, b;
  counting_watcher wa, wb;
  watch(a, wa);
  watch(b, wb);
  set->start();
  poke(a.peer);
  settle();
  EXPECT_EQ(wa.seen.size(), 1u);
  EXPECT_TRUE(wb.seen.empty());
  poke(b.peer);
  poke(a.peer);
  settle();
  EXPECT_EQ(wa.seen.size(), 2u); // edge-triggered: one event per arrival, none while idle
  EXPECT_EQ(wb.seen.size(), 1u);
}

TEST_F(epoll_set_test,
       a_forgotten_registration_gets_nothing_even_while_a_copy_of_its_socket_lives) {
  socket_pair old_pair;
  counting_watcher old_watcher;
  auto old_token = watch(old_pair, old_watcher);
  set->start();
  // A forked child between fork() and exec() holds copies of every descriptor: closing ours
  // then leaves the socket in the epoll set, and its events keep coming with the old token.
  unique_fd child_copy(::dup(old_pair.watched.get()));
  set->forget(old_token);
  old_pair.watched.reset();
  // The slot is taken again at once by a new registration.
  socket_pair new_pair;
  counting_watcher new_watcher;
  EXPECT_NE(watch(new_pair, new_watcher), old_token);
  poke(old_pair.peer);
  settle();
  EXPECT_TRUE(old_watcher.seen.empty());
  EXPECT_TRUE(new_watcher.seen.empty()) << "an event of the old socket reached the new watcher";
  poke(new_pair.peer);
  settle();
  EXPECT_EQ(new_watcher.seen.size(), 1u);
}

/// On its first event, forgets another registration (as a proxier closing both sockets of a
/// session does on one socket's event) and frees that registration's slot for someone else.
struct forgetting_watcher final : fd_watcher {
  epoll_set* set = nullptr;
  epoll_set::token other = 0;
  int* delivered = nullptr;
  void on_events(std::uint32_t) override {
    ++*delivered;
    set->forget(other);
  }
};

TEST_F(epoll_set_test, a_registration_forgotten_earlier_in_a_batch_gets_no_later_event_of_it) {
  // Both sockets are ready before the set looks, so one epoll_wait() returns both events; the
  // first handled forgets the other, whose watcher may then be freed (the proxier's sessions
  // are freed at the batch's end, the client groups' slots reused): its event, still in the
  // batch, must be dropped.
  socket_pair a, b;
  int delivered = 0;
  forgetting_watcher wa, wb;
  wa.set = wb.set = set.get();
  wa.delivered = wb.delivered = &delivered;
  auto ta = set->add(a.watched.get(), EPOLLIN | EPOLLET, &wa);
  auto tb = set->add(b.watched.get(), EPOLLIN | EPOLLET, &wb);
  ASSERT_NE(ta, 0u);
  ASSERT_NE(tb, 0u);
  wa.other = tb;
  wb.other = ta;
  poke(a.peer);
  poke(b.peer);
  set->start();
  settle();
  EXPECT_EQ(delivered, 1) << "an event reached a watcher forgotten earlier in the same batch";
}

TEST_F(epoll_set_test, an_empty_set_lets_the_io_context_return_and_wakes_for_a_new_socket) {
  set->start();
  counting_watcher refused;
  EXPECT_EQ(set->add(-1, EPOLLIN, &refused), 0u); // a failed add must not count as watched
  EXPECT_EQ(errno, EBADF);
  socket_pair a;
  counting_watcher wa;
  auto t = watch(a, wa);
  settle();
  set->forget(t);
  // Nothing registered: run() must return by itself (a future with a hang guard).
  io.restart();
  auto done = std::async(std::launch::async, [this] { io.run(); });
  if (done.wait_for(5s) != std::future_status::ready) {
    io.stop();
    done.wait();
    FAIL() << "io_context::run() kept waiting for an empty epoll set";
  }
  // A socket registered afterwards is watched again.
  socket_pair b;
  counting_watcher wb;
  watch(b, wb);
  poke(b.peer);
  settle();
  EXPECT_EQ(wb.seen.size(), 1u);
}

TEST_F(epoll_set_test, stop_delivers_nothing_more) {
  socket_pair a;
  counting_watcher w;
  watch(a, w);
  set->start();
  settle();
  set->stop();
  poke(a.peer);
  settle();
  EXPECT_TRUE(w.seen.empty());
}

} // namespace
} // namespace backlog_lab
