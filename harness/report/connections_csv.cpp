#include <iomanip>

#include "harness/report/report.hpp"

namespace backlog_lab::report {
namespace {

// A CSV field as RFC 4180 wants it: quoted, with quotes doubled, when it holds a comma, a quote
// or a line break (group names come from the scenario file).
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text)
    out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

} // namespace

void write_connections_csv(std::ostream& out, const runner::run_result& r) {
  auto ms = [](std::chrono::nanoseconds ns) { return ns.count() / 1e6; };
  out << "group,source,local_port,intended_ms,started_ms,connected_ms,finished_ms,outcome,errno,"
         "request_bytes,response_bytes,http_status\n";
  out << std::fixed << std::setprecision(3);
  for (const auto& [name, c] : r.clients) {
    auto addrs = r.client_addresses.find(name);
    for (const auto& rec : c.records) {
      std::string source =
          addrs != r.client_addresses.end() && rec.source_index < addrs->second.size()
              ? addrs->second[rec.source_index]
              : "";
      out << csv_field(name) << "," << csv_field(source) << "," << rec.local_port << ","
          << ms(rec.intended_start) << "," << ms(rec.started) << ",";
      if (rec.connected.count() >= 0) out << ms(rec.connected);
      out << "," << ms(rec.finished) << "," << clients::to_string(rec.kind) << "," << rec.error
          << "," << rec.request_bytes << "," << rec.response_bytes << "," << rec.http_status
          << "\n";
    }
  }
}

} // namespace backlog_lab::report
