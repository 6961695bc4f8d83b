// libFuzzer target: the `--set KEY=V1,V2,...` parser of run and sweep, one argument per input line.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "harness/core/error.hpp"
#include "harness/scenario/overrides.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  while (!input.empty()) {
    auto end = input.find('\n');
    std::string line(input.substr(0, end));
    input = end == std::string_view::npos ? std::string_view() : input.substr(end + 1);
    try {
      auto axis = backlog_lab::scenario::parse_set(line);
      for (const auto& v : axis.values)
        (void)backlog_lab::scenario::value_text(v);
    } catch (const backlog_lab::input_error&) {
    }
  }
  return 0;
}
