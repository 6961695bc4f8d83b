#include "harness/lab/sysctl.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "harness/core/error.hpp"
#include "harness/core/unique_fd.hpp"

namespace backlog_lab::lab {
namespace {

std::string trim(std::string s) {
  auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

// Normalises whitespace so "32768 60999" and "32768\t60999" compare equal.
std::string squeeze(const std::string& s) {
  std::string out;
  bool space = false;
  for (char c : trim(s)) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = true;
    } else {
      if (space && !out.empty()) out += ' ';
      out += c;
      space = false;
    }
  }
  return out;
}

} // namespace

std::string sysctl_path(const std::string& key) {
  // Only per-namespace keys: writing anything else would change the host.
  if (key.rfind("net.", 0) != 0 || key.find("..") != std::string::npos ||
      key.find('/') != std::string::npos || key.size() < 5)
    throw input_error(
        "sysctl '" + key + "'",
        "a per-network-namespace key starting with 'net.' such as net.core.somaxconn");
  std::string path = "/proc/sys/" + key;
  std::replace(path.begin() + 10, path.end(), '.', '/');
  return path;
}

bool sysctl_exists(const netns& ns, const std::string& key) {
  netns_scope in(ns);
  return ::access(sysctl_path(key).c_str(), F_OK) == 0;
}

std::string read_sysctl(const netns& ns, const std::string& key) {
  std::string path = sysctl_path(key);
  netns_scope in(ns);
  unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    int err = errno;
    if (err == ENOENT) throw lab_error("sysctl " + key + ": this kernel has no such key");
    throw lab_error(errno_message("reading sysctl " + key, err));
  }
  char buf[512];
  ssize_t n = ::read(fd.get(), buf, sizeof buf);
  if (n < 0) throw lab_error(errno_message("reading sysctl " + key, errno));
  return trim(std::string(buf, static_cast<size_t>(n)));
}

void write_sysctl(const netns& ns, const std::string& key, const std::string& value) {
  std::string path = sysctl_path(key);
  {
    netns_scope in(ns);
    unique_fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) {
      int err = errno;
      if (err == ENOENT)
        throw lab_error("sysctl " + key + ": this kernel (" + "namespace '" + ns.name() +
                        "') has no such key");
      throw lab_error(
          errno_message("opening sysctl " + key + " in namespace '" + ns.name() + "'", err));
    }
    ssize_t n = ::write(fd.get(), value.data(), value.size());
    int err = errno;
    if (n != static_cast<ssize_t>(value.size()))
      throw lab_error(errno_message("sysctl " + key + "=" + value +
                                        " refused by the kernel in "
                                        "namespace '" +
                                        ns.name() + "'",
                                    err));
  }
  std::string stored = read_sysctl(ns, key);
  if (squeeze(stored) != squeeze(value))
    throw lab_error("sysctl " + key + "=" + value + " in namespace '" + ns.name() +
                    "': the kernel stored '" + stored + "' instead");
}

void apply_sysctls(const netns& ns, const sysctl_map& values) {
  for (const auto& [key, value] : values)
    write_sysctl(ns, key, value);
}

} // namespace backlog_lab::lab
