#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <cerrno>
#include <gtest/gtest.h>
#include <vector>

#include "harness/lab/socket_pool.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::lab {
namespace {

std::size_t open_fds() {
  std::size_t n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d))
      ++n;
    ::closedir(d);
  }
  return n;
}

TEST(socket_pool, sockets_belong_to_the_pool_namespace_and_the_thread_comes_home) {
  BACKLOG_LAB_REQUIRE_LAB();
  netns lab = netns::create("pool");
  auto home = netns::current().inode();
  socket_pool pool(lab, {.batch = 4, .no_delay = true});
  unique_fd fd = pool.take(AF_INET);
  ASSERT_TRUE(fd);
  EXPECT_EQ(netns::current().inode(), home);
  int one = 0;
  socklen_t len = sizeof one;
  ASSERT_EQ(::getsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, &len), 0);
  EXPECT_EQ(one, 1);
  // Listening on it shows where it lives: ss inside the lab lists it, the host's does not.
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(47113);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(::listen(fd.get(), 1), 0);
  EXPECT_NE(testing::run_ok(lab, {"ss", "-Htln", "sport", "= :47113"}).find("127.0.0.1:47113"),
            std::string::npos);
  EXPECT_EQ(testing::run_ok(netns::current(), {"ss", "-Htln", "sport", "= :47113"}), "");
}

TEST(socket_pool, a_batch_is_opened_ahead_and_clear_closes_the_spares) {
  BACKLOG_LAB_REQUIRE_LAB();
  netns lab = netns::create("pool");
  socket_pool pool(lab, {.batch = 8});
  std::size_t before = open_fds();
  unique_fd first = pool.take(AF_INET);
  ASSERT_TRUE(first);
  EXPECT_EQ(open_fds(), before + 8); // one handed out, seven spare
  unique_fd v6 = pool.take(AF_INET6);
  ASSERT_TRUE(v6);
  EXPECT_EQ(open_fds(), before + 16); // each family has its own spares
  pool.clear();
  EXPECT_EQ(open_fds(), before + 2);
}

TEST(socket_pool, the_open_file_limit_is_an_errno_not_an_exception) {
  BACKLOG_LAB_REQUIRE_LAB();
  netns lab = netns::create("pool");
  socket_pool pool(lab, {.batch = 4});
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit low = saved;
  low.rlim_cur = open_fds() + 6; // a few to spare, then EMFILE
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  std::vector<unique_fd> taken;
  int err = 0;
  for (int i = 0; i < 64; ++i) {
    unique_fd fd;
    EXPECT_NO_THROW(fd = pool.take(AF_INET));
    if (!fd) {
      err = errno;
      break;
    }
    taken.push_back(std::move(fd));
  }
  ::setrlimit(RLIMIT_NOFILE, &saved);
  EXPECT_EQ(err, EMFILE);
  EXPECT_FALSE(taken.empty());
  EXPECT_LT(taken.size(), 64u);
}

} // namespace
} // namespace backlog_lab::lab
