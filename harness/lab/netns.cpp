#include "harness/lab/netns.hpp"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <mutex>
#include <string>

#include "harness/core/error.hpp"
#include "harness/core/unique_fd.hpp"

namespace backlog_lab::lab {
namespace {

void bring_loopback_up() {
  unique_fd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) throw lab_error(errno_message("socket for loopback setup", errno));
  ifreq req{};
  std::snprintf(req.ifr_name, IFNAMSIZ, "lo");
  int rc = ::ioctl(fd.get(), SIOCGIFFLAGS, &req);
  if (rc == 0) {
    req.ifr_flags |= IFF_UP;
    rc = ::ioctl(fd.get(), SIOCSIFFLAGS, &req);
  }
  if (rc != 0) throw lab_error(errno_message("bringing up loopback", errno));
}

void write_file(const std::string& path, const std::string& text) {
  unique_fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) throw lab_error(errno_message("open " + path, errno));
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    throw lab_error(errno_message("write " + path, errno));
}

// The namespace lab namespaces are created from. tcp_child_ehash_entries is a sysctl of the
// *creating* namespace, so setting it here rather than in the host's leaves the host untouched.
// -1 if it could not be made (then namespaces share the global table: slower, still correct).
// Made once and kept for the life of the process.
int lab_root_fd() {
  static const unique_fd root = [] {
    unique_fd home(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!home || ::unshare(CLONE_NEWNET) != 0) return unique_fd();
    unique_fd made(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    ::setns(home.get(), CLONE_NEWNET);
    return made;
  }();
  return root.get();
}

// In the lab root: asks for a private TCP hash table of `entries` buckets in the next namespace.
bool set_child_hash(unsigned entries) {
  unique_fd fd(::open("/proc/sys/net/ipv4/tcp_child_ehash_entries", O_WRONLY | O_CLOEXEC));
  if (!fd) return false;
  std::string text = std::to_string(entries);
  return ::write(fd.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size());
}

std::mutex create_mutex;

} // namespace

netns netns::create(std::string name, unsigned tcp_hash_entries) {
  std::lock_guard lock(create_mutex);
  netns previous = current();
  int root = lab_root_fd();
  if (root >= 0 && ::setns(root, CLONE_NEWNET) == 0) set_child_hash(tcp_hash_entries);
  if (::unshare(CLONE_NEWNET) != 0) {
    int err = errno;
    ::setns(previous.fd(), CLONE_NEWNET);
    throw lab_error(errno_message("creating network namespace '" + name +
                                      "' (unshare CLONE_NEWNET; "
                                      "needs root or CAP_SYS_ADMIN in a user namespace)",
                                  err));
  }
  unique_fd fd(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  int err = errno;
  bool opened = fd.valid();
  netns created = opened ? netns(std::move(fd), std::move(name)) : netns();
  try {
    if (opened) bring_loopback_up();
  } catch (...) {
    ::setns(previous.fd(), CLONE_NEWNET);
    throw;
  }
  if (::setns(previous.fd(), CLONE_NEWNET) != 0)
    throw lab_error(errno_message("returning to the original network namespace", errno));
  if (!opened) throw lab_error(errno_message("opening the new namespace", err));
  return created;
}

netns netns::current() {
  return open("/proc/thread-self/ns/net");
}

netns netns::open(const std::string& path) {
  unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw lab_error(errno_message("opening network namespace " + path, errno));
  return netns(std::move(fd), path);
}

netns netns::of_pid(pid_t pid) {
  netns ns = open("/proc/" + std::to_string(pid) + "/ns/net");
  ns.name_ = "pid " + std::to_string(pid);
  return ns;
}

netns netns::duplicate() const {
  unique_fd fd(::fcntl(fd_.get(), F_DUPFD_CLOEXEC, 0));
  if (!fd) throw lab_error(errno_message("dup of namespace fd", errno));
  return netns(std::move(fd), name_);
}

unsigned long netns::inode() const {
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0) throw lab_error(errno_message("fstat namespace", errno));
  return st.st_ino;
}

std::string netns::proc_path() const {
  return "/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(fd_.get());
}

netns_scope::netns_scope(const netns& ns) : previous_(netns::current()) {
  if (::setns(ns.fd(), CLONE_NEWNET) != 0)
    throw lab_error(errno_message("entering network namespace '" + ns.name() + "'", errno));
}

netns_scope::~netns_scope() {
  ::setns(previous_.fd(), CLONE_NEWNET);
}

void ensure_privileges() {
  if (::geteuid() == 0) return;
  uid_t uid = ::geteuid();
  gid_t gid = ::getegid();
  if (::unshare(CLONE_NEWUSER) != 0) {
    int err = errno;
    throw lab_error(errno_message(
        "not root, and an unprivileged user namespace could not be created (run as root, or allow "
        "user namespaces: sysctl user.max_user_namespaces > 0 and, on Debian kernels, "
        "kernel.unprivileged_userns_clone=1)",
        err));
  }
  // A process that changed its credentials (a dropped-privilege daemon, su) is not dumpable, and
  // then its /proc/self files belong to root and the maps cannot be written: lift that for the
  // writes only.
  int dumpable = ::prctl(PR_GET_DUMPABLE);
  if (dumpable != 1) ::prctl(PR_SET_DUMPABLE, 1);
  write_file("/proc/self/setgroups", "deny");
  write_file("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1");
  write_file("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1");
  if (dumpable != 1) ::prctl(PR_SET_DUMPABLE, 0);
  // The host's namespace belongs to the initial user namespace, so we could not setns() back
  // into it: give the process a home namespace of its own as well.
  if (::unshare(CLONE_NEWNET) != 0)
    throw lab_error(errno_message("creating a network namespace in the user namespace", errno));
  bring_loopback_up();
}

unsigned long raise_fd_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 1024;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
  ::getrlimit(RLIMIT_NOFILE, &lim);
  return lim.rlim_cur;
}

} // namespace backlog_lab::lab
