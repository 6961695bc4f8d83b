#include "tests/harness/clients/test_servers.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <sstream>

#include "harness/core/error.hpp"
#include "tests/support/support.hpp"

namespace backlog_lab::clients::testing {
namespace {

// The HTTP/2 SETTINGS frame a gRPC backend sends first (docs/incident.md, port 31425).
const std::string& settings_frame() {
  static const std::string frame = [] {
    const std::string hex = "000018040000000000000400400000000500400000000600002000fe03000000010000"
                            "04080000000000003f000100000806000000000000000000000000";
    std::string out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
      out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    return out;
  }();
  return frame;
}

/// Bytes of a complete request at the start of `data` (head + Content-Length body), or 0.
std::size_t complete_request(const std::string& data) {
  auto head_end = data.find("\r\n\r\n");
  if (head_end == std::string::npos) return 0;
  std::size_t head = head_end + 4;
  std::string lower;
  for (std::size_t i = 0; i < head; ++i)
    lower.push_back(static_cast<char>(std::tolower(data[i])));
  std::size_t body = 0;
  auto cl = lower.find("\r\ncontent-length:");
  if (cl != std::string::npos) body = std::stoul(lower.substr(cl + 17));
  return data.size() >= head + body ? head + body : 0;
}

} // namespace

const std::string& test_server::response() {
  static const std::string text =
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
  return text;
}

test_server::test_server(net::io_context& io, const lab::netns& ns, server_mode mode)
    : acceptor_(io), mode_(mode), request_sizes_(std::make_shared<std::vector<std::size_t>>()),
      peers_(std::make_shared<std::map<std::string, int>>()) {
  {
    lab::netns_scope in(ns);
    acceptor_.open(tcp::v4());
  }
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  acceptor_.listen(4096);
  endpoint_ = acceptor_.local_endpoint();
  net::co_spawn(io, accept_loop(), net::detached);
}

net::awaitable<void> test_server::accept_loop() {
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket =
        co_await acceptor_.async_accept(net::redirect_error(net::use_awaitable, ec));
    if (ec == net::error::operation_aborted) co_return;
    if (ec) continue;
    boost::system::error_code peer_ec;
    auto peer = socket.remote_endpoint(peer_ec);
    if (!peer_ec) ++(*peers_)[peer.address().to_string()];
    net::co_spawn(acceptor_.get_executor(), serve(std::move(socket)), net::detached);
  }
}

net::awaitable<void> test_server::serve(tcp::socket socket) {
  auto sizes = request_sizes_; // outlives `this` if the test ends first
  boost::system::error_code ec;
  auto read_request = [&]() -> net::awaitable<std::size_t> {
    std::string data;
    char buf[65536];
    for (;;) {
      std::size_t n = co_await socket.async_read_some(net::buffer(buf),
                                                      net::redirect_error(net::use_awaitable, ec));
      if (ec) co_return 0;
      data.append(buf, n);
      if (std::size_t size = complete_request(data)) co_return size;
    }
  };
  switch (mode_) {
  case server_mode::answer: {
    std::size_t size = co_await read_request();
    if (size == 0) co_return;
    sizes->push_back(size);
    co_await net::async_write(socket, net::buffer(response()),
                              net::redirect_error(net::use_awaitable, ec));
    socket.close(ec);
    co_return;
  }
  case server_mode::fin: {
    std::size_t size = co_await read_request();
    if (size == 0) co_return;
    sizes->push_back(size);
    socket.shutdown(tcp::socket::shutdown_send, ec);
    break; // read to EOF below, so the close sends no RST
  }
  case server_mode::rst:
    co_await socket.async_wait(tcp::socket::wait_read, net::redirect_error(net::use_awaitable, ec));
    socket.set_option(net::socket_base::linger(true, 0), ec);
    socket.close(ec);
    co_return;
  case server_mode::send_preface:
    co_await net::async_write(socket, net::buffer(settings_frame()),
                              net::redirect_error(net::use_awaitable, ec));
    break;
  case server_mode::accept_only: {
    // Keep the socket open, unread, until the client is gone and the test ends.
    co_await socket.async_wait(tcp::socket::wait_error,
                               net::redirect_error(net::use_awaitable, ec));
    co_return;
  }
  }
  char buf[4096];
  while (!ec)
    co_await socket.async_read_some(net::buffer(buf), net::redirect_error(net::use_awaitable, ec));
}

held_listener::held_listener(const lab::netns& ns, int backlog) {
  lab::netns_scope in(ns);
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw lab_error(errno_message("socket", errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd_, backlog) != 0 ||
      ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    throw lab_error(errno_message("held listener", errno));
  endpoint_ = tcp::endpoint(net::ip::make_address("127.0.0.1"), ntohs(addr.sin_port));
}

held_listener::~held_listener() {
  for (int fd : fillers_)
    ::close(fd);
  if (fd_ >= 0) ::close(fd_);
}

bool held_listener::accept_one() {
  int fd = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

void held_listener::connect_filler(const lab::netns& ns) {
  lab::netns_scope in(ns);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(endpoint_.port());
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    throw lab_error(errno_message("filler connect", errno));
  fillers_.push_back(fd);
}

std::uint64_t kernel_counter(const lab::netns& ns, const std::string& name) {
  std::istringstream out(backlog_lab::testing::run_ok(ns, {"nstat", "-azs", name}));
  std::string line;
  while (std::getline(out, line)) {
    std::istringstream fields(line);
    std::string key;
    std::uint64_t value = 0;
    if (fields >> key >> value && key == name) return value;
  }
  ADD_FAILURE() << "nstat did not print " << name;
  return 0;
}

} // namespace backlog_lab::clients::testing
