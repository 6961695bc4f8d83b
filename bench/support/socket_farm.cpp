#include "bench/support/socket_farm.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "harness/core/error.hpp"
#include "harness/lab/sysctl.hpp"
#include "harness/observer/sock_diag.hpp"

namespace backlog_lab::bench {
namespace {

constexpr std::uint16_t base_port = 20000;

/// Pairs are half-closed evenly across listeners and workers, not in one block.
bool half_closed(const farm_spec& spec, std::size_t i) {
  return (i * spec.close_wait) / spec.pairs != ((i + 1) * spec.close_wait) / spec.pairs;
}

/// In a worker: closes the listeners inherited from the farm's process (all of them, or all but
/// `own` when it accepts), opens clients [first, last) and, with `own`, accepts each one's server
/// side; reports on `ready`, then holds them until killed.
int hold_clients(const farm_spec& spec, std::size_t first, std::size_t last, int ready,
                 const std::vector<int>& inherited, const std::vector<int>& own) {
  for (int fd : inherited)
    if (std::find(own.begin(), own.end(), fd) == own.end()) ::close(fd);
  std::string payload(spec.request_bytes, 'x');
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  auto fail = [&](int err) {
    char msg[1 + sizeof(int)] = {'e'};
    std::memcpy(msg + 1, &err, sizeof err);
    [[maybe_unused]] auto n = ::write(ready, msg, sizeof msg);
    return 1;
  };
  for (std::size_t i = first; i < last; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return fail(errno);
    to.sin_port = htons(static_cast<std::uint16_t>(base_port + i % spec.listeners));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) return fail(errno);
    if (half_closed(spec, i)) {
      if (!payload.empty() && ::send(fd, payload.data(), payload.size(), MSG_NOSIGNAL) !=
                                  static_cast<ssize_t>(payload.size()))
        return fail(errno);
      // FIN: the server side moves to CLOSE_WAIT; this client sits in FIN_WAIT2 for as long as
      // the descriptor stays open (no tcp_fin_timeout for a socket that has an owner).
      if (::shutdown(fd, SHUT_WR) != 0) return fail(errno);
    }
    // Blocking: another worker of the namespace may take this child first, then the next one
    // is ours; every worker accepts as many as it connected, so all are taken in the end.
    if (!own.empty() && ::accept4(own[i % spec.listeners], nullptr, nullptr, SOCK_CLOEXEC) < 0)
      return fail(errno);
  }
  char ok = 'k';
  [[maybe_unused]] auto n = ::write(ready, &ok, 1);
  for (;;)
    ::pause();
}

bool matches(const farm_spec& spec, const farm_census& c) {
  return c.listen == spec.listeners && c.close_wait == spec.close_wait &&
         c.fin_wait2 == spec.close_wait && c.established == 2 * (spec.pairs - spec.close_wait) &&
         c.other == 0;
}

} // namespace

farm_census count_states(const lab::netns& ns) {
  using observer::tcp_state;
  farm_census c;
  observer::sock_diag_reader reader(&ns);
  reader.dump([&](const observer::tcp_socket& s) {
    ++c.total;
    switch (s.state) {
    case tcp_state::listen:
      ++c.listen;
      break;
    case tcp_state::established:
      ++c.established;
      break;
    case tcp_state::close_wait:
      ++c.close_wait;
      break;
    case tcp_state::fin_wait2:
      ++c.fin_wait2;
      break;
    default:
      ++c.other;
      break;
    }
  });
  return c;
}

socket_farm socket_farm::build(const farm_spec& spec) {
  if (spec.namespaces == 0 || spec.accepting_namespaces > spec.namespaces || spec.pairs == 0 ||
      spec.listeners == 0 || spec.close_wait > spec.pairs || spec.clients_per_process < 2 ||
      spec.listeners > 10'000)
    throw input_error("farm_spec", "1+ namespaces, accepting_namespaces <= namespaces, pairs >= 1, "
                                   "close_wait <= pairs, 1..10000 listeners");
  socket_farm farm;
  farm.spec_ = spec;
  farm.namespaces_.reserve(spec.namespaces);

  // Workers connect in parallel; each reports one byte ('k') or 'e' + errno on its pipe.
  std::vector<int> pipes;
  struct close_pipes {
    std::vector<int>& fds;
    ~close_pipes() {
      for (int fd : fds)
        ::close(fd);
    }
  } closer{pipes};
  const std::size_t per_listener = (spec.pairs + spec.listeners - 1) / spec.listeners;
  for (std::size_t k = 0; k < spec.namespaces; ++k) {
    const bool accepting = k + spec.accepting_namespaces >= spec.namespaces;
    farm.namespaces_.push_back(lab::netns::create(
        spec.namespaces == 1 ? "census-farm" : "census-farm-" + std::to_string(k),
        spec.tcp_hash_entries));
    const lab::netns& ns = farm.namespaces_.back();

    // Listener j gets the pairs i with i % listeners == j. Each must hold its share of
    // children: capacity is backlog + 1 (docs/reference/kernel.md 1).
    auto backlog_of = [&](std::size_t j) {
      std::size_t share = spec.pairs / spec.listeners + (j < spec.pairs % spec.listeners ? 1 : 0);
      if (spec.full_queues && !accepting)
        return static_cast<int>(std::max<std::size_t>(share, 1) - 1);
      return static_cast<int>(std::max<std::size_t>(per_listener, 128));
    };
    lab::write_sysctl(ns, "net.core.somaxconn",
                      std::to_string(std::max<std::size_t>(per_listener, 4096)));
    std::vector<int> own;
    {
      lab::netns_scope in(ns);
      for (std::size_t j = 0; j < spec.listeners; ++j) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) throw lab_error(errno_message("farm listener socket", errno));
        farm.listeners_.push_back(fd);
        own.push_back(fd);
        int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in at{};
        at.sin_family = AF_INET;
        at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        at.sin_port = htons(static_cast<std::uint16_t>(base_port + j));
        if (::bind(fd, reinterpret_cast<sockaddr*>(&at), sizeof at) != 0 ||
            ::listen(fd, backlog_of(j)) != 0)
          throw lab_error(
              errno_message("farm listener on port " + std::to_string(base_port + j), errno));
      }
    }
    if (!accepting) own.clear();
    // An accepting worker holds two descriptors per pair.
    const std::size_t chunk = accepting ? spec.clients_per_process / 2 : spec.clients_per_process;
    for (std::size_t first = 0; first < spec.pairs; first += chunk) {
      std::size_t last = std::min(spec.pairs, first + chunk);
      int p[2];
      if (::pipe2(p, O_CLOEXEC) != 0) throw lab_error(errno_message("farm pipe", errno));
      pipes.push_back(p[0]);
      int write_end = p[1];
      farm.workers_.push_back(lab::child_process::spawn(
          &ns, [&spec, first, last, write_end, inherited = farm.listeners_, own] {
            return hold_clients(spec, first, last, write_end, inherited, own);
          }));
      ::close(write_end);
    }
  }

  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  for (std::size_t w = 0; w < pipes.size(); ++w) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd pfd{pipes[w], POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(std::max<long>(left.count(), 0))) != 1)
      throw lab_error("socket farm: worker " + std::to_string(w) + " did not finish in 120 s");
    char msg[1 + sizeof(int)] = {};
    ssize_t n = ::read(pipes[w], msg, sizeof msg);
    if (n >= 1 && msg[0] == 'k') continue;
    int err = 0;
    if (n == static_cast<ssize_t>(sizeof msg)) std::memcpy(&err, msg + 1, sizeof err);
    throw lab_error(errno_message("socket farm: worker " + std::to_string(w) + " failed", err));
  }

  // Loopback delivers the FINs at once, but give the kernel a moment before calling it wrong.
  for (std::size_t k = 0; k < farm.namespaces_.size(); ++k)
    for (int attempt = 0;; ++attempt) {
      farm_census c = count_states(farm.namespaces_[k]);
      if (matches(spec, c)) {
        farm.counted_.total += c.total;
        farm.counted_.listen += c.listen;
        farm.counted_.established += c.established;
        farm.counted_.close_wait += c.close_wait;
        farm.counted_.fin_wait2 += c.fin_wait2;
        break;
      }
      if (attempt == 50)
        throw lab_error("socket farm: expected " + std::to_string(spec.listeners) + " LISTEN, " +
                        std::to_string(2 * (spec.pairs - spec.close_wait)) + " ESTAB, " +
                        std::to_string(spec.close_wait) +
                        " CLOSE-WAIT and FIN-WAIT-2 in namespace " + std::to_string(k) +
                        "; counted " + std::to_string(c.listen) + ", " +
                        std::to_string(c.established) + ", " + std::to_string(c.close_wait) + ", " +
                        std::to_string(c.fin_wait2) + " (+" + std::to_string(c.other) + " other)");
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  return farm;
}

socket_farm::socket_farm(socket_farm&& other) noexcept
    : spec_(other.spec_), namespaces_(std::move(other.namespaces_)),
      listeners_(std::move(other.listeners_)), workers_(std::move(other.workers_)),
      counted_(other.counted_) {
  other.listeners_.clear();
}

socket_farm& socket_farm::operator=(socket_farm&& other) noexcept {
  if (this != &other) {
    workers_.clear();
    close_listeners();
    spec_ = other.spec_;
    namespaces_ = std::move(other.namespaces_);
    listeners_ = std::move(other.listeners_);
    other.listeners_.clear();
    workers_ = std::move(other.workers_);
    counted_ = other.counted_;
  }
  return *this;
}

socket_farm::~socket_farm() {
  workers_.clear(); // SIGKILL and reap: the clients close
  close_listeners();
}

void socket_farm::close_listeners() noexcept {
  for (int fd : listeners_)
    ::close(fd);
  listeners_.clear();
}

} // namespace backlog_lab::bench
