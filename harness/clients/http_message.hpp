#pragma once
// What a client sends and how it recognises a complete answer: requests of an exact size built
// from a few shared buffers (no per-connection copies), and a streaming HTTP/1.1 response parser
// whose state is a few bytes per connection.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "harness/scenario/enums.hpp"

namespace backlog_lab::clients {

/// Request shapes of a client group's `request_kind`.
using request_kind = scenario::request_kind;

/// The requests of one client group: any size in [min, max] as at most two views of buffers
/// shared by every connection. HTTP requests up to `max_get_bytes` are a GET padded with an
/// `X-Pad` header (or a longer path when only a few bytes are missing); larger ones are a POST
/// whose body makes up the size, like the large request bodies of docs/incident.md.
class request_source {
public:
  /// Every HTTP request starts with this (the GET form); `Connection: close` as wrk -H sends it.
  static constexpr std::string_view get_prefix =
      "GET / HTTP/1.1\r\nHost: backlog-lab\r\nConnection: close\r\n";
  /// The shortest valid HTTP request this source builds: the prefix and the empty line.
  static constexpr std::uint32_t min_http_bytes = get_prefix.size() + 2;
  /// Above this an HTTP request is a POST with a body (a single header line stays well inside
  /// nginx's 8 KiB large_client_header_buffers).
  static constexpr std::uint32_t max_get_bytes = 4096;
  /// Largest request accepted (the shared body buffer is this big at most).
  static constexpr std::uint32_t max_request_bytes = 16u << 20;
  /// Space `pieces` may need in its scratch buffer (a POST header).
  static constexpr std::size_t scratch_bytes = 160;

  /// Prepares buffers for sizes in [min_bytes, max_bytes]; throws input_error (naming `where`)
  /// if an http size is below min_http_bytes (0 is allowed: send nothing) or a size is too big.
  request_source(request_kind kind, std::uint32_t min_bytes, std::uint32_t max_bytes,
                 const std::string& where);

  /// The request of exactly `size` bytes (size in [min, max]) as up to two pieces to send in
  /// order. A POST header is formatted into `scratch` (scratch_bytes long), which must stay
  /// valid until the pieces are written; it is a pure function of `size`, so it can be rebuilt.
  std::array<std::string_view, 2> pieces(std::uint32_t size, char* scratch) const;

  /// The shape these requests have.
  request_kind kind() const noexcept { return kind_; }

private:
  request_kind kind_;
  std::string get_template_;              ///< GET prefix + "X-Pad: " + padding for the largest GET
  std::string filler_;                    ///< raw bytes and POST bodies
  std::array<std::string, 9> short_gets_; ///< min_http_bytes + 0..8: padded in the path
};

/// A streaming HTTP/1.1 response parser: status line, headers (Content-Length,
/// Transfer-Encoding: chunked), then a body by length, chunks or until EOF. 1xx responses
/// other than 101 are skipped; 204, 304 and 101 have no body.
class http_response_parser {
public:
  /// Where parsing stands after some input.
  enum class result : std::uint8_t { need_more, complete, malformed };

  /// Consumes `n` bytes; bytes after a complete response are ignored.
  result feed(const char* data, std::size_t n) noexcept;
  /// The peer closed: true if that completes the response (a body delimited by EOF).
  bool on_eof() noexcept;
  /// The status code once the status line is read, else 0.
  std::uint16_t status() const noexcept { return status_; }
  /// A whole response has been read.
  bool complete() const noexcept { return state_ == state::done; }
  /// Ready for a new connection's response.
  void reset() noexcept { *this = http_response_parser{}; }

private:
  enum class state : std::uint8_t {
    version,
    code,
    reason,
    line_start,
    header_name,
    header_value,
    header_lf,
    body_length,
    chunk_size,
    chunk_ext,
    chunk_data,
    chunk_data_end,
    trailer_start,
    trailer_skip,
    trailer_lf,
    until_eof,
    done,
    bad,
  };
  result headers_done() noexcept;

  state state_ = state::version;
  std::uint8_t pos_ = 0;      ///< position within "HTTP/", a header name, or "chunked"
  bool maybe_length_ = false; ///< the header name so far is a prefix of content-length
  bool maybe_te_ = false;     ///< ... of transfer-encoding
  std::uint8_t value_of_ = 0; ///< 1: content-length value, 2: transfer-encoding value
  bool has_length_ = false;
  bool chunked_ = false;
  bool length_overflow_ = false;
  std::uint16_t status_ = 0;
  std::uint64_t remaining_ = 0; ///< body or chunk bytes still expected
};

} // namespace backlog_lab::clients
