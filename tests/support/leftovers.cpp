#include "tests/support/leftovers.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "harness/lab/process.hpp"

namespace backlog_lab::testing {
namespace {

std::vector<std::string> list_dir(const std::string& path) {
  std::vector<std::string> names;
  DIR* dir = ::opendir(path.c_str());
  if (!dir) return names;
  while (dirent* e = ::readdir(dir))
    if (e->d_name[0] != '.') names.emplace_back(e->d_name);
  ::closedir(dir);
  return names;
}

bool all_digits(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

std::string read_link(const std::string& path) {
  char buf[256];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// "net:[4026532]" -> 4026532, anything else -> 0.
unsigned long net_inode(const std::string& link) {
  if (link.rfind("net:[", 0) != 0) return 0;
  return std::stoul(link.substr(5));
}

} // namespace

std::vector<std::string> holders_of(const std::set<unsigned long>& inodes) {
  std::vector<std::string> found;
  auto check = [&](const std::string& path) {
    unsigned long ino = net_inode(read_link(path));
    if (ino && inodes.count(ino)) found.push_back(path + " -> net:[" + std::to_string(ino) + "]");
  };
  for (const auto& pid : list_dir("/proc")) {
    if (!all_digits(pid)) continue;
    for (const auto& tid : list_dir("/proc/" + pid + "/task"))
      check("/proc/" + pid + "/task/" + tid + "/ns/net");
    for (const auto& fd : list_dir("/proc/" + pid + "/fd"))
      check("/proc/" + pid + "/fd/" + fd);
  }
  for (const auto& name : list_dir("/run/netns")) {
    struct stat st {};
    if (::stat(("/run/netns/" + name).c_str(), &st) == 0 && inodes.count(st.st_ino))
      found.push_back("/run/netns/" + name);
  }
  // A socket keeps its namespace alive without any net:[] link; ask the kernel for our own.
  for (const auto& fd : list_dir("/proc/self/fd")) {
    if (read_link("/proc/self/fd/" + fd).rfind("socket:", 0) != 0) continue;
    int ns_fd = ::ioctl(std::stoi(fd), SIOCGSKNS);
    if (ns_fd < 0) continue;
    struct stat st {};
    if (::fstat(ns_fd, &st) == 0 && inodes.count(st.st_ino))
      found.push_back("socket fd " + fd + " of this process");
    ::close(ns_fd);
  }
  return found;
}

unsigned long long process_start_ticks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close_paren = text.rfind(')');
  if (close_paren == std::string::npos) return 0;
  std::istringstream rest(text.substr(close_paren + 2));
  std::string field;
  // Fields after "(comm)": state is field 3, starttime field 22.
  for (int i = 3; i < 22 && rest >> field;)
    ++i;
  unsigned long long ticks = 0;
  rest >> ticks;
  return ticks;
}

bool process_running(pid_t pid, unsigned long long start_ticks) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close_paren = text.rfind(')');
  if (close_paren == std::string::npos || close_paren + 2 >= text.size()) return false;
  if (text[close_paren + 2] == 'Z' || text[close_paren + 2] == 'X') return false;
  return start_ticks == 0 || process_start_ticks(pid) == start_ticks;
}

std::vector<std::string> current_links() {
  auto r = lab::run_command(nullptr, {"ip", "-j", "link", "show"});
  std::vector<std::string> names;
  for (const auto& link : nlohmann::json::parse(r.out))
    names.push_back(link.at("ifname"));
  return names;
}

std::vector<std::string> named_namespaces() {
  auto r = lab::run_command(nullptr, {"ip", "netns", "list"});
  std::vector<std::string> names;
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line))
    if (!line.empty()) names.push_back(line.substr(0, line.find(' ')));
  return names;
}

std::size_t open_descriptors() {
  return list_dir("/proc/self/fd").size();
}

unsigned long descriptor_limit_allowing(int more) {
  int free_below = 0;
  for (int fd = 0;; ++fd) {
    if (::fcntl(fd, F_GETFD) >= 0) continue;
    if (free_below == more) return static_cast<unsigned long>(fd);
    ++free_below;
  }
}

std::string lines(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items)
    out += item + "\n";
  return out;
}

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

} // namespace backlog_lab::testing
