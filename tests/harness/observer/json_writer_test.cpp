// json_writer against nlohmann::json::dump(2), the output it must equal byte for byte: tricky
// strings (every control character, quotes, backslashes, DEL, UTF-8 of every length, invalid
// UTF-8), integer extremes, empty and nested containers, and random documents.
#include <fcntl.h>
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <gtest/gtest.h>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "harness/core/error.hpp"
#include "harness/observer/json_writer.hpp"

namespace backlog_lab::observer {
namespace {

using nlohmann::json;

// Writes `j` through the writer, objects in their (std::map) order, as a caller would.
void write_tree(json_writer& w, const json& j) {
  switch (j.type()) {
  case json::value_t::object:
    w.begin_object();
    for (const auto& [k, v] : j.items()) {
      w.key(k);
      write_tree(w, v);
    }
    w.end_object();
    break;
  case json::value_t::array:
    w.begin_array();
    for (const auto& v : j)
      write_tree(w, v);
    w.end_array();
    break;
  case json::value_t::string:
    w.value(j.get_ref<const std::string&>());
    break;
  case json::value_t::boolean:
    w.value(j.get<bool>());
    break;
  case json::value_t::number_integer:
    w.value(j.get<std::int64_t>());
    break;
  case json::value_t::number_unsigned:
    w.value(j.get<std::uint64_t>());
    break;
  case json::value_t::null:
    w.null();
    break;
  default:
    FAIL() << "no floating point in the writer";
  }
}

std::string written(const json& j) {
  std::string out;
  json_writer w(out);
  write_tree(w, j);
  w.finish();
  return out;
}

TEST(json_writer, every_control_character_quote_backslash_and_del_escape_as_dump_does) {
  std::string all;
  for (int c = 0; c < 0x80; ++c)
    all.push_back(static_cast<char>(c));
  json j = {{"all ascii", all}, {"quote \" and \\ in a key", "\"\\/"}, {"", ""}};
  for (int c = 0; c < 0x20; ++c)
    j[std::string(1, static_cast<char>(c)) + "key"] = std::string(3, static_cast<char>(c));
  EXPECT_EQ(written(j), j.dump(2));
}

TEST(json_writer, valid_utf8_passes_as_is_and_invalid_utf8_is_refused_like_dump) {
  const std::vector<std::string> valid = {
      "caf\xc3\xa9",                   // 2 bytes
      "\xe2\x82\xac and \xef\xbf\xbf", // 3 bytes, U+FFFF
      "\xe0\xa0\x80",                  // U+0800, the smallest 3-byte form
      "\xed\x9f\xbf",                  // U+D7FF, just below the surrogates
      "\xf0\x90\x80\x80",              // U+10000
      "\xf4\x8f\xbf\xbf",              // U+10FFFF, the last code point
      "\xc2\x80\xc2\x9f",              // C1 controls: not escaped by dump()
  };
  for (const auto& s : valid) {
    json j = json::array({s, {{s, s}}});
    EXPECT_EQ(written(j), j.dump(2)) << s;
    EXPECT_TRUE(json_writer::valid_utf8(s)) << s;
  }
  const std::vector<std::string> invalid = {
      "\x80",         "\xc0\xaf",     "\xc1\xbf",         "\xc3",
      "\xe0\x80\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
      "\xff",         "ok\xe2\x82",   "\xf0\x90\x80",     "a\xc3(b",
  };
  for (const auto& s : invalid) {
    json j = s;
    EXPECT_THROW((void)j.dump(2), json::type_error) << "the reference itself";
    std::string out;
    json_writer w(out);
    EXPECT_THROW(w.value(s), std::invalid_argument) << s;
    EXPECT_FALSE(json_writer::valid_utf8(s)) << s;
  }
}

TEST(json_writer, integers_at_their_limits) {
  json j = json::array({0, -1, 1, std::numeric_limits<std::int64_t>::min(),
                        std::numeric_limits<std::int64_t>::max(),
                        std::numeric_limits<std::uint64_t>::max(), std::uint8_t{255},
                        std::uint16_t{65535}, std::uint32_t{4294967295u}, std::int32_t{INT_MIN}});
  EXPECT_EQ(written(j), j.dump(2));
  std::string out;
  json_writer w(out);
  w.begin_array();
  w.value(std::uint8_t{255});
  w.value(std::int16_t{-32768});
  w.value(std::numeric_limits<std::uint64_t>::max());
  w.value(true);
  w.value(false);
  w.null();
  w.end_array();
  EXPECT_EQ(out, json::parse(out).dump(2));
  EXPECT_EQ(out, "[\n  255,\n  -32768,\n  18446744073709551615,\n  true,\n  false,\n  null\n]");
}

TEST(json_writer, empty_and_nested_containers) {
  json j = {{"a", json::object()},
            {"b", json::array()},
            {"c", json::array({json::array(), json::object(), json::array({json::array({1})})})},
            {"d", {{"e", {{"f", {{"g", nullptr}}}}}}}};
  EXPECT_EQ(written(j), j.dump(2));
  EXPECT_EQ(written(json::object()), "{}");
  EXPECT_EQ(written(json::array()), "[]");
  EXPECT_EQ(written("top"), "\"top\"");
  EXPECT_EQ(written(7), "7");
  // Deep nesting: 160 spaces of indent at the bottom.
  json deep = 1;
  for (int i = 0; i < 80; ++i)
    deep = json::array({deep});
  EXPECT_EQ(written(deep), deep.dump(2));
}

json random_value(std::mt19937& rng, int depth) {
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  auto random_string = [&] {
    static const std::vector<std::string> pieces = {"a",
                                                    "Z",
                                                    " ",
                                                    "\"",
                                                    "\\",
                                                    "/",
                                                    "\n",
                                                    "\x01",
                                                    "\x1f",
                                                    "\x7f",
                                                    "\xc3\xa9",
                                                    "\xe2\x82\xac",
                                                    "\xf0\x9f\x98\x80",
                                                    "key",
                                                    "_",
                                                    "0"};
    std::string s;
    for (int i = pick(6); i > 0; --i)
      s += pieces[static_cast<std::size_t>(pick(static_cast<int>(pieces.size())))];
    return s;
  };
  switch (depth > 3 ? pick(4) : pick(6)) {
  case 0:
    return random_string();
  case 1:
    return static_cast<std::int64_t>(rng()) - (std::int64_t{1} << 31);
  case 2:
    return (std::uint64_t{rng()} << 32) | rng();
  case 3:
    return pick(3) == 0 ? json(nullptr) : json(pick(2) == 0);
  case 4: {
    json a = json::array();
    for (int i = pick(5); i > 0; --i)
      a.push_back(random_value(rng, depth + 1));
    return a;
  }
  default: {
    json o = json::object();
    for (int i = pick(5); i > 0; --i)
      o[random_string()] = random_value(rng, depth + 1);
    return o;
  }
  }
}

TEST(json_writer, random_documents_equal_dump) {
  std::mt19937 rng(1313);
  for (int i = 0; i < 2000; ++i) {
    json j = random_value(rng, 0);
    ASSERT_EQ(written(j), j.dump(2)) << "document " << i;
  }
}

TEST(json_writer, an_fd_and_a_stream_get_the_same_bytes_in_chunks) {
  // Large enough for many 64 KiB chunks.
  json j = json::array();
  for (int i = 0; i < 20000; ++i)
    j.push_back({{"i", i}, {"s", "value \"" + std::to_string(i) + "\""}});
  const std::string expected = j.dump(2);

  std::ostringstream stream;
  {
    json_writer w(stream);
    write_tree(w, j);
    w.finish();
  }
  EXPECT_EQ(stream.str(), expected);

  char path[] = "/tmp/json_writer_test.XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::unlink(path);
  {
    json_writer w(fd);
    write_tree(w, j);
    w.finish();
  }
  std::string back(expected.size() + 1, '\0');
  ASSERT_EQ(::pread(fd, back.data(), back.size(), 0), static_cast<ssize_t>(expected.size()));
  back.resize(expected.size());
  ::close(fd);
  EXPECT_EQ(back, expected);
}

TEST(json_writer, a_pipe_without_reader_is_output_closed) {
  // SIGPIPE blocked in this thread: the write gets EPIPE (a pending SIGPIPE is consumed below).
  sigset_t pipe_only, old;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &pipe_only, &old), 0);
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  ::close(p[0]);
  bool closed = false;
  try {
    json_writer w(p[1]);
    w.begin_array();
    for (int i = 0; i < 100000; ++i)
      w.value(i);
    w.end_array();
    w.finish();
  } catch (const output_closed&) {
    closed = true;
  }
  ::close(p[1]);
  timespec none{};
  while (::sigtimedwait(&pipe_only, nullptr, &none) > 0) {
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  EXPECT_TRUE(closed);
}

} // namespace
} // namespace backlog_lab::observer
