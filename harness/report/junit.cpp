// JUnit XML: one testsuite per run, one testcase per expectation, so CI systems show each
// assertion on its own with measured and expected values.
#include <iomanip>
#include <sstream>

#include "harness/report/report.hpp"

namespace backlog_lab::report {
namespace {

std::string num(double v) {
  std::ostringstream s;
  s << std::setprecision(12) << v;
  return s.str();
}

} // namespace

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
    case '&':
      out += "&amp;";
      break;
    case '<':
      out += "&lt;";
      break;
    case '>':
      out += "&gt;";
      break;
    case '"':
      out += "&quot;";
      break;
    case '\'':
      out += "&apos;";
      break;
    default:
      // XML 1.0 forbids most control characters, even escaped.
      if (static_cast<unsigned char>(c) >= 0x20 || c == '\n' || c == '\t') out += c;
    }
  }
  return out;
}

void write_junit(std::ostream& out, const std::vector<const runner::run_result*>& runs,
                 const std::string& suite_name, const junit_stop& stop) {
  size_t tests = 0, failures = 0;
  for (const auto* r : runs) {
    tests += r->expectations.size() + (r->interrupted ? 1 : 0);
    for (const auto& e : r->expectations)
      failures += !e.passed;
    failures += r->interrupted ? 1 : 0;
  }
  out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out << "<testsuites name=\"" << xml_escape(suite_name) << "\" tests=\"" << tests
      << "\" failures=\"" << failures << "\">\n";
  for (const auto* r : runs) {
    size_t f = r->interrupted ? 1 : 0;
    for (const auto& e : r->expectations)
      f += !e.passed;
    out << "  <testsuite name=\"" << xml_escape(r->scenario.name) << "\" tests=\""
        << r->expectations.size() + (r->interrupted ? 1 : 0) << "\" failures=\"" << f
        << "\" errors=\"0\" time=\"" << num(r->run_ms / 1000) << "\">\n";
    out << "    <properties>\n      <property name=\"seed\" value=\"" << r->seed
        << "\"/>\n      <property name=\"kernel\" value=\"" << xml_escape(r->kernel)
        << "\"/>\n      <property name=\"source\" value=\"" << xml_escape(r->scenario.source)
        << "\"/>\n    </properties>\n";
    for (const auto& e : r->expectations) {
      std::string op(scenario::name_of(e.spec.op));
      std::string name =
          e.spec.metric + " " + op + " " + (e.spec.value ? num(*e.spec.value) : *e.spec.other);
      out << "    <testcase classname=\"" << xml_escape(r->scenario.name) << "\" name=\""
          << xml_escape(name) << "\" time=\"0\"";
      if (e.passed) {
        out << "/>\n";
        continue;
      }
      std::string msg = "measured " + (e.measured ? num(*e.measured) : std::string("nothing")) +
                        ", expected " + op + " " +
                        (e.expected ? num(*e.expected) : std::string("a value"));
      if (!e.note.empty()) msg += " (" + e.note + ")";
      out << ">\n      <failure message=\"" << xml_escape(msg) << "\" type=\"expectation\">"
          << xml_escape(e.spec.description) << "</failure>\n    </testcase>\n";
    }
    if (r->interrupted)
      out << "    <testcase classname=\"" << xml_escape(r->scenario.name) << "\" name=\""
          << xml_escape(stop.testcase) << "\" time=\"0\">\n      <failure message=\""
          << xml_escape(stop.message) << "\" type=\"interrupted\"/>\n    </testcase>\n";
    out << "  </testsuite>\n";
  }
  out << "</testsuites>\n";
}

} // namespace backlog_lab::report
