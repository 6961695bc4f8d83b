#pragma once
// TCP/IP MIB counters of one namespace (/proc/net/netstat and /proc/net/snmp) under nstat's
// names: prefix + field, e.g. "TcpExtListenOverflows", "TcpPassiveOpens", "IpExtInOctets".
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "harness/lab/netns.hpp"

namespace backlog_lab::observer {

/// Counter values keyed by nstat's names. Signed because /proc/net/snmp has TcpMaxConn -1.
using counter_map = std::map<std::string, std::int64_t, std::less<>>;

/// Where and why counter text could not be parsed.
struct counter_parse_error {
  std::size_t line = 0; ///< 1-based line number in the text
  std::string message;
  /// "line N: message".
  std::string describe() const;
};

/// Parses the text of /proc/net/netstat or /proc/net/snmp (pairs of "Prefix: Name ..." and
/// "Prefix: value ..." lines) into `out`, adding or overwriting entries. Pure; on malformed text
/// (empty, a header without its value line, prefixes that differ, counts that differ, a value
/// that is not an integer or overflows) it returns the error and `out` may hold a prefix of the
/// entries. A name repeated in the text keeps its last value. `fields_parsed` (if given) is
/// increased by the number of values read.
std::optional<counter_parse_error> parse_counter_text(std::string_view text, counter_map& out,
                                                      std::size_t* fields_parsed = nullptr);

/// The counters of one namespace at one moment.
struct counter_snapshot {
  counter_map values;
  std::chrono::steady_clock::time_point taken{};

  /// The value of `name`, if the kernel has it.
  std::optional<std::int64_t> get(std::string_view name) const;
  /// The value of `name`, or 0 if the kernel lacks it.
  std::int64_t value_or_zero(std::string_view name) const;
};

/// after - before for every counter in `after` (a counter missing in `before` counts from 0).
counter_map delta(const counter_map& before, const counter_map& after);
/// after - before of two snapshots.
counter_map delta(const counter_snapshot& before, const counter_snapshot& after);

/// Reads one namespace's counters; keeps both files open (a /proc/net file opened inside a
/// namespace keeps reading that namespace after seeking back), so a read is two preads.
class counter_reader {
public:
  /// Opens /proc/thread-self/net/{netstat,snmp} inside `ns` (nullptr: the current namespace).
  explicit counter_reader(const lab::netns* ns = nullptr);

  /// Reads both files into `out`, reusing its map nodes (no allocation in steady state).
  /// Throws lab_error if a file cannot be read or parsed.
  void read(counter_snapshot& out);
  /// Reads a fresh snapshot.
  counter_snapshot read();

private:
  void read_file(int fd, std::string& text, const char* name);

  unique_fd netstat_fd_;
  unique_fd snmp_fd_;
  std::string netstat_text_;
  std::string snmp_text_;
};

} // namespace backlog_lab::observer
