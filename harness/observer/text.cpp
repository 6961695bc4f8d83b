#include "harness/observer/text.hpp"

#include <algorithm>
#include <iomanip>
#include <string>
#include <vector>

#include "harness/observer/json.hpp"

namespace backlog_lab::observer {
namespace {

std::string counts_line(const state_counts& counts) {
  std::string line;
  for (std::uint8_t i = 1; i < tcp_state_slots; ++i) {
    auto s = static_cast<tcp_state>(i);
    if (!counts[s]) continue;
    if (!line.empty()) line += ", ";
    line += std::string(state_name(s)) + " " + std::to_string(counts[s]);
  }
  return line.empty() ? "none" : line;
}

} // namespace

void print_sockets(std::ostream& out, std::span<const tcp_socket> sockets, bool extended) {
  std::vector<std::string> locals, peers;
  locals.reserve(sockets.size());
  peers.reserve(sockets.size());
  std::size_t local_w = 18, peer_w = 17;
  for (const auto& s : sockets) {
    locals.push_back(format_endpoint(s.local, s.v6only));
    peers.push_back(format_endpoint(s.remote, s.v6only));
    local_w = std::max(local_w, locals.back().size());
    peer_w = std::max(peer_w, peers.back().size());
  }
  out << std::left << std::setw(11) << "State" << std::setw(7) << "Recv-Q" << std::setw(7)
      << "Send-Q" << std::setw(static_cast<int>(local_w + 1)) << "Local Address:Port"
      << "Peer Address:Port" << '\n';
  for (std::size_t i = 0; i < sockets.size(); ++i) {
    const auto& s = sockets[i];
    out << std::left << std::setw(11) << state_name(s.state) << std::setw(7) << s.recv_q
        << std::setw(7) << s.send_q << std::setw(static_cast<int>(local_w + 1)) << locals[i];
    if (extended) {
      out << std::setw(static_cast<int>(peer_w + 1)) << peers[i];
      if (s.uid) out << "uid:" << s.uid << ' ';
      out << "ino:" << s.inode << ' ' << shutdown_marker(s.shutdown);
    } else {
      out << peers[i];
    }
    out << '\n';
  }
  out << std::right;
}

void print_totals(std::ostream& out, const state_counts& totals) {
  out << counts_line(totals);
}

void print_listeners(std::ostream& out, const census& c, std::size_t max_peers) {
  if (c.listeners.empty()) {
    out << "No listening sockets.\n";
    return;
  }
  for (const auto& l : c.listeners) {
    out << "LISTEN " << format_endpoint(l.local, l.v6only) << "  accept_queue " << l.accept_queue
        << " / backlog " << l.backlog;
    if (l.full) out << "  FULL (holds backlog + 1)";
    out << "  drops " << l.drops << "  ino:" << l.inode << '\n';
    out << "  children: " << counts_line(l.children) << '\n';
    out << "  un-accepted (inode 0, still in the accept queue): " << l.unaccepted();
    if (l.unaccepted())
      out << " = CLOSE-WAIT " << l.unaccepted_close_wait << " (" << l.unaccepted_close_wait_bytes
          << " bytes queued) + ESTAB " << l.unaccepted_established << " ("
          << l.unaccepted_established_bytes << " bytes queued)";
    out << '\n';
    out << "  owned (accepted): " << l.owned
        << "; kernel-only (requests, orphans, TIME-WAIT): " << l.kernel_only << '\n';
    if (!l.queued.empty()) {
      out << "  queued by Recv-Q:";
      std::size_t shown = 0;
      for (const auto& q : l.queued) {
        if (shown++ == max_peers) {
          out << " ...";
          break;
        }
        out << ' ' << state_name(q.state) << ' ' << q.recv_q << " x" << q.count << ';';
      }
      out << '\n';
      out << "  peers:";
      shown = 0;
      for (const auto& p : l.peers) {
        if (shown++ == max_peers) {
          out << " ... (" << l.peers.size() << " peers)";
          break;
        }
        out << ' ' << p.address.to_string() << " x" << p.count << " (" << p.bytes << " B);";
      }
      out << '\n';
    }
  }
}

void print_counters(std::ostream& out, const counter_map& counters, bool skip_zero) {
  std::size_t w = 0;
  for (const auto& [name, value] : counters)
    if (!skip_zero || value) w = std::max(w, name.size());
  for (const auto& [name, value] : counters) {
    if (skip_zero && !value) continue;
    out << std::left << std::setw(static_cast<int>(w + 2)) << name << std::right << value << '\n';
  }
}

} // namespace backlog_lab::observer
