#pragma once
// Plain TCP sockets opened inside lab namespaces, with bounded waits, for the lab's own tests.
#include <chrono>
#include <cstdint>
#include <string>

#include "harness/core/unique_fd.hpp"
#include "harness/lab/netns.hpp"

namespace backlog_lab::testing {

/// An owned file descriptor, closed when destroyed (the harness's own).
using unique_fd = backlog_lab::unique_fd;

/// A listening TCP socket on `address:port` in `ns`; throws lab_error on failure.
unique_fd tcp_listen(const lab::netns& ns, const std::string& address, uint16_t port,
                     int backlog = 16);

/// Starts a non-blocking connect from `ns` (bound to `source` unless empty) to `address:port`.
unique_fd tcp_connect_start(const lab::netns& ns, const std::string& source,
                            const std::string& address, uint16_t port);

/// Waits for a started connect: 0 when connected, the errno it failed with, or -1 when `limit`
/// passed first (a hang guard).
int tcp_connect_finish(const unique_fd& fd, std::chrono::milliseconds limit);

/// Accepts one connection within `limit`; an invalid fd if none came.
unique_fd tcp_accept(const unique_fd& listener, std::chrono::milliseconds limit);

/// Reads what arrives within `limit` (up to 4 KiB, one read).
std::string read_some(const unique_fd& fd, std::chrono::milliseconds limit);

/// The peer address of a connected socket, "a.b.c.d".
std::string peer_address(const unique_fd& fd);

} // namespace backlog_lab::testing
