#pragma once
// The one place Asio is included from. Boost 1.74's awaitable.hpp uses std::exchange without
// including <utility> (asio#944), which g++ 12 rejects; including it first fixes that.
// clang-format off
#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
// clang-format on

namespace backlog_lab {
namespace net = boost::asio;
using tcp = boost::asio::ip::tcp;
} // namespace backlog_lab
