#include "tests/support/kernel_view.hpp"

#include <gtest/gtest.h>
#include <sstream>

#include "tests/support/support.hpp"

namespace backlog_lab::testing {

std::uint16_t ss_socket::port_of(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) return 0;
  std::string port = address.substr(colon + 1);
  return port == "*" ? 0 : static_cast<std::uint16_t>(std::stoul(port));
}

std::vector<ss_socket> ss_sockets(const lab::netns& ns, const std::string& flags) {
  std::istringstream in(run_ok(ns, {"ss", "-H", flags}));
  std::vector<ss_socket> out;
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    ss_socket s;
    if (!(words >> s.state >> s.recv_q >> s.send_q >> s.local >> s.peer)) continue;
    for (std::string w; words >> w;) {
      if (w.rfind("ino:", 0) == 0) s.inode = std::stoull(w.substr(4));
      if (w.rfind("uid:", 0) == 0) s.uid = static_cast<std::uint32_t>(std::stoul(w.substr(4)));
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<ss_socket> on_port(const std::vector<ss_socket>& all, std::uint16_t port) {
  std::vector<ss_socket> out;
  for (const auto& s : all)
    if (s.local_port() == port) out.push_back(s);
  return out;
}

std::optional<std::uint64_t> ss_listener_drops(const lab::netns& ns, std::uint16_t port) {
  // "LISTEN 3 2 127.0.0.1:8080 0.0.0.0:*" then "skmem:(r0,...,bl0,d34)", on the same line or,
  // depending on ss's version and the output width, on the next one.
  std::istringstream in(run_ok(ns, {"ss", "-H", "-tlmn"}));
  bool ours = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("LISTEN", 0) == 0) {
      std::istringstream words(line);
      std::string state, recv_q, send_q, local;
      words >> state >> recv_q >> send_q >> local;
      ours = ss_socket::port_of(local) == port;
    }
    auto skmem = line.find("skmem:(");
    if (!ours || skmem == std::string::npos) continue;
    auto d = line.find(",d", skmem);
    if (d != std::string::npos) return std::stoull(line.substr(d + 2));
  }
  return std::nullopt;
}

std::optional<std::int64_t> nstat_counter(const lab::netns& ns, const std::string& name) {
  std::istringstream in(run_ok(ns, {"nstat", "-asz", name}));
  for (std::string line; std::getline(in, line);) { // "#kernel", then "NAME VALUE RATE"
    std::istringstream words(line);
    std::string key;
    std::int64_t value = 0;
    if (words >> key >> value && key == name) return value;
  }
  return std::nullopt;
}

std::uint64_t nstat_value(const lab::netns& ns, const std::string& name) {
  auto v = nstat_counter(ns, name);
  if (!v) ADD_FAILURE() << "nstat has no " << name;
  return v ? static_cast<std::uint64_t>(*v) : 0;
}

} // namespace backlog_lab::testing
