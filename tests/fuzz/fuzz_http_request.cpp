// libFuzzer target: the backends' HTTP request-head parser, on whole inputs and on every prefix
// a reader could have seen so far (a complete head must stay complete as more bytes arrive).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "backends/http_request.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using backlog_lab::backends::head_status;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto whole = backlog_lab::backends::parse_request_head(input);
  if (whole.status == head_status::complete && whole.head_bytes > size) __builtin_trap();
  for (std::size_t n = 0; n < size && n < 512; n += 7) {
    auto part = backlog_lab::backends::parse_request_head(input.substr(0, n));
    // Whatever a prefix decided (complete, bad, ...) the whole input decides the same way.
    if (part.status != head_status::incomplete && part.status != whole.status) __builtin_trap();
    if (part.status == head_status::complete && part.head_bytes != whole.head_bytes)
      __builtin_trap();
  }
  return 0;
}
