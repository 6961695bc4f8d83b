// libFuzzer target: the clients' streaming HTTP response parser, fed the input at once and in
// pieces; both must reach the same verdict.
#include <cstddef>
#include <cstdint>

#include "harness/clients/http_message.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using parser = backlog_lab::clients::http_response_parser;
  const char* text = reinterpret_cast<const char*>(data);
  parser whole;
  auto a = whole.feed(text, size);
  bool a_eof = a == parser::result::need_more && whole.on_eof();
  parser pieces;
  auto b = parser::result::need_more;
  for (std::size_t at = 0; at < size && b == parser::result::need_more;) {
    std::size_t n = 1 + (data[at] % 13);
    if (n > size - at) n = size - at;
    b = pieces.feed(text + at, n);
    at += n;
  }
  bool b_eof = b == parser::result::need_more && pieces.on_eof();
  if (a != b || a_eof != b_eof || whole.status() != pieces.status()) __builtin_trap();
  return 0;
}
