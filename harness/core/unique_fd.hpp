#pragma once
// Owned file descriptors (and pipes) for code that works below Asio: raw sockets, epoll sets,
// /proc files, namespaces, the pipes to child processes.
#include <fcntl.h>
#include <unistd.h>

namespace backlog_lab {

/// A file descriptor closed when destroyed; movable, not copyable. -1 when empty.
class unique_fd {
public:
  unique_fd() = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& other) noexcept : fd_(other.release()) {}
  unique_fd& operator=(unique_fd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }

  /// The descriptor, still owned.
  int get() const noexcept { return fd_; }
  /// Whether a descriptor is held.
  bool valid() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return valid(); }
  /// Gives the descriptor up without closing it.
  int release() noexcept {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  /// Closes the held descriptor (if any) and holds `fd` instead.
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

private:
  int fd_ = -1;
};

/// Both ends of a pipe, each owned.
struct pipe_ends {
  unique_fd read;  ///< the end to read from
  unique_fd write; ///< the end to write to
};

/// pipe2(O_CLOEXEC | flags): both ends, or two empty ones with errno set.
inline pipe_ends make_pipe(int flags = 0) noexcept {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | flags) != 0) return {};
  return {unique_fd(fds[0]), unique_fd(fds[1])};
}

} // namespace backlog_lab
