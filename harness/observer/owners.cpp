#include "harness/observer/owners.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <system_error>
#include <thread>
#include <unordered_set>

#include "harness/core/processes.hpp"
#include "harness/core/unique_fd.hpp"

namespace backlog_lab::observer {
namespace {

bool is_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
}

// A UUID written 8-4-4-4-12 with '-' or '_' (the systemd cgroup driver replaces dashes) at the
// start of `s`; the canonical dashed form, or empty.
std::string uuid_at(std::string_view s) {
  static constexpr std::size_t groups[] = {8, 4, 4, 4, 12};
  std::string out;
  std::size_t at = 0;
  for (std::size_t g = 0; g < 5; ++g) {
    if (g > 0) {
      if (at >= s.size() || (s[at] != '-' && s[at] != '_')) return {};
      out += '-';
      ++at;
    }
    if (s.size() - at < groups[g] || !is_hex(s.substr(at, groups[g]))) return {};
    out += s.substr(at, groups[g]);
    at += groups[g];
  }
  if (at < s.size() && std::isxdigit(static_cast<unsigned char>(s[at]))) return {};
  return out;
}

std::string read_small_file(const std::string& path) {
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text;
}

} // namespace

cgroup_ids parse_cgroup_ids(std::string_view path) {
  cgroup_ids ids;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(start, end - start);
    start = end + 1;
    if (part.empty()) continue;
    // Pod: "pod<uid>" alone (cgroupfs) or at the end of "kubepods-<qos>-pod<uid>.slice".
    if (auto p = part.rfind("pod"); p != std::string_view::npos) {
      std::string uid = uuid_at(part.substr(p + 3));
      if (!uid.empty()) ids.pod_uid = uid;
    }
    // Container: "<runtime>-<64hex>.scope" (systemd) or "<64hex>" alone (cgroupfs).
    std::string_view name = part;
    if (name.size() > 6 && name.substr(name.size() - 6) == ".scope") name.remove_suffix(6);
    if (auto dash = name.rfind('-'); dash != std::string_view::npos) name.remove_prefix(dash + 1);
    if (name.size() == 64 && is_hex(name)) ids.container_id = std::string(name);
  }
  return ids;
}

std::string comm_of(pid_t pid) {
  std::string comm = read_small_file("/proc/" + std::to_string(pid) + "/comm");
  if (!comm.empty() && comm.back() == '\n') comm.pop_back();
  return comm;
}

std::string cgroup_of(pid_t pid) {
  std::string text = read_small_file("/proc/" + std::to_string(pid) + "/cgroup");
  std::string first, systemd;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + start, end - start);
    start = end + 1;
    // "hierarchy-ID:controllers:path"
    auto c1 = line.find(':');
    if (c1 == std::string_view::npos) continue;
    auto c2 = line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) continue;
    std::string_view id = line.substr(0, c1), ctl = line.substr(c1 + 1, c2 - c1 - 1);
    std::string path(line.substr(c2 + 1));
    if (id == "0" && ctl.empty()) return path;
    if (ctl == "name=systemd") systemd = path;
    if (first.empty()) first = path;
  }
  return systemd.empty() ? first : systemd;
}

namespace {

// The socket descriptors of one process whose inode is in `wanted` (every one if null), appended
// to `out`. A process that exits or cannot be read (permissions) contributes nothing.
void scan_process(pid_t pid, const std::unordered_set<std::uint32_t>* wanted,
                  std::vector<socket_fd>& out) {
  char path[64];
  char link[64];
  std::snprintf(path, sizeof path, "/proc/%d/fd", static_cast<int>(pid));
  unique_fd dir_fd(::open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd) return;
  std::unique_ptr<DIR, int (*)(DIR*)> fds(::fdopendir(dir_fd.get()), ::closedir);
  if (!fds) return;
  const int dfd = dir_fd.release(); // the stream owns it now
  while (dirent* fe = ::readdir(fds.get())) {
    if (fe->d_name[0] < '0' || fe->d_name[0] > '9') continue;
    ssize_t n = ::readlinkat(dfd, fe->d_name, link, sizeof link - 1);
    // "socket:[12345]"
    if (n < 9 || std::memcmp(link, "socket:[", 8) != 0) continue;
    link[n] = '\0';
    auto ino = static_cast<std::uint32_t>(std::strtoul(link + 8, nullptr, 10));
    if (wanted && !wanted->count(ino)) continue;
    out.push_back({ino, pid, std::atoi(fe->d_name)});
  }
}

std::vector<socket_fd> scan(const std::unordered_set<std::uint32_t>* wanted, unsigned threads) {
  const std::vector<pid_t> pids = list_pids();
  threads = std::clamp(threads, 1U, 16U);
  if (threads == 1 || pids.size() < 2) {
    std::vector<socket_fd> out;
    for (pid_t pid : pids)
      scan_process(pid, wanted, out);
    return out;
  }
  // Work is taken a process at a time: one process with most of the descriptors (a proxy's
  // workers) cannot leave the other threads idle behind a static split.
  std::atomic<std::size_t> next{0};
  std::vector<std::vector<socket_fd>> parts(threads);
  auto work = [&](std::vector<socket_fd>& out) {
    for (std::size_t i = next++; i < pids.size(); i = next++)
      scan_process(pids[i], wanted, out);
  };
  {
    std::vector<std::jthread> pool;
    for (unsigned t = 1; t < threads; ++t) {
      try {
        pool.emplace_back(work, std::ref(parts[t]));
      } catch (const std::system_error&) {
        break; // no thread to spare (RLIMIT_NPROC, memory): fewer threads do the same work
      }
    }
    work(parts[0]);
  }
  std::vector<socket_fd> out = std::move(parts[0]);
  for (unsigned t = 1; t < threads; ++t)
    out.insert(out.end(), parts[t].begin(), parts[t].end());
  return out;
}

} // namespace

std::vector<socket_fd> list_socket_fds(unsigned threads) {
  return scan(nullptr, threads);
}

owner_map owners_among(std::span<const socket_fd> fds, std::span<const std::uint32_t> inodes) {
  owner_map owners;
  std::unordered_set<std::uint32_t> wanted;
  for (std::uint32_t ino : inodes)
    if (ino != 0) wanted.insert(ino);
  // comm and cgroup read once per process, on its first match.
  std::unordered_map<pid_t, socket_holder> described;
  for (const socket_fd& s : fds) {
    if (!wanted.count(s.inode)) continue;
    auto [it, fresh] = described.try_emplace(s.pid);
    socket_holder& proto = it->second;
    if (fresh) {
      proto.pid = s.pid;
      proto.comm = comm_of(s.pid);
      proto.cgroup = cgroup_of(s.pid);
      proto.ids = parse_cgroup_ids(proto.cgroup);
    }
    socket_holder h = proto;
    h.fd = s.fd;
    owners[s.inode].push_back(std::move(h));
  }
  for (auto& [ino, holders] : owners)
    std::sort(holders.begin(), holders.end(), [](const socket_holder& a, const socket_holder& b) {
      return a.pid != b.pid ? a.pid < b.pid : a.fd < b.fd;
    });
  return owners;
}

owner_map find_owners(std::span<const std::uint32_t> inodes, unsigned threads) {
  std::unordered_set<std::uint32_t> wanted;
  for (std::uint32_t ino : inodes)
    if (ino != 0) wanted.insert(ino);
  if (wanted.empty()) return {};
  const std::vector<socket_fd> fds = scan(&wanted, threads);
  return owners_among(fds, inodes);
}

std::string format_holders(const std::vector<socket_holder>& holders) {
  std::string out;
  for (const auto& h : holders) {
    if (!out.empty()) out += ',';
    out += h.comm + "(pid=" + std::to_string(h.pid) + ",fd=" + std::to_string(h.fd) + ")";
  }
  return out;
}

} // namespace backlog_lab::observer
