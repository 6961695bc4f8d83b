#pragma once
// A lab namespace holding most of what a census reports, for tests that compare forms of one
// census: listeners on 127.0.0.1, 0.0.0.0, [::1], [::] v6only and [::] dual-stack; a full accept
// queue of un-accepted CLOSE-WAIT children; un-accepted ESTAB children with bytes queued (one a
// v4-mapped peer); accepted children; a TIME-WAIT socket. Quiet once built: no timer of its
// sockets changes a state or a counter for a minute (the TIME-WAIT one lasts 60 s).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "harness/lab/netns.hpp"
#include "harness/observer/census.hpp"

namespace backlog_lab::testing {

/// The namespace and its sockets; everything is closed (and the namespace gone) on destruction.
struct busy_namespace {
  lab::netns ns = lab::netns::create("busy-census");
  std::vector<int> fds;
  std::uint16_t full_port = 0; ///< the listener whose queue is full of CLOSE-WAIT children

  busy_namespace() {
    lab::netns_scope in(ns);
    // A full queue: listen(1) holds backlog + 1 = 2 children, which sent 9 bytes and a FIN.
    int full = listener(AF_INET, "127.0.0.1", 1);
    full_port = port_of(full);
    for (int i = 0; i < 2; ++i) {
      int c = connect_to(AF_INET, "127.0.0.1", full_port);
      send_all(c, std::string(9, 'x'));
      ::close(c);
    }
    // A wildcard listener: two accepted children, one un-accepted with 5 bytes queued.
    int wild = listener(AF_INET, "0.0.0.0", 16);
    const std::uint16_t wild_port = port_of(wild);
    for (int i = 0; i < 2; ++i) {
      connect_to(AF_INET, "127.0.0.1", wild_port);
      accept_one(wild);
    }
    send_all(connect_to(AF_INET, "127.0.0.1", wild_port), "hello");
    // IPv6: loopback with an un-accepted child, a v6only wildcard, and a dual-stack wildcard
    // holding a v4-mapped child.
    int v6 = listener(AF_INET6, "::1", 8);
    send_all(connect_to(AF_INET6, "::1", port_of(v6)), "abc");
    listener(AF_INET6, "::", 4, true);
    int dual = listener(AF_INET6, "::", 4, false);
    send_all(connect_to(AF_INET, "127.0.0.1", port_of(dual)), "mapped");
    // TIME-WAIT: an accepted child closed first, then its client.
    int tw = listener(AF_INET, "127.0.0.2", 4);
    int client = connect_to(AF_INET, "127.0.0.2", port_of(tw));
    int child = ::accept4(tw, nullptr, nullptr, SOCK_CLOEXEC);
    if (child < 0) throw std::runtime_error("accept");
    ::close(child);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    for (auto& f : fds)
      if (f == client) f = -1;
    ::close(client);
    wait_quiet();
  }
  ~busy_namespace() {
    for (int f : fds)
      if (f >= 0) ::close(f);
  }
  busy_namespace(const busy_namespace&) = delete;
  busy_namespace& operator=(const busy_namespace&) = delete;

private:
  // Until the TIME-WAIT socket is there and no socket is between states (bounded: a hang guard).
  void wait_quiet() {
    observer::census_reader reader(&ns);
    for (int i = 0; i < 500; ++i) {
      observer::census c = reader.read({.summary_only = true});
      using observer::tcp_state;
      if (c.totals[tcp_state::time_wait] == 1 && c.totals[tcp_state::fin_wait1] == 0 &&
          c.totals[tcp_state::fin_wait2] == 2 && c.totals[tcp_state::last_ack] == 0 &&
          c.totals[tcp_state::close_wait] == 2)
        return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    throw std::runtime_error("busy_namespace: sockets did not settle within 5 s");
  }
  static std::uint16_t port_of(int fd) {
    sockaddr_storage sa{};
    socklen_t len = sizeof sa;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
    return sa.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&sa)->sin6_port)
                                    : ntohs(reinterpret_cast<sockaddr_in*>(&sa)->sin_port);
  }
  static socklen_t address(int family, const char* text, std::uint16_t port, sockaddr_storage& sa) {
    std::memset(&sa, 0, sizeof sa);
    if (family == AF_INET6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&sa);
      a->sin6_family = AF_INET6;
      a->sin6_port = htons(port);
      ::inet_pton(AF_INET6, text, &a->sin6_addr);
      return sizeof *a;
    }
    auto* a = reinterpret_cast<sockaddr_in*>(&sa);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    ::inet_pton(AF_INET, text, &a->sin_addr);
    return sizeof *a;
  }
  int keep(int fd) {
    if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    fds.push_back(fd);
    return fd;
  }
  int listener(int family, const char* text, int backlog, bool v6only = false) {
    int fd = keep(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (family == AF_INET6) {
      int on = v6only ? 1 : 0;
      ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    }
    sockaddr_storage sa{};
    socklen_t len = address(family, text, 0, sa);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), len) != 0 || ::listen(fd, backlog) != 0)
      throw std::runtime_error(std::string("bind/listen: ") + std::strerror(errno));
    return fd;
  }
  int connect_to(int family, const char* text, std::uint16_t port) {
    int fd = keep(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_storage sa{};
    socklen_t len = address(family, text, port, sa);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), len) != 0)
      throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
    return fd;
  }
  int accept_one(int listen_fd) {
    return keep(::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC));
  }
  static void send_all(int fd, const std::string& data) {
    if (::send(fd, data.data(), data.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(data.size()))
      throw std::runtime_error("send");
  }
};

} // namespace backlog_lab::testing
