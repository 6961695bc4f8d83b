#pragma once
// One client connection's state, as client_group's state machine moves it along:
// idle -> connecting -> sending -> awaiting -> idle, and how a failure maps to an outcome class
// (docs/clients.md#outcome-classes).
#include <cstdint>

#include "harness/clients/deadline_list.hpp"
#include "harness/clients/http_message.hpp"
#include "harness/clients/results.hpp"
#include "harness/core/epoll_set.hpp"
#include "harness/core/unique_fd.hpp"

namespace backlog_lab::clients {

/// Where a connection is in its life.
enum class phase : std::uint8_t { idle, connecting, sending, awaiting };

struct connection_slot;

/// Where a slot's socket events go (the group that owns it).
class slot_events {
public:
  /// `events`: the EPOLL* mask reported for the slot's socket.
  virtual void on_socket_events(connection_slot& s, std::uint32_t events) = 0;

protected:
  ~slot_events() = default;
};

/// One connection's state; slots are reused, `generation` tells stale handlers apart.
struct connection_slot final : fd_watcher, deadline_entry {
  explicit connection_slot(slot_events& owner) : owner(&owner) {}
  void on_events(std::uint32_t events) override { owner->on_socket_events(*this, events); }

  slot_events* owner;
  unique_fd fd;                      ///< non-blocking from birth; plain syscalls do the I/O
  epoll_set::token registration = 0; ///< in the group's epoll_set (edge-triggered, once)
  bool connected_inline = false;     ///< connect() finished at once; a posted handler goes on
  bool readable = false;             ///< data or a FIN arrived before the response was awaited
  connection_slot* next_free = nullptr;
  std::int64_t intended_ns = 0;
  std::int64_t started_ns = 0;
  std::int64_t connected_ns = -1;
  std::uint32_t generation = 0;
  std::uint32_t request_size = 0;
  std::uint32_t sent = 0;
  std::uint32_t response_bytes = 0;
  std::uint16_t source_index = 0;
  std::uint16_t local_port = 0;
  phase state = phase::idle;
  http_response_parser parser;
};

/// A failed connect, by errno.
outcome classify_connect_error(int err) noexcept;
/// A failed send or receive on a connected socket, by errno.
outcome classify_io_error(int err) noexcept;

} // namespace backlog_lab::clients
