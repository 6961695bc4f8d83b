#include "harness/observer/tcp_state.hpp"

#include <numeric>

namespace backlog_lab::observer {
namespace {

// iproute2 misc/ss.c sstate_name[], which is what users compare against.
constexpr std::array<std::string_view, tcp_state_slots> names = {
    "UNKNOWN",   "ESTAB",  "SYN-SENT",   "SYN-RECV", "FIN-WAIT-1", "FIN-WAIT-2",
    "TIME-WAIT", "UNCONN", "CLOSE-WAIT", "LAST-ACK", "LISTEN",     "CLOSING",
};

} // namespace

std::string_view state_name(tcp_state s) noexcept {
  auto i = static_cast<std::size_t>(s);
  if (!is_valid_state(static_cast<std::uint8_t>(i))) return "UNKNOWN";
  return names[i];
}

std::optional<tcp_state> state_from_name(std::string_view name) noexcept {
  for (std::uint8_t i = 1; i < tcp_state_slots; ++i)
    if (state_name(static_cast<tcp_state>(i)) == name) return static_cast<tcp_state>(i);
  if (name == "CLOSE") return tcp_state::close;
  return std::nullopt;
}

std::uint32_t state_counts::total() const noexcept {
  return std::accumulate(by_state.begin(), by_state.end(), std::uint32_t{0});
}

} // namespace backlog_lab::observer
