#include <gtest/gtest.h>
#include <random>
#include <string>

#include "backends/http_request.hpp"

namespace backlog_lab::backends {
namespace {

TEST(parse_request_head, get_with_keep_alive_by_default_in_http11) {
  std::string r = "GET /x HTTP/1.1\r\nHost: a\r\n\r\n";
  auto h = parse_request_head(r);
  ASSERT_EQ(h.status, head_status::complete);
  EXPECT_EQ(h.head_bytes, r.size());
  EXPECT_EQ(h.content_length, 0u);
  EXPECT_TRUE(h.keep_alive);
  EXPECT_FALSE(h.head_method);
}

TEST(parse_request_head, connection_close_and_http10) {
  EXPECT_FALSE(
      parse_request_head("GET / HTTP/1.1\r\nConnection: Keep-Alive, CLOSE\r\n\r\n").keep_alive);
  EXPECT_FALSE(parse_request_head("GET / HTTP/1.0\r\n\r\n").keep_alive);
  EXPECT_TRUE(parse_request_head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
}

TEST(parse_request_head, content_length_body_is_not_part_of_the_head) {
  std::string head = "POST /p HTTP/1.1\r\ncontent-length:  5 \r\nExpect: 100-continue\r\n\r\n";
  auto h = parse_request_head(head + "hello" + "GET / HTTP/1.1\r\n\r\n");
  ASSERT_EQ(h.status, head_status::complete);
  EXPECT_EQ(h.head_bytes, head.size());
  EXPECT_EQ(h.content_length, 5u);
  EXPECT_TRUE(h.expect_continue);
}

TEST(parse_request_head, bare_lf_and_leading_empty_lines) {
  auto h = parse_request_head("\r\n\nHEAD / HTTP/1.1\nHost: a\n\n");
  ASSERT_EQ(h.status, head_status::complete);
  EXPECT_TRUE(h.head_method);
  EXPECT_EQ(h.head_bytes, 28u);
}

TEST(parse_request_head, every_prefix_of_a_valid_request_is_incomplete) {
  std::string r = "POST /upload?a=b HTTP/1.1\r\nHost: example\r\nContent-Length: 12\r\n\r\n";
  for (size_t n = 1; n < r.size(); ++n)
    EXPECT_EQ(parse_request_head(r.substr(0, n)).status, head_status::incomplete) << n;
  EXPECT_EQ(parse_request_head(r).status, head_status::complete);
}

TEST(parse_request_head, malformed_requests_are_bad) {
  for (std::string bad : {
           "\x16\x03\x01\x02\x00",                         // a TLS ClientHello
           "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",             // the HTTP/2 preface
           "GET /\r\n\r\n",                                // no version
           "GET  / HTTP/1.1\r\n\r\n",                      // empty target
           "GET / HTTP/1.1 \r\n\r\n",                      // trailing space in the version
           "G(T / HTTP/1.1\r\n\r\n",                       // not a token
           "GET / HTTP/1.1\r\nNoColon\r\n\r\n",            // header without ':'
           "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",        // space in a name
           "GET / HTTP/1.1\r\n folded: x\r\n\r\n",         // obs-fold
           "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", // not digits
           "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
           "GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
           "GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", // control character in a value
           "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
           "\r\rGET / HTTP/1.1\r\n\r\n",
       })
    EXPECT_EQ(parse_request_head(bad).status, head_status::bad) << bad;
}

TEST(parse_request_head, garbage_is_refused_before_a_line_end) {
  EXPECT_EQ(parse_request_head(std::string_view("\x00\x01", 2)).status, head_status::bad);
  EXPECT_EQ(parse_request_head("{\"json\":").status, head_status::bad);
  EXPECT_EQ(parse_request_head("GET").status, head_status::incomplete);
}

TEST(parse_request_head, chunked_is_unsupported_and_huge_heads_too_large) {
  EXPECT_EQ(parse_request_head("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").status,
            head_status::unsupported);
  std::string big = "GET / HTTP/1.1\r\nX: " + std::string(max_request_head, 'a');
  EXPECT_EQ(parse_request_head(big).status, head_status::too_large);
  EXPECT_EQ(parse_request_head(big + "\r\n\r\n").status, head_status::too_large);
  EXPECT_EQ(parse_request_head(std::string(max_request_head + 1, 'A')).status,
            head_status::too_large);
}

TEST(parse_request_head, random_bytes_never_crash_and_give_a_status) {
  std::mt19937 rng(7);
  std::string r = "POST /a HTTP/1.1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc";
  for (int i = 0; i < 20000; ++i) {
    std::string s = r;
    // Flip a few bytes of a valid request, or take pure noise of random length.
    if (i % 2) {
      for (int k = 0; k < 3; ++k)
        s[rng() % s.size()] = static_cast<char>(rng());
    } else {
      s.assign(rng() % 64, '\0');
      for (auto& ch : s)
        ch = static_cast<char>(rng());
    }
    auto h = parse_request_head(s);
    if (h.status == head_status::complete) {
      EXPECT_LE(h.head_bytes, s.size());
    }
  }
}

} // namespace
} // namespace backlog_lab::backends
