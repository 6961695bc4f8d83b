#include "backends/http_request.hpp"

#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <limits>
#include <optional>

namespace backlog_lab::backends {
namespace {

namespace http = boost::beast::http;
using boost::beast::error_code;
using boost::beast::string_view;

/// Beast's parser with every callback reduced to what the backend answers with.
class discarding_parser final : public http::basic_parser<true> {
public:
  discarding_parser() {
    header_limit(static_cast<std::uint32_t>(max_request_head));
    // Counted and dropped: any size is fine. (Boost 1.74 treats boost::none as a limit of 0.)
    body_limit(std::numeric_limits<std::uint64_t>::max());
    eager(true); // go on into the body in the same put()
  }

  bool head_method = false;
  bool expect_continue = false;
  std::uint64_t body_bytes = 0;

private:
  void on_request_impl(http::verb method, string_view, string_view, int version,
                       error_code& ec) override {
    // HTTP/1.0 and 1.1 only: "PRI * HTTP/2.0" is the HTTP/2 preface, not a request to answer.
    if (version != 10 && version != 11) ec = http::error::bad_version;
    head_method = method == http::verb::head;
  }
  void on_response_impl(int, string_view, int, error_code&) override {}
  void on_field_impl(http::field name, string_view, string_view value, error_code&) override {
    if (name == http::field::expect) expect_continue = boost::beast::iequals(value, "100-continue");
  }
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) override {}
  std::size_t on_body_impl(string_view body, error_code&) override {
    body_bytes += body.size();
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code&) override {
    body_bytes += body.size();
    return body.size();
  }
  void on_finish_impl(error_code&) override {}
};

/// RFC 9110 tchar: what a method is made of.
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

/// Whether `head` (the unparsed start of a request) can still begin with a method. Beast waits
/// for the whole request line; this refuses garbage (a TLS ClientHello, JSON) at its first bytes.
bool could_be_a_method(std::string_view head) {
  for (char c : head) {
    if (c == ' ') return true;
    if (!is_tchar(c)) return false;
  }
  return true;
}

} // namespace

struct request_parser::impl {
  std::optional<discarding_parser> parser{std::in_place};
  request_status status = request_status::incomplete;
  bool started = false; ///< bytes of this request's head were seen (ends the empty-line skip)
  bool in_head = false; ///< the parser took the request line: the data no longer starts with it
};

request_parser::request_parser() : impl_(std::make_unique<impl>()) {}
request_parser::~request_parser() = default;
request_parser::request_parser(request_parser&&) noexcept = default;
request_parser& request_parser::operator=(request_parser&&) noexcept = default;

size_t request_parser::feed(std::string_view data) {
  impl& s = *impl_;
  if (s.status != request_status::incomplete) return 0;
  size_t used = 0;
  if (!s.started) {
    // Empty lines before a request line are ignored (RFC 9112 section 2.2), as the leftover
    // CRLF some clients send after a body; Beast's parser would call them a bad method.
    while (used < data.size()) {
      if (data[used] == '\n') {
        ++used;
      } else if (data[used] == '\r' && used + 1 < data.size() && data[used + 1] == '\n') {
        used += 2;
      } else if (data[used] == '\r' && used + 1 == data.size()) {
        return used; // a CR whose LF has not come yet
      } else {
        break;
      }
    }
    if (used == data.size()) return used;
    s.started = true;
  }
  if (!s.in_head && !could_be_a_method(data.substr(used))) {
    s.status = request_status::bad;
    return used;
  }
  while (used < data.size() && !s.parser->is_done()) {
    error_code ec;
    size_t n = s.parser->put(boost::asio::const_buffer(data.data() + used, data.size() - used), ec);
    used += n;
    s.in_head = s.in_head || n > 0;
    if (ec == http::error::need_more) break;
    if (ec == http::error::header_limit) {
      s.status = request_status::too_large;
      return used;
    }
    if (ec) {
      s.status = request_status::bad;
      return used;
    }
    if (n == 0) break;
  }
  if (s.parser->is_done()) s.status = request_status::complete;
  return used;
}

void request_parser::next() {
  impl_->parser.emplace();
  impl_->status = request_status::incomplete;
  impl_->started = false;
  impl_->in_head = false;
}

request_status request_parser::status() const noexcept {
  return impl_->status;
}
bool request_parser::head_done() const noexcept {
  return impl_->parser->is_header_done();
}
bool request_parser::keep_alive() const noexcept {
  return impl_->parser->is_header_done() && impl_->parser->keep_alive();
}
bool request_parser::head_method() const noexcept {
  return impl_->parser->head_method;
}
bool request_parser::expect_continue() const noexcept {
  return impl_->parser->expect_continue;
}
uint64_t request_parser::body_bytes() const noexcept {
  return impl_->parser->body_bytes;
}

} // namespace backlog_lab::backends
