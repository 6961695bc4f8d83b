#pragma once
// The http backend's request parser: Boost.Beast's HTTP/1.1 parser (boost/beast/http/
// basic_parser.hpp), fed as bytes arrive, with Content-Length and chunked bodies counted and
// dropped, never stored. Total: every input gives a status, none crashes.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

namespace backlog_lab::backends {

/// Longest request head (request line + headers) accepted; longer ones are answered with 431.
inline constexpr size_t max_request_head = 16 * 1024;

/// What a connection's bytes so far hold of the request being read.
enum class request_status {
  incomplete, ///< nothing wrong so far: read more (head_done() tells whether the body is next)
  complete,   ///< a whole request, body included
  bad,        ///< malformed (answer 400 and close)
  too_large,  ///< no end of the head within max_request_head bytes (answer 431 and close)
};

/// One request after another on a connection.
class request_parser {
public:
  request_parser();
  ~request_parser();
  request_parser(request_parser&&) noexcept;
  request_parser& operator=(request_parser&&) noexcept;

  /// Parses the start of `data` (the unread bytes) and returns how many it used. A head is used
  /// only once it is whole, so the caller keeps unused bytes and offers them again with more;
  /// bytes after a complete request belong to the next one.
  size_t feed(std::string_view data);
  /// Starts over for the connection's next request.
  void next();

  request_status status() const noexcept;
  /// The head has been parsed; the body (if any) is being read.
  bool head_done() const noexcept;
  /// The client lets the connection stay open (version and Connection header).
  bool keep_alive() const noexcept;
  /// HEAD: the response carries no body.
  bool head_method() const noexcept;
  /// "Expect: 100-continue": the client waits for a 100 before sending the body.
  bool expect_continue() const noexcept;
  /// Body bytes read so far (after chunked decoding).
  uint64_t body_bytes() const noexcept;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace backlog_lab::backends
