#pragma once
// Prometheus text exposition format 0.0.4 (prometheus/docs, content/docs/instrumenting/
// exposition_formats.md): one HELP and TYPE line per family, then its samples, label values
// escaped.
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace backlog_lab::exporter {

/// The Content-Type of the text format.
inline constexpr std::string_view text_content_type = "text/plain; version=0.0.4; charset=utf-8";

/// One label of a sample.
struct label {
  std::string_view name;
  std::string_view value;
};

/// Appends metric families to a string in the text format.
class exposition {
public:
  /// Starts family `name` of `type` ("counter", "gauge", "untyped") with its help text.
  void family(std::string_view name, std::string_view type, std::string_view help);
  /// One sample of the current family (or of `name` with a suffix, for histograms).
  void sample(std::string_view name, std::initializer_list<label> labels, std::uint64_t value);
  /// Same with a floating-point value (shortest round-trip form).
  void sample(std::string_view name, std::initializer_list<label> labels, double value);
  /// Same with a signed value.
  void sample_signed(std::string_view name, std::initializer_list<label> labels,
                     std::int64_t value);
  /// The text so far.
  const std::string& text() const noexcept { return out_; }
  /// Moves the text out and starts afresh.
  std::string take();

private:
  void begin_sample(std::string_view name, std::initializer_list<label> labels);
  std::string out_;
};

/// `value` escaped for a label value: backslash, double quote and newline.
std::string escape_label_value(std::string_view value);

} // namespace backlog_lab::exporter
