#include "proxy_sim/userspace/socket_pool.hpp"

namespace backlog_lab::proxy_sim {

socket_pool::socket_pool(net::io_context& io, const lab::netns& ns, std::size_t batch)
    : io_(io), ns_(ns.duplicate()), batch_(batch == 0 ? 1 : batch) {}

tcp::socket socket_pool::take(const tcp& protocol, boost::system::error_code& ec) {
  ec.clear();
  auto& spare = protocol == tcp::v6() ? v6_ : v4_;
  if (spare.empty()) {
    lab::netns_scope in(ns_);
    for (std::size_t i = 0; i < batch_; ++i) {
      tcp::socket s(io_);
      // Opened by Asio itself (not assign()ed), so it knows the descriptor is no dup and
      // close() skips an EPOLL_CTL_DEL; non-blocking now, so the proxier can connect() directly.
      s.open(protocol, ec);
      if (!ec) s.native_non_blocking(true, ec);
      if (ec) break;
      spare.push_back(std::move(s));
    }
    if (spare.empty()) return tcp::socket(io_);
  }
  ec.clear();
  tcp::socket s = std::move(spare.back());
  spare.pop_back();
  return s;
}

void socket_pool::clear() {
  v4_.clear();
  v6_.clear();
}

} // namespace backlog_lab::proxy_sim
