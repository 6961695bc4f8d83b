// The connections CSV: one row per kept record, fields quoted where the scenario's names need it.
#include <algorithm>
#include <gtest/gtest.h>
#include <sstream>

#include "harness/report/report.hpp"
#include "harness/runner/run_result.hpp"

namespace backlog_lab::report {
namespace {

using namespace std::chrono_literals;

TEST(connections_csv, names_with_commas_quotes_and_newlines_stay_one_field) {
  runner::run_result r;
  clients::connection_record rec;
  rec.intended_start = 1ms;
  rec.started = 2ms;
  rec.connected = 3ms;
  rec.finished = 4ms;
  rec.kind = clients::outcome::answered;
  rec.local_port = 40000;
  rec.request_bytes = 100;
  r.clients["tengine, \"A\"\nfront"].records.push_back(rec);
  r.client_addresses["tengine, \"A\"\nfront"] = {"198.51.100.10"};
  std::ostringstream out;
  write_connections_csv(out, r);
  std::string text = out.str();
  std::string header = text.substr(0, text.find('\n'));
  std::string row = text.substr(header.size() + 1);
  EXPECT_EQ(row.rfind("\"tengine, \"\"A\"\"\nfront\",198.51.100.10,40000,1.000,2.000,3.000,4.000,", 0),
            0u)
      << row;
  // Outside the quotes, the row has exactly as many commas as the header.
  size_t commas = 0;
  bool quoted = false;
  for (char c : row) {
    if (c == '"') quoted = !quoted;
    commas += !quoted && c == ',';
  }
  EXPECT_EQ(commas, static_cast<size_t>(std::count(header.begin(), header.end(), ',')));
}

TEST(connections_csv, a_connection_that_never_connected_leaves_its_time_empty) {
  runner::run_result r;
  clients::connection_record rec;
  rec.finished = 5ms;
  rec.kind = clients::outcome::syn_unanswered;
  r.clients["burst"].records.push_back(rec);
  std::ostringstream out;
  write_connections_csv(out, r);
  EXPECT_NE(out.str().find("\nburst,,0,0.000,0.000,,5.000,"), std::string::npos) << out.str();
}

} // namespace
} // namespace backlog_lab::report
