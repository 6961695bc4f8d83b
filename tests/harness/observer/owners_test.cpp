// Listener owners: the cgroup parser on real-shaped paths, and find_owners against `ss -tlpn`
// for a real nginx (master + 2 workers sharing one listener) in a lab namespace.
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <regex>
#include <set>
#include <sstream>

#include "harness/lab/netns.hpp"
#include "harness/lab/process.hpp"
#include "harness/lab/program.hpp"
#include "harness/observer/census.hpp"
#include "harness/observer/owners.hpp"
#include "tests/support/leftovers.hpp"
#include "tests/support/nginx.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::observer {
namespace {

using namespace std::chrono_literals;

const std::string id64 = "4c5f6a1b2d3e4f5061728394a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e";

TEST(cgroup_ids, systemd_driver_pod_with_underscores_and_containerd_scope) {
  auto ids = parse_cgroup_ids("/kubepods.slice/kubepods-burstable.slice/"
                              "kubepods-burstable-pod1d7f3c2a_9b4e_4c1d_8e2f_0a1b2c3d4e5f.slice/"
                              "cri-containerd-" +
                              id64 + ".scope");
  EXPECT_EQ(ids.pod_uid, "1d7f3c2a-9b4e-4c1d-8e2f-0a1b2c3d4e5f");
  EXPECT_EQ(ids.container_id, id64);
}

TEST(cgroup_ids, cgroupfs_driver_pod_with_dashes_and_bare_container_id) {
  auto ids =
      parse_cgroup_ids("/kubepods/besteffort/pod0f9e8d7c-6b5a-4938-2716-a5b4c3d2e1f0/" + id64);
  EXPECT_EQ(ids.pod_uid, "0f9e8d7c-6b5a-4938-2716-a5b4c3d2e1f0");
  EXPECT_EQ(ids.container_id, id64);
}

TEST(cgroup_ids, guaranteed_pod_slice_without_container) {
  auto ids =
      parse_cgroup_ids("/kubepods.slice/kubepods-pod7a6b5c4d_3e2f_1a0b_9c8d_7e6f5a4b3c2d.slice");
  EXPECT_EQ(ids.pod_uid, "7a6b5c4d-3e2f-1a0b-9c8d-7e6f5a4b3c2d");
  EXPECT_EQ(ids.container_id, "");
}

TEST(cgroup_ids, docker_and_crio_scopes_and_plain_docker) {
  EXPECT_EQ(parse_cgroup_ids("/system.slice/docker-" + id64 + ".scope"), (cgroup_ids{"", id64}));
  EXPECT_EQ(parse_cgroup_ids("/kubepods.slice/kubepods-besteffort.slice/"
                             "kubepods-besteffort-pod7a6b5c4d_3e2f_1a0b_9c8d_7e6f5a4b3c2d.slice/"
                             "crio-" +
                             id64 + ".scope"),
            (cgroup_ids{"7a6b5c4d-3e2f-1a0b-9c8d-7e6f5a4b3c2d", id64}));
  EXPECT_EQ(parse_cgroup_ids("/docker/" + id64), (cgroup_ids{"", id64}));
}

TEST(cgroup_ids, ordinary_hosts_name_nothing) {
  EXPECT_EQ(parse_cgroup_ids("/"), cgroup_ids{});
  EXPECT_EQ(parse_cgroup_ids("/system.slice/nginx.service"), cgroup_ids{});
  EXPECT_EQ(parse_cgroup_ids("/user.slice/user-1000.slice/session-2.scope"), cgroup_ids{});
  // One hex digit short, or one too many, is not an id.
  EXPECT_EQ(parse_cgroup_ids("/docker-" + id64.substr(1) + ".scope"), cgroup_ids{});
  EXPECT_EQ(parse_cgroup_ids("/kubepods/pod0f9e8d7c-6b5a-4938-2716-a5b4c3d2e1f01"), cgroup_ids{});
}

TEST(cgroup_of, this_process_matches_proc_self_cgroup) {
  std::ifstream in("/proc/self/cgroup");
  std::string line, v2;
  while (std::getline(in, line))
    if (line.rfind("0::", 0) == 0) v2 = line.substr(3);
  if (!v2.empty()) {
    EXPECT_EQ(cgroup_of(::getpid()), v2);
  }
  EXPECT_EQ(cgroup_of(0x7ffffff0), ""); // no such process
}

// `ss -tlpn` users:(("comm",pid=P,fd=F),...) of the listener on `port`, as "comm(pid=P,fd=F)"
// strings sorted by pid then fd.
std::vector<std::string> ss_users(const lab::netns& ns, std::uint16_t port) {
  std::istringstream in(testing::run_ok(ns, {"ss", "-H", "-tlpn"}));
  std::string line;
  std::vector<std::pair<std::pair<long, long>, std::string>> found;
  static const std::regex user(R"re(\("([^"]+)",pid=(\d+),fd=(\d+)\))re");
  while (std::getline(in, line)) {
    if (line.find(":" + std::to_string(port) + " ") == std::string::npos) continue;
    for (std::sregex_iterator it(line.begin(), line.end(), user), end; it != end; ++it)
      found.push_back({{std::stol((*it)[2]), std::stol((*it)[3])},
                       (*it)[1].str() + "(pid=" + (*it)[2].str() + ",fd=" + (*it)[3].str() + ")"});
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& f : found)
    out.push_back(f.second);
  return out;
}

TEST(find_owners, nginx_master_and_workers_as_ss_names_them) {
  BACKLOG_LAB_REQUIRE_LAB();
  if (!lab::have_program("nginx")) GTEST_SKIP() << "nginx not installed";
  if (!lab::have_program("ss")) GTEST_SKIP() << "ss not installed";
  lab::netns ns = lab::netns::create("owners");
  const std::filesystem::path dir = testing::nginx_test_prefix("bl-owners");
  {
    lab::program nginx = lab::program::start(
        &ns,
        {"nginx", {"nginx", "-p", dir.string(), "-c", (dir / "nginx.conf").string()}, {}, {}, {}});
    ASSERT_EQ(lab::wait_until_accepting(nginx, ns, "127.0.0.1", 8080, 5s), lab::readiness::ready)
        << nginx.last_lines(true);
    ASSERT_TRUE(testing::eventually([&] { return nginx.processes().size() == 3; }));

    census c = census_reader(&ns).read({.summary_only = true});
    ASSERT_EQ(c.listeners.size(), 1u);
    std::vector<std::uint32_t> inodes{c.listeners[0].inode};
    owner_map owners = find_owners(inodes);
    ASSERT_EQ(owners.size(), 1u);
    const auto& holders = owners.at(c.listeners[0].inode);
    ASSERT_EQ(holders.size(), 3u) << format_holders(holders);
    std::vector<std::string> ours;
    std::set<pid_t> pids;
    for (const auto& h : holders) {
      ours.push_back(format_holders({h}));
      pids.insert(h.pid);
      EXPECT_EQ(h.comm, "nginx");
      EXPECT_EQ(h.cgroup, cgroup_of(h.pid));
    }
    EXPECT_EQ(ours, ss_users(ns, 8080));
    // The pass split over threads (the exporter's) finds the same holders in the same order.
    EXPECT_EQ(format_holders(find_owners(inodes, 2).at(c.listeners[0].inode)),
              format_holders(holders));
    auto tree = nginx.processes();
    EXPECT_EQ(pids, std::set<pid_t>(tree.begin(), tree.end()));
  }
  std::filesystem::remove_all(dir);
}

TEST(list_socket_fds, names_our_sockets_by_inode_pid_and_fd_and_skips_pipes) {
  int sv[2];
  int pipe_fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ASSERT_EQ(::pipe(pipe_fds), 0);
  auto inode_of = [](int fd) {
    struct stat st {};
    EXPECT_EQ(::fstat(fd, &st), 0);
    return static_cast<std::uint32_t>(st.st_ino);
  };
  const std::uint32_t socket_inode = inode_of(sv[0]);
  const std::uint32_t pipe_inode = inode_of(pipe_fds[0]);
  for (unsigned threads : {1U, 3U}) {
    auto fds = list_socket_fds(threads);
    auto ours = [&](std::uint32_t inode, int fd) {
      return std::any_of(fds.begin(), fds.end(), [&](const socket_fd& s) {
        return s.inode == inode && s.pid == ::getpid() && s.fd == fd;
      });
    };
    EXPECT_TRUE(ours(socket_inode, sv[0])) << threads << " threads";
    EXPECT_FALSE(ours(pipe_inode, pipe_fds[0])) << threads << " threads";
    std::vector<std::uint32_t> inodes{socket_inode};
    owner_map owners = owners_among(fds, inodes);
    ASSERT_EQ(owners.size(), 1u);
    EXPECT_EQ(owners.at(socket_inode).front().pid, ::getpid());
    EXPECT_EQ(owners.at(socket_inode).front().fd, sv[0]);
  }
  for (int fd : {sv[0], sv[1], pipe_fds[0], pipe_fds[1]})
    ::close(fd);
}

TEST(find_owners, unknown_and_zero_inodes_resolve_to_nothing) {
  std::vector<std::uint32_t> inodes{0, 0xfffffff0u};
  EXPECT_TRUE(find_owners(inodes).empty());
}

} // namespace
} // namespace backlog_lab::observer
