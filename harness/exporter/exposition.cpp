#include "harness/exporter/exposition.hpp"

#include <array>
#include <charconv>
#include <cmath>

namespace backlog_lab::exporter {
namespace {

void append_escaped(std::string& out, std::string_view value, bool quote) {
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

template <class T> void append_number(std::string& out, T value) {
  std::array<char, 32> buf{};
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), value);
  out.append(buf.data(), ec == std::errc{} ? end : buf.data());
}

} // namespace

void exposition::family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  append_escaped(out_, help, false); // HELP escapes backslash and newline only
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void exposition::begin_sample(std::string_view name, std::initializer_list<label> labels) {
  out_ += name;
  bool first = true;
  for (const auto& l : labels) {
    if (l.value.empty()) continue; // an empty value is the same as no label
    out_ += first ? '{' : ',';
    first = false;
    out_ += l.name;
    out_ += "=\"";
    append_escaped(out_, l.value, true);
    out_ += '"';
  }
  if (!first) out_ += '}';
  out_ += ' ';
}

void exposition::sample(std::string_view name, std::initializer_list<label> labels,
                        std::uint64_t value) {
  begin_sample(name, labels);
  append_number(out_, value);
  out_ += '\n';
}

void exposition::sample_signed(std::string_view name, std::initializer_list<label> labels,
                               std::int64_t value) {
  begin_sample(name, labels);
  append_number(out_, value);
  out_ += '\n';
}

void exposition::sample(std::string_view name, std::initializer_list<label> labels, double value) {
  begin_sample(name, labels);
  if (std::isnan(value)) {
    out_ += "NaN";
  } else if (std::isinf(value)) {
    out_ += value > 0 ? "+Inf" : "-Inf";
  } else {
    append_number(out_, value);
  }
  out_ += '\n';
}

std::string exposition::take() {
  std::string t = std::move(out_);
  out_.clear();
  return t;
}

std::string escape_label_value(std::string_view value) {
  std::string out;
  append_escaped(out, value, true);
  return out;
}

} // namespace backlog_lab::exporter
