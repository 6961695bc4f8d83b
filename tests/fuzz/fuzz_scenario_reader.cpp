// libFuzzer target: the strict scenario reader, with `--set` overrides. The input is a scenario
// document, optionally followed by lines "\n--set KEY=VALUE" that `run --set` would apply. Bad
// input must end in input_error (a message for the user), never a crash or another exception.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "harness/core/error.hpp"
#include "harness/scenario/overrides.hpp"
#include "harness/scenario/reader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  constexpr std::string_view marker = "\n--set ";
  std::string document(input.substr(0, input.find(marker)));
  std::vector<std::string> sets;
  for (auto at = input.find(marker); at != std::string_view::npos;) {
    auto next = input.find(marker, at + marker.size());
    sets.emplace_back(input.substr(at + marker.size(), next == std::string_view::npos
                                                           ? std::string_view::npos
                                                           : next - at - marker.size()));
    at = next;
  }
  try {
    backlog_lab::scenario::parse_scenario(document, "fuzz.json");
  } catch (const backlog_lab::input_error&) {
  }
  if (!sets.empty()) {
    try {
      backlog_lab::scenario::apply_sets({document, "fuzz.json"}, sets);
    } catch (const backlog_lab::input_error&) {
    }
  }
  return 0;
}
