#pragma once
// An incremental HTTP/1.1 request-head parser for the http backend: pure, allocation-free, and
// total (every input gives a status, none crashes), so it can be tested on its own.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace backlog_lab::backends {

/// Longest request head (request line + headers) accepted; longer ones are answered with 431.
inline constexpr size_t max_request_head = 16 * 1024;

/// What the start of a connection's unread bytes holds.
enum class head_status {
  incomplete,  ///< no blank line yet and nothing wrong so far: read more
  complete,    ///< a valid head of `head_bytes` bytes
  bad,         ///< malformed (answer 400 and close)
  too_large,   ///< no end within max_request_head bytes (answer 431 and close)
  unsupported, ///< valid but uses Transfer-Encoding, which this server does not decode (501)
};

/// One parsed request head.
struct request_head {
  head_status status = head_status::incomplete;
  size_t head_bytes = 0;        ///< bytes up to and including the blank line (leading CRLFs too)
  uint64_t content_length = 0;  ///< body bytes that follow the head
  bool keep_alive = false;      ///< the client lets the connection stay open (version + Connection)
  bool head_method = false;     ///< HEAD: the response carries no body
  bool expect_continue = false; ///< "Expect: 100-continue": the client waits for a 100 first
};

/// Parses the request head at the start of `data` (CRLF or bare LF line ends). A bad request
/// line is reported as soon as that line is complete, so garbage is refused without waiting.
request_head parse_request_head(std::string_view data);

} // namespace backlog_lab::backends
