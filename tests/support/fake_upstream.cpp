#include "tests/support/fake_upstream.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cctype>
#include <cerrno>

#include "harness/core/error.hpp"

namespace backlog_lab::testing {
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
    lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(data[i]))));
  std::size_t body = 0;
  auto cl = lower.find("\r\ncontent-length:");
  if (cl != std::string::npos) body = std::stoul(lower.substr(cl + 17));
  return data.size() >= head + body ? head + body : 0;
}

} // namespace

struct fake_upstream::state {
  state(net::io_context& io, upstream_mode mode, std::string greeting)
      : acceptor(io), mode(mode), greeting(std::move(greeting)) {}
  tcp::acceptor acceptor;
  upstream_mode mode;
  std::string greeting;
  std::vector<std::size_t> request_sizes;
  std::map<std::string, int> peers;
  std::vector<std::shared_ptr<tcp::socket>> held; ///< closed with the upstream
  bool closed = false;
};

namespace {

using upstream_state = fake_upstream::state;

net::awaitable<std::size_t> read_request(tcp::socket& socket, boost::system::error_code& ec) {
  std::string data;
  char buf[65536];
  for (;;) {
    std::size_t n = co_await socket.async_read_some(net::buffer(buf),
                                                    net::redirect_error(net::use_awaitable, ec));
    if (ec) co_return 0;
    data.append(buf, n);
    if (std::size_t size = complete_request(data)) co_return size;
  }
}

net::awaitable<void> serve(std::shared_ptr<upstream_state> st,
                           std::shared_ptr<tcp::socket> socket) {
  boost::system::error_code ec;
  switch (st->mode) {
  case upstream_mode::answer: {
    std::size_t size = co_await read_request(*socket, ec);
    if (size == 0) co_return;
    st->request_sizes.push_back(size);
    co_await net::async_write(*socket, net::buffer(fake_upstream::response()),
                              net::redirect_error(net::use_awaitable, ec));
    socket->close(ec);
    co_return;
  }
  case upstream_mode::fin: {
    std::size_t size = co_await read_request(*socket, ec);
    if (size == 0) co_return;
    st->request_sizes.push_back(size);
    socket->shutdown(tcp::socket::shutdown_send, ec);
    break; // read to EOF below, so the close sends no RST
  }
  case upstream_mode::rst:
    co_await socket->async_wait(tcp::socket::wait_read,
                                net::redirect_error(net::use_awaitable, ec));
    socket->set_option(net::socket_base::linger(true, 0), ec);
    socket->close(ec);
    co_return;
  case upstream_mode::send_preface:
    co_await net::async_write(*socket, net::buffer(settings_frame()),
                              net::redirect_error(net::use_awaitable, ec));
    break;
  case upstream_mode::greet_and_close:
    co_await net::async_write(*socket, net::buffer(st->greeting),
                              net::redirect_error(net::use_awaitable, ec));
    socket->close(ec);
    co_return;
  case upstream_mode::greet_and_hold:
    co_await net::async_write(*socket, net::buffer(st->greeting),
                              net::redirect_error(net::use_awaitable, ec));
    [[fallthrough]];
  case upstream_mode::accept_only:
    // Kept open, unread, until the upstream is destroyed.
    if (!st->closed) st->held.push_back(std::move(socket));
    co_return;
  }
  char buf[4096];
  while (!ec)
    co_await socket->async_read_some(net::buffer(buf), net::redirect_error(net::use_awaitable, ec));
}

net::awaitable<void> accept_loop(std::shared_ptr<upstream_state> st) {
  for (;;) {
    boost::system::error_code ec;
    auto socket = std::make_shared<tcp::socket>(
        co_await st->acceptor.async_accept(net::redirect_error(net::use_awaitable, ec)));
    if (ec == net::error::operation_aborted || st->closed) co_return;
    if (ec) continue;
    boost::system::error_code peer_ec;
    auto peer = socket->remote_endpoint(peer_ec);
    if (!peer_ec) ++st->peers[peer.address().to_string()];
    net::co_spawn(st->acceptor.get_executor(), serve(st, std::move(socket)), net::detached);
  }
}

} // namespace

const std::string& fake_upstream::response() {
  static const std::string text =
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
  return text;
}

fake_upstream::fake_upstream(net::io_context& io, const lab::netns& ns, upstream_mode mode,
                             upstream_options options)
    : state_(std::make_shared<state>(io, mode, options.name + "\n")) {
  {
    lab::netns_scope in(ns);
    state_->acceptor.open(tcp::v4());
  }
  state_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  state_->acceptor.bind(tcp::endpoint(net::ip::make_address(options.address), 0));
  state_->acceptor.listen(options.backlog);
  endpoint_ = state_->acceptor.local_endpoint();
  net::co_spawn(io, accept_loop(state_), net::detached);
}

fake_upstream::~fake_upstream() {
  state_->closed = true;
  boost::system::error_code ec;
  state_->acceptor.close(ec);
  for (auto& s : state_->held)
    s->close(ec);
  state_->held.clear();
}

const std::vector<std::size_t>& fake_upstream::request_sizes() const {
  return state_->request_sizes;
}

const std::map<std::string, int>& fake_upstream::peers() const {
  return state_->peers;
}

held_listener::held_listener(const lab::netns& ns, int backlog) {
  lab::netns_scope in(ns);
  fd_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd_) throw lab_error(errno_message("socket", errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::listen(fd_.get(), backlog) != 0 ||
      ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    throw lab_error(errno_message("held listener", errno));
  endpoint_ = tcp::endpoint(net::ip::make_address("127.0.0.1"), ntohs(addr.sin_port));
}

bool held_listener::accept_one() {
  unique_fd fd(::accept4(fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  return static_cast<bool>(fd);
}

void held_listener::connect_filler(const lab::netns& ns) {
  lab::netns_scope in(ns);
  unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(endpoint_.port());
  if (!fd || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    throw lab_error(errno_message("filler connect", errno));
  fillers_.push_back(std::move(fd));
}

} // namespace backlog_lab::testing
