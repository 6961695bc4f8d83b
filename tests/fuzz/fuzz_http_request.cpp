// libFuzzer target: the backends' HTTP request parser (Beast underneath), on the whole input at
// once and trickled in pieces as a socket would deliver it: the two must agree on a complete
// request, and neither may use more bytes than it was given.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "backends/http_request.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using backlog_lab::backends::request_parser;
  using backlog_lab::backends::request_status;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  request_parser whole;
  std::size_t used = whole.feed(input);
  if (used > size) __builtin_trap();

  // Pieces of 1 to 16 bytes, the length taken from the input's first byte.
  std::size_t step = size ? 1 + data[0] % 16 : 1;
  request_parser trickled;
  std::string unread;
  std::size_t offered = 0, used_total = 0;
  while (trickled.status() == request_status::incomplete && offered < size) {
    unread.append(input.substr(offered, step));
    offered += step;
    std::size_t n = trickled.feed(unread);
    if (n > unread.size()) __builtin_trap();
    used_total += n;
    unread.erase(0, n);
  }
  if (whole.status() == request_status::complete) {
    if (trickled.status() != request_status::complete) __builtin_trap();
    if (used_total != used || trickled.body_bytes() != whole.body_bytes()) __builtin_trap();
  }
  // The parser can start over on what follows.
  whole.next();
  if (whole.feed(input.substr(used)) > size - used) __builtin_trap();
  return 0;
}
