#pragma once
// TCP states in the kernel's numbering (include/net/tcp_states.h) with the names ss prints.
#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace backlog_lab::observer {

/// A TCP socket state as sock_diag reports it (kernel numbering, 1..11).
enum class tcp_state : std::uint8_t {
  established = 1,
  syn_sent = 2,
  syn_recv = 3,
  fin_wait1 = 4,
  fin_wait2 = 5,
  time_wait = 6,
  close = 7,
  close_wait = 8,
  last_ack = 9,
  listen = 10,
  closing = 11,
};

/// One past the highest state number; arrays indexed by state have this size.
inline constexpr std::size_t tcp_state_slots = 12;

/// The state's name as `ss` prints it ("ESTAB", "CLOSE-WAIT", ...; TCP_CLOSE is "UNCONN", as in
/// ss); "UNKNOWN" out of range.
std::string_view state_name(tcp_state s) noexcept;

/// The state whose ss name is `name` (exact, upper case; "CLOSE" accepted too), if any.
std::optional<tcp_state> state_from_name(std::string_view name) noexcept;

/// Whether `value` is a state number sock_diag can report for TCP (1..11).
constexpr bool is_valid_state(std::uint8_t value) noexcept {
  return value >= 1 && value <= 11;
}

/// Socket counts per state, indexed by the kernel's state number.
struct state_counts {
  std::array<std::uint32_t, tcp_state_slots> by_state{};

  std::uint32_t& operator[](tcp_state s) noexcept { return by_state[static_cast<std::size_t>(s)]; }
  std::uint32_t operator[](tcp_state s) const noexcept {
    return by_state[static_cast<std::size_t>(s)];
  }
  /// Sum over all states.
  std::uint32_t total() const noexcept;
  bool operator==(const state_counts&) const = default;
};

} // namespace backlog_lab::observer
