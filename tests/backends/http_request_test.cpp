// The http backend's request parser (Beast underneath): heads, Content-Length and chunked
// bodies, pipelining, byte-by-byte arrival, and hostile input.
#include <gtest/gtest.h>
#include <random>
#include <string>

#include "backends/http_request.hpp"

namespace backlog_lab::backends {
namespace {

/// What one feed of `data` into a fresh parser decided.
struct parsed {
  request_status status;
  size_t used;
  bool keep_alive, head_method, expect_continue;
  uint64_t body;
};

parsed parse(std::string_view data) {
  request_parser p;
  size_t used = p.feed(data);
  return {p.status(), used, p.keep_alive(), p.head_method(), p.expect_continue(), p.body_bytes()};
}

/// Feeds `data` as a reader would see it arrive, `step` bytes at a time, offering unused bytes
/// again with the next ones; returns the parser's state after the first complete request.
parsed trickle(const std::string& data, size_t step) {
  request_parser p;
  std::string unread;
  size_t offered = 0, used_total = 0;
  while (p.status() == request_status::incomplete && offered < data.size()) {
    unread += data.substr(offered, step);
    offered += step;
    size_t used = p.feed(unread);
    used_total += used;
    unread.erase(0, used);
  }
  return {p.status(),      used_total,          p.keep_alive(),
          p.head_method(), p.expect_continue(), p.body_bytes()};
}

TEST(request_parser, get_with_keep_alive_by_default_in_http11) {
  std::string r = "GET /x HTTP/1.1\r\nHost: a\r\n\r\n";
  auto h = parse(r);
  ASSERT_EQ(h.status, request_status::complete);
  EXPECT_EQ(h.used, r.size());
  EXPECT_EQ(h.body, 0u);
  EXPECT_TRUE(h.keep_alive);
  EXPECT_FALSE(h.head_method);
}

TEST(request_parser, connection_close_and_http10) {
  EXPECT_FALSE(parse("GET / HTTP/1.1\r\nConnection: Keep-Alive, CLOSE\r\n\r\n").keep_alive);
  EXPECT_FALSE(parse("GET / HTTP/1.0\r\n\r\n").keep_alive);
  EXPECT_TRUE(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
}

TEST(request_parser, content_length_body_is_read_and_the_next_request_left) {
  std::string first = "POST /p HTTP/1.1\r\ncontent-length:  5 \r\nExpect: 100-continue\r\n\r\n";
  auto h = parse(first + "hello" + "GET / HTTP/1.1\r\n\r\n");
  ASSERT_EQ(h.status, request_status::complete);
  EXPECT_EQ(h.used, first.size() + 5);
  EXPECT_EQ(h.body, 5u);
  EXPECT_TRUE(h.expect_continue);
}

TEST(request_parser, chunked_bodies_are_decoded_and_counted) {
  std::string r = "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: x\r\n\r\n";
  for (size_t step : {r.size(), size_t{1}, size_t{7}}) {
    auto h = trickle(r + "GET / HTTP/1.1\r\n\r\n", step);
    ASSERT_EQ(h.status, request_status::complete) << step;
    EXPECT_EQ(h.body, 31u) << step;
    EXPECT_EQ(h.used, r.size()) << step;
    EXPECT_TRUE(h.keep_alive) << step;
  }
}

TEST(request_parser, head_done_before_the_body_for_100_continue) {
  request_parser p;
  std::string head = "PUT /u HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n";
  EXPECT_EQ(p.feed(head), head.size());
  EXPECT_EQ(p.status(), request_status::incomplete);
  EXPECT_TRUE(p.head_done());
  EXPECT_TRUE(p.expect_continue());
  EXPECT_EQ(p.feed("abc"), 3u);
  EXPECT_EQ(p.status(), request_status::complete);
  p.next(); // the connection's next request starts clean
  EXPECT_FALSE(p.head_done());
  EXPECT_EQ(p.body_bytes(), 0u);
  EXPECT_EQ(p.feed("HEAD / HTTP/1.1\r\n\r\n"), 19u);
  EXPECT_TRUE(p.head_method());
  EXPECT_FALSE(p.expect_continue());
}

TEST(request_parser, leading_empty_lines_are_skipped) {
  auto h = parse("\r\n\nHEAD / HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_EQ(h.status, request_status::complete);
  EXPECT_TRUE(h.head_method);
  EXPECT_EQ(h.used, 31u);
  // A CR alone may be the start of a CRLF: wait for what follows.
  EXPECT_EQ(parse("\r").status, request_status::incomplete);
}

TEST(request_parser, every_prefix_of_a_valid_request_is_incomplete) {
  std::string r = "POST /upload?a=b HTTP/1.1\r\nHost: example\r\nContent-Length: 12\r\n\r\n"
                  "0123456789ab";
  for (size_t n = 1; n < r.size(); ++n)
    EXPECT_EQ(parse(r.substr(0, n)).status, request_status::incomplete) << n;
  EXPECT_EQ(parse(r).status, request_status::complete);
  for (size_t step = 1; step < 9; ++step)
    EXPECT_EQ(trickle(r, step).body, 12u) << step;
}

TEST(request_parser, malformed_requests_are_bad) {
  for (std::string bad : {
           "\x16\x03\x01\x02\x00",                         // a TLS ClientHello
           "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",             // the HTTP/2 preface
           "GET /\r\n\r\n",                                // no version
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
           "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", // not a chunk size
           "\r\rGET / HTTP/1.1\r\n\r\n",
       })
    EXPECT_EQ(parse(bad).status, request_status::bad) << bad;
}

TEST(request_parser, garbage_is_refused_before_a_line_end) {
  EXPECT_EQ(parse(std::string_view("\x00\x01", 2)).status, request_status::bad);
  EXPECT_EQ(parse("{\"json\":").status, request_status::bad);
  EXPECT_EQ(parse("GET").status, request_status::incomplete);
}

TEST(request_parser, huge_heads_are_too_large) {
  std::string big = "GET / HTTP/1.1\r\nX: " + std::string(max_request_head, 'a');
  EXPECT_EQ(parse(big).status, request_status::too_large);
  EXPECT_EQ(parse(big + "\r\n\r\n").status, request_status::too_large);
  // Arriving in pieces: the request line is taken first, the limit still holds.
  EXPECT_EQ(trickle(big, 1000).status, request_status::too_large);
  EXPECT_EQ(parse(std::string(max_request_head + 1, 'A')).status, request_status::too_large);
}

TEST(request_parser, random_bytes_never_crash_and_give_a_status) {
  std::mt19937 rng(7);
  std::string r = "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                  "3\r\nabc\r\n0\r\n\r\n";
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
    auto h = trickle(s, 1 + rng() % 16);
    EXPECT_LE(h.used, s.size());
  }
}

} // namespace
} // namespace backlog_lab::backends
