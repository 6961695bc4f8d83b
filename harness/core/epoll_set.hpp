#pragma once
// An epoll set of our own, nested in the io_context, for hot paths on raw sockets (the
// userspace proxier's accept and copy path, the client groups). Why not Asio sockets there: per
// connection they cost an ioctl(FIONBIO), an EPOLL_CTL_MOD per wait that is not speculative, an
// EPOLL_CTL_DEL before closing an assigned or accepted socket, and reads that find nothing;
// the proxier spent about a fifth more CPU per connection than haproxy (issue 6,
// docs/performance.md). Here sockets stay raw and non-blocking from birth, are registered once
// (edge-triggered), and their readiness is taken in batches, as haproxy's event loop does.
#include <sys/epoll.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "harness/core/asio.hpp"
#include "harness/core/unique_fd.hpp"

namespace backlog_lab {

/// Whatever owns a descriptor in an epoll_set and takes its readiness events.
class fd_watcher {
public:
  /// `events`: the EPOLL* mask the kernel reported for the descriptor.
  virtual void on_events(std::uint32_t events) = 0;

protected:
  ~fd_watcher() = default;
};

/// Descriptors watched by an epoll instance of their own. The io_context waits for that
/// instance to become readable; then one epoll_wait(2) hands every ready descriptor to its
/// watcher, and the set keeps polling from posted handlers while there is work, so that a busy
/// proxy takes many connections' events per system call.
class epoll_set : public std::enable_shared_from_this<epoll_set> {
public:
  /// Creates the epoll instance (lab_error if the kernel refuses).
  static std::shared_ptr<epoll_set> create(net::io_context& io);
  epoll_set(const epoll_set&) = delete;
  epoll_set& operator=(const epoll_set&) = delete;

  /// Names a registration; 0 is none.
  using token = std::uint64_t;

  /// Starts watching `fd` for `events` (EPOLL* flags) on behalf of `watcher`; 0 with errno set
  /// on failure.
  token add(int fd, std::uint32_t events, fd_watcher* watcher);
  /// Changes what `fd` (registered as `t`) is watched for; 0 pauses it. False with errno set.
  bool modify(int fd, std::uint32_t events, token t);
  /// Stops delivering events for `t`; call before closing its descriptor. Closing removes the
  /// descriptor from the set only when no other process holds a copy (a child between fork and
  /// exec may), so an event can still come for it: it is dropped instead of reaching a
  /// watcher that may be gone or serving another socket.
  void forget(token t);
  /// Called after every batch of events: where watchers closed during the batch are freed (an
  /// event later in the same batch may still name them).
  void on_batch_end(std::function<void()> f) { batch_end_ = std::move(f); }
  /// Begins taking events from the io_context. While nothing is registered the set leaves the
  /// io_context nothing to wait for, so that io_context::run() can return.
  void start();
  /// No more events are delivered; the epoll instance closes with the last reference.
  void stop();

private:
  explicit epoll_set(net::io_context& io, unique_fd epoll_fd);
  void arm();
  void post_batch();
  void run_batch();

  /// A registration: its watcher (null once forgotten) and a generation that stale events
  /// from an earlier registration of the same slot do not match.
  struct slot {
    fd_watcher* watcher = nullptr;
    std::uint32_t generation = 1;
  };

  net::io_context& io_;
  int epoll_fd_;
  std::vector<slot> slots_;
  std::vector<std::uint32_t> free_slots_;
  net::posix::stream_descriptor readiness_; ///< owns epoll_fd_; readable when events wait
  std::array<epoll_event, 256> events_{};
  std::function<void()> batch_end_;
  std::size_t live_ = 0; ///< registrations not forgotten
  bool started_ = false;
  bool armed_ = false;
  bool batch_posted_ = false;
  bool in_batch_ = false;
  bool stopped_ = false;
};

} // namespace backlog_lab
