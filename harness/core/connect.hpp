#pragma once
// A non-blocking connect() as the built-in clients and both userspace proxies (the userspace
// mode and 1.37's localhost NodePort proxy) start their connections.
#include "harness/core/asio.hpp"

namespace backlog_lab {

/// Starts connecting `fd` (a non-blocking TCP socket) to `endpoint`: success if the handshake
/// ended inside the call, in_progress while it runs, else the error (connection_refused, ...).
boost::system::error_code start_connect(int fd, const tcp::endpoint& endpoint);

/// SO_ERROR of `fd` once a non-blocking connect() reports writable: the dial's outcome.
boost::system::error_code connect_result(int fd);

} // namespace backlog_lab
