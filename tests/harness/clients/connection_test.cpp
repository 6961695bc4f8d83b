// A connection's I/O steps on real loopback TCP sockets: partial writes against a peer that
// does not read, responses in pieces, EOF and malformed answers, a bound source address.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <gtest/gtest.h>
#include <string>

#include "harness/clients/connection.hpp"
#include "harness/core/connect.hpp"

namespace backlog_lab::clients {
namespace {

struct no_events final : slot_events {
  void on_socket_events(connection_slot&, std::uint32_t) override {}
};

/// A listener on 127.0.0.1 and one connection to it: `slot.fd` is the client (non-blocking),
/// `server` the accepted end (blocking).
struct loopback_connection {
  explicit loopback_connection(const char* source = nullptr) {
    listener.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    EXPECT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(listener.get(), 4), 0);
    EXPECT_EQ(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
    target = tcp::endpoint(net::ip::make_address_v4("127.0.0.1"), ntohs(a.sin_port));
    slot.fd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (source) {
      EXPECT_EQ(bind_source(slot.fd.get(), net::ip::make_address(source)), 0);
    }
    EXPECT_FALSE(start_connect(slot.fd.get(), target)); // loopback: done inside the call
    sockaddr_in peer{};
    len = sizeof peer;
    server.reset(::accept(listener.get(), reinterpret_cast<sockaddr*>(&peer), &len));
    EXPECT_TRUE(server);
    peer_address = inet_ntoa(peer.sin_addr);
    peer_port = ntohs(peer.sin_port);
  }

  void serve(const std::string& bytes) const {
    ASSERT_EQ(::send(server.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
  }

  /// Reads until `n` bytes arrived or EOF.
  std::string read_exactly(std::size_t n) const {
    std::string got;
    char buf[65536];
    while (got.size() < n) {
      ssize_t r = ::recv(server.get(), buf, std::min(sizeof buf, n - got.size()), 0);
      if (r <= 0) break;
      got.append(buf, static_cast<std::size_t>(r));
    }
    return got;
  }

  no_events owner;
  connection_slot slot{owner};
  unique_fd listener;
  unique_fd server;
  tcp::endpoint target;
  std::string peer_address;
  std::uint16_t peer_port = 0;
};

TEST(connection, a_request_larger_than_the_socket_buffers_is_sent_in_parts_and_whole) {
  loopback_connection c;
  constexpr std::uint32_t size = 4u << 20; // more than the send and receive buffers hold
  request_source request(scenario::request_kind::http, size, size, "test");
  char scratch[request_source::scratch_bytes];
  c.slot.request_size = size;

  // The peer reads nothing yet: the kernel takes a part, then says EAGAIN.
  io_step step = send_request(c.slot, request, scratch);
  EXPECT_EQ(step.status, io_status::would_block);
  EXPECT_GT(c.slot.sent, 0u);
  EXPECT_LT(c.slot.sent, size);

  // The peer reads what has arrived; each further step sends more, until all of it is sent.
  std::string received;
  char buf[1 << 16];
  for (int steps = 0; step.status == io_status::would_block && steps < 100000; ++steps) {
    pollfd p{c.server.get(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 5000), 1);
    ssize_t n = ::recv(c.server.get(), buf, sizeof buf, MSG_DONTWAIT);
    ASSERT_GT(n, 0);
    received.append(buf, static_cast<std::size_t>(n));
    step = send_request(c.slot, request, scratch);
  }
  ASSERT_EQ(step.status, io_status::done);
  EXPECT_EQ(c.slot.sent, size);
  received += c.read_exactly(size - received.size());
  ASSERT_EQ(received.size(), size);
  EXPECT_EQ(received.rfind("POST / HTTP/1.1\r\n", 0), 0u);
  EXPECT_NE(received.find("\r\nContent-Length: "), std::string::npos);
}

TEST(connection, an_http_response_in_two_pieces_completes_on_the_second) {
  loopback_connection c;
  std::array<char, 16384> buffer{};
  EXPECT_EQ(read_response(c.slot, buffer, true).status, io_status::would_block);
  c.serve("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhe");
  io_step step = read_response(c.slot, buffer, true);
  EXPECT_EQ(step.status, io_status::would_block);
  EXPECT_EQ(c.slot.response_bytes, 40u);
  c.serve("llo");
  step = read_response(c.slot, buffer, true);
  EXPECT_EQ(step.status, io_status::done);
  EXPECT_EQ(c.slot.response_bytes, 43u);
  EXPECT_EQ(c.slot.parser.status(), 200);
}

TEST(connection, eof_ends_a_response_without_length_but_not_a_partial_one) {
  {
    loopback_connection c;
    std::array<char, 64> buffer{}; // smaller than the response: several reads in one step
    c.serve("HTTP/1.0 503 Service Unavailable\r\n\r\nbody of unknown length");
    c.server.reset();
    EXPECT_EQ(read_response(c.slot, buffer, true).status, io_status::done);
    EXPECT_EQ(c.slot.parser.status(), 503);
  }
  {
    loopback_connection c;
    std::array<char, 64> buffer{};
    c.serve("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort");
    c.server.reset();
    EXPECT_EQ(read_response(c.slot, buffer, true).status, io_status::closed_early);
  }
  {
    loopback_connection c; // a FIN and nothing else
    std::array<char, 64> buffer{};
    c.server.reset();
    EXPECT_EQ(read_response(c.slot, buffer, false).status, io_status::closed_early);
    EXPECT_EQ(c.slot.response_bytes, 0u);
  }
}

TEST(connection, malformed_http_fails_with_eproto_and_raw_bytes_answer) {
  {
    loopback_connection c;
    std::array<char, 1024> buffer{};
    c.serve("SSH-2.0-OpenSSH_9.2\r\n");
    io_step step = read_response(c.slot, buffer, true);
    EXPECT_EQ(step.status, io_status::failed);
    EXPECT_EQ(step.error, EPROTO);
    EXPECT_EQ(classify_io_error(step.error), outcome::other);
  }
  {
    loopback_connection c;
    std::array<char, 1024> buffer{};
    c.serve("x");
    EXPECT_EQ(read_response(c.slot, buffer, false).status, io_status::done);
    EXPECT_EQ(c.slot.response_bytes, 1u);
  }
}

TEST(connection, a_reset_fails_the_read_as_reset) {
  loopback_connection c;
  linger hard{1, 0};
  ASSERT_EQ(::setsockopt(c.server.get(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard), 0);
  c.server.reset(); // RST
  std::array<char, 64> buffer{};
  io_step step = read_response(c.slot, buffer, true);
  EXPECT_EQ(step.status, io_status::failed);
  EXPECT_EQ(step.error, ECONNRESET);
  EXPECT_EQ(classify_io_error(step.error), outcome::reset);
}

TEST(connection, a_bound_source_address_is_what_the_peer_sees_with_the_port_read_back) {
  loopback_connection c("127.0.0.2");
  EXPECT_EQ(c.peer_address, "127.0.0.2");
  EXPECT_EQ(local_port(c.slot.fd.get()), c.peer_port);
  EXPECT_NE(c.peer_port, 0);
}

TEST(connection_slots, slots_are_reused_with_a_new_generation_and_keep_their_address) {
  no_events owner;
  connection_slots slots(owner);
  connection_slot& a = slots.acquire();
  connection_slot& b = slots.acquire();
  EXPECT_NE(&a, &b);
  std::uint32_t generation = a.generation;
  a.state = phase::awaiting;
  slots.release(a);
  EXPECT_EQ(a.state, phase::idle);
  connection_slot& again = slots.acquire();
  EXPECT_EQ(&again, &a);
  EXPECT_EQ(again.generation, generation + 1);
  EXPECT_EQ(slots.all().size(), 2u);
}

} // namespace
} // namespace backlog_lab::clients
