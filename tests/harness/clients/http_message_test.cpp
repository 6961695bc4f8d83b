#include <gtest/gtest.h>
#include <string>

#include "harness/clients/http_message.hpp"
#include "harness/core/error.hpp"

namespace backlog_lab::clients {
namespace {

std::string request_text(const request_source& source, std::uint32_t size) {
  char scratch[request_source::scratch_bytes];
  auto pieces = source.pieces(size, scratch);
  return std::string(pieces[0]) + std::string(pieces[1]);
}

/// Checks that `text` is one syntactically valid HTTP/1.1 request and nothing more.
::testing::AssertionResult is_one_http_request(const std::string& text) {
  auto head_end = text.find("\r\n\r\n");
  if (head_end == std::string::npos) return ::testing::AssertionFailure() << "no end of head";
  std::string head = text.substr(0, head_end + 2);
  std::string body = text.substr(head_end + 4);
  bool get = head.rfind("GET /", 0) == 0;
  bool post = head.rfind("POST /", 0) == 0;
  if (!get && !post) return ::testing::AssertionFailure() << "method: " << head.substr(0, 10);
  auto line_end = head.find("\r\n");
  if (head.substr(line_end - 9, 9) != " HTTP/1.1") return ::testing::AssertionFailure() << "line";
  // Every header line is "Name: value".
  for (std::size_t pos = line_end + 2; pos < head.size();) {
    auto next = head.find("\r\n", pos);
    auto line = head.substr(pos, next - pos);
    auto colon = line.find(": ");
    if (colon == std::string::npos || colon == 0)
      return ::testing::AssertionFailure() << "header line '" << line << "'";
    pos = next + 2;
  }
  if (head.find("\r\nHost: ") == std::string::npos) return ::testing::AssertionFailure() << "Host";
  auto cl = head.find("\r\nContent-Length: ");
  std::size_t length = cl == std::string::npos ? 0 : std::stoul(head.substr(cl + 18));
  if (post != (cl != std::string::npos)) return ::testing::AssertionFailure() << "Content-Length";
  if (body.size() != length)
    return ::testing::AssertionFailure() << "body " << body.size() << " != " << length;
  return ::testing::AssertionSuccess();
}

TEST(request_source, http_requests_have_exactly_the_chosen_size) {
  request_source source(request_kind::http, request_source::min_http_bytes, 200'000, "t");
  for (std::uint32_t size = request_source::min_http_bytes; size <= 12'000; ++size) {
    auto text = request_text(source, size);
    ASSERT_EQ(text.size(), size);
    ASSERT_TRUE(is_one_http_request(text)) << size;
  }
  // Around powers of ten of the body length, and the large bodies of docs/incident.md.
  for (std::uint32_t size : {9'999u, 10'000u, 10'001u, 10'115u, 10'116u, 10'117u, 31'372u, 100'119u,
                             100'120u, 100'121u, 103'876u, 200'000u}) {
    auto text = request_text(source, size);
    ASSERT_EQ(text.size(), size);
    ASSERT_TRUE(is_one_http_request(text)) << size;
  }
  EXPECT_EQ(request_text(source, request_source::min_http_bytes),
            "GET / HTTP/1.1\r\nHost: backlog-lab\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(request_text(source, 4096).rfind("GET ", 0), 0u);
  EXPECT_EQ(request_text(source, 4097).rfind("POST ", 0), 0u);
}

TEST(request_source, raw_and_none) {
  request_source raw(request_kind::raw, 1, 1000, "t");
  EXPECT_EQ(request_text(raw, 1), "x");
  EXPECT_EQ(request_text(raw, 1000).size(), 1000u);
  request_source none(request_kind::none, 0, 0, "t");
  EXPECT_EQ(request_text(none, 0), "");
  request_source nothing(request_kind::http, 0, 0, "t");
  EXPECT_EQ(request_text(nothing, 0), "");
}

TEST(request_source, impossible_sizes_are_input_errors) {
  EXPECT_THROW(request_source(request_kind::http, 10, 100, "t"), input_error);
  EXPECT_THROW(request_source(request_kind::http, 0, 100, "t"), input_error);
  EXPECT_THROW(request_source(request_kind::none, 0, 10, "t"), input_error);
  EXPECT_THROW(request_source(request_kind::raw, 20, 10, "t"), input_error);
  EXPECT_THROW(request_source(request_kind::raw, 0, request_source::max_request_bytes + 1, "t"),
               input_error);
  try {
    request_source(request_kind::http, 10, 100, "clients/web");
  } catch (const input_error& e) {
    EXPECT_EQ(e.where(), "clients/web");
    EXPECT_NE(e.expected().find(std::to_string(request_source::min_http_bytes)), std::string::npos);
  }
}

using result = http_response_parser::result;

result feed_bytewise(http_response_parser& p, const std::string& text) {
  result r = result::need_more;
  for (char c : text) {
    r = p.feed(&c, 1);
    if (r != result::need_more) break;
  }
  return r;
}

TEST(http_response_parser, content_length_whole_and_byte_by_byte) {
  const std::string text = "HTTP/1.1 200 OK\r\ncontent-LENGTH: 5\r\nServer: x\r\n\r\nhello";
  http_response_parser whole;
  EXPECT_EQ(whole.feed(text.data(), text.size()), result::complete);
  EXPECT_EQ(whole.status(), 200);
  http_response_parser bytes;
  EXPECT_EQ(feed_bytewise(bytes, text.substr(0, text.size() - 1)), result::need_more);
  EXPECT_EQ(bytes.feed("o", 1), result::complete);
  http_response_parser eof;
  EXPECT_EQ(eof.feed(text.data(), text.size() - 2), result::need_more);
  EXPECT_FALSE(eof.on_eof()); // a short body is not a response
}

TEST(http_response_parser, chunked_with_extensions_and_trailers) {
  const std::string text = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n"
                           "5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n";
  http_response_parser p;
  EXPECT_EQ(feed_bytewise(p, text.substr(0, text.size() - 2)), result::need_more);
  EXPECT_EQ(p.feed("\r\n", 2), result::complete);
  http_response_parser whole;
  EXPECT_EQ(whole.feed(text.data(), text.size()), result::complete);
}

TEST(http_response_parser, interim_no_body_and_until_eof) {
  http_response_parser p;
  std::string cont = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
  EXPECT_EQ(p.feed(cont.data(), cont.size()), result::complete);
  EXPECT_EQ(p.status(), 204);
  http_response_parser q;
  std::string close = "HTTP/1.0 200 OK\r\n\r\nbody until the peer closes";
  EXPECT_EQ(q.feed(close.data(), close.size()), result::need_more);
  EXPECT_TRUE(q.on_eof());
  http_response_parser z;
  std::string empty = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
  EXPECT_EQ(z.feed(empty.data(), empty.size()), result::complete);
  EXPECT_EQ(z.status(), 503);
}

TEST(http_response_parser, malformed_input) {
  // The HTTP/2 SETTINGS frame a gRPC backend sends first (docs/incident.md) is not an HTTP/1
  // response.
  const char frame[] = {0, 0, 0x18, 4, 0, 0, 0, 0, 0};
  http_response_parser p;
  EXPECT_EQ(p.feed(frame, sizeof frame), result::malformed);
  http_response_parser q;
  std::string bad_code = "HTTP/1.1 2x0 OK\r\n\r\n";
  EXPECT_EQ(q.feed(bad_code.data(), bad_code.size()), result::malformed);
  http_response_parser r;
  std::string huge = "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n";
  EXPECT_EQ(r.feed(huge.data(), huge.size()), result::malformed);
}

} // namespace
} // namespace backlog_lab::clients
