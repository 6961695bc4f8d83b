// start_connect and connect_result on real loopback sockets.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include "harness/core/connect.hpp"
#include "harness/core/unique_fd.hpp"

namespace backlog_lab {
namespace {

unique_fd nonblocking_socket() {
  return unique_fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
}

/// A loopback port nothing listens on (bound, so no one else takes it, but not listening).
struct closed_port {
  closed_port() : fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
    endpoint = tcp::endpoint(net::ip::make_address_v4("127.0.0.1"), ntohs(a.sin_port));
  }
  unique_fd fd;
  tcp::endpoint endpoint;
};

TEST(start_connect, a_listener_on_loopback_is_connected_inside_the_call) {
  closed_port port;
  ASSERT_EQ(::listen(port.fd.get(), 1), 0);
  unique_fd s = nonblocking_socket();
  EXPECT_FALSE(start_connect(s.get(), port.endpoint));
  EXPECT_FALSE(connect_result(s.get()));
}

TEST(start_connect, a_port_without_listener_is_refused_inside_the_call) {
  closed_port port;
  unique_fd s = nonblocking_socket();
  EXPECT_EQ(start_connect(s.get(), port.endpoint), net::error::connection_refused);
}

TEST(start_connect, a_syn_to_a_full_accept_queue_stays_in_progress_without_an_error) {
  // A listener of backlog 0 queues one connection (the kernel's queue is full only past the
  // backlog); the next SYN is dropped and retried, so that connect stays pending.
  closed_port port;
  ASSERT_EQ(::listen(port.fd.get(), 0), 0);
  unique_fd first = nonblocking_socket();
  ASSERT_FALSE(start_connect(first.get(), port.endpoint));
  unique_fd second = nonblocking_socket();
  EXPECT_EQ(start_connect(second.get(), port.endpoint), net::error::in_progress);
  EXPECT_FALSE(connect_result(second.get())); // no error yet: the SYN is being retried
}

} // namespace
} // namespace backlog_lab
