// JSON value, strict parser and writer. See json.h.
#include "json.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <limits>

#include "../../autograd/error.h"

namespace latent::json {

namespace {

const char* type_name(Type t) {
  switch (t) {
    case Type::Null: return "null";
    case Type::Bool: return "a boolean";
    case Type::Number: return "a number";
    case Type::String: return "a string";
    case Type::Array: return "an array";
    case Type::Object: return "an object";
  }
  return "unknown";
}

[[noreturn]] void wrong_type(Type expected, Type found) {
  fail("json", "expected {}, found {}", type_name(expected), type_name(found));
}

// Appends the UTF-8 encoding of a code point.
void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// A printable description of the byte at an error position.
std::string describe_byte(std::string_view text, size_t pos) {
  if (pos >= text.size()) return "end of input";
  unsigned char c = static_cast<unsigned char>(text[pos]);
  if (c >= 0x20 && c < 0x7F) return fmt::format("'{}'", static_cast<char>(c));
  return fmt::format("byte 0x{:02x}", c);
}

}  // namespace

// ---- Value ----

void Value::set_unsigned(uint64_t u) {
  if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    v_ = static_cast<int64_t>(u);
  else
    v_ = u;
}

Type Value::type() const {
  switch (v_.index()) {
    case 0: return Type::Null;
    case 1: return Type::Bool;
    case 2: case 3: case 4: return Type::Number;
    case 5: return Type::String;
    case 6: return Type::Array;
    default: return Type::Object;
  }
}

bool Value::as_bool() const {
  if (!is_bool()) wrong_type(Type::Bool, type());
  return std::get<bool>(v_);
}

double Value::as_double() const {
  if (auto* i = std::get_if<int64_t>(&v_)) return static_cast<double>(*i);
  if (auto* u = std::get_if<uint64_t>(&v_)) return static_cast<double>(*u);
  if (auto* d = std::get_if<double>(&v_)) return *d;
  wrong_type(Type::Number, type());
}

int64_t Value::as_int64() const {
  if (auto* i = std::get_if<int64_t>(&v_)) return *i;
  if (auto* u = std::get_if<uint64_t>(&v_)) fail("json", "{} does not fit int64", *u);
  if (auto* d = std::get_if<double>(&v_)) {
    // Integral doubles in range are accepted (1e3, 2.0); 2^63 itself is out of range.
    if (std::trunc(*d) == *d && *d >= -9223372036854775808.0 && *d < 9223372036854775808.0)
      return static_cast<int64_t>(*d);
    fail("json", "{} is not an int64 integer", *d);
  }
  wrong_type(Type::Number, type());
}

uint64_t Value::as_uint64() const {
  if (auto* u = std::get_if<uint64_t>(&v_)) return *u;
  if (auto* i = std::get_if<int64_t>(&v_)) {
    if (*i < 0) fail("json", "{} is negative, expected an unsigned integer", *i);
    return static_cast<uint64_t>(*i);
  }
  if (auto* d = std::get_if<double>(&v_)) {
    if (std::trunc(*d) == *d && *d >= 0 && *d < 18446744073709551616.0) return static_cast<uint64_t>(*d);
    fail("json", "{} is not an unsigned 64-bit integer", *d);
  }
  wrong_type(Type::Number, type());
}

const std::string& Value::as_string() const {
  if (!is_string()) wrong_type(Type::String, type());
  return std::get<std::string>(v_);
}

const Array& Value::as_array() const {
  if (!is_array()) wrong_type(Type::Array, type());
  return std::get<Array>(v_);
}

Array& Value::as_array() {
  if (!is_array()) wrong_type(Type::Array, type());
  return std::get<Array>(v_);
}

const Object& Value::as_object() const {
  if (!is_object()) wrong_type(Type::Object, type());
  return std::get<Object>(v_);
}

Object& Value::as_object() {
  if (!is_object()) wrong_type(Type::Object, type());
  return std::get<Object>(v_);
}

size_t Value::size() const {
  if (is_array()) return std::get<Array>(v_).size();
  if (is_object()) return std::get<Object>(v_).size();
  return 0;
}

const Value* Value::find(std::string_view key) const {
  for (const auto& [k, v] : as_object())
    if (k == key) return &v;
  return nullptr;
}

const Value& Value::at(std::string_view key) const {
  const Value* v = find(key);
  if (!v) fail("json", "missing key '{}'", key);
  return *v;
}

const Value& Value::at(size_t index) const {
  const Array& a = as_array();
  if (index >= a.size()) fail("json", "index {} is out of range for an array of {}", index, a.size());
  return a[index];
}

Value& Value::operator[](std::string_view key) {
  if (is_null()) v_ = Object{};
  Object& o = as_object();
  for (auto& [k, v] : o)
    if (k == key) return v;
  o.emplace_back(std::string(key), Value());
  return o.back().second;
}

void Value::push_back(Value value) {
  if (is_null()) v_ = Array{};
  as_array().push_back(std::move(value));
}

bool operator==(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_integer() && b.is_integer()) {
      // Compare exactly: both fit either int64 or uint64 (Value(uint64_t) normalises).
      return a.v_ == b.v_;
    }
    return a.as_double() == b.as_double();
  }
  return a.v_ == b.v_;
}

// ---- writer ----

std::string quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20)
          out += fmt::format("\\u{:04x}", c);
        else
          out += ch;
    }
  }
  out += '"';
  return out;
}

namespace {

void write_value(const Value& v, int indent, int level, std::string& out) {
  auto newline = [&](int lvl) {
    if (indent < 0) return;
    out += '\n';
    out.append(static_cast<size_t>(indent * lvl), ' ');
  };
  switch (v.type()) {
    case Type::Null: out += "null"; return;
    case Type::Bool: out += v.as_bool() ? "true" : "false"; return;
    case Type::Number:
      if (v.is_integer()) {
        if (v.as_double() < 0)
          out += fmt::format("{}", v.as_int64());
        else
          out += fmt::format("{}", v.as_uint64());
      } else {
        double d = v.as_double();
        // -0.0 as "-0.0": "-0" would read back as the integer 0 (a fuzz finding: dump not stable).
        out += !std::isfinite(d) ? "null" : d == 0 && std::signbit(d) ? "-0.0" : fmt::format("{}", d);
      }
      return;
    case Type::String: out += quote(v.as_string()); return;
    case Type::Array: {
      const Array& a = v.as_array();
      out += '[';
      for (size_t i = 0; i < a.size(); ++i) {
        if (i) out += ',';
        newline(level + 1);
        write_value(a[i], indent, level + 1, out);
      }
      if (!a.empty()) newline(level);
      out += ']';
      return;
    }
    case Type::Object: {
      const Object& o = v.as_object();
      out += '{';
      for (size_t i = 0; i < o.size(); ++i) {
        if (i) out += ',';
        newline(level + 1);
        out += quote(o[i].first);
        out += indent < 0 ? ":" : ": ";
        write_value(o[i].second, indent, level + 1, out);
      }
      if (!o.empty()) newline(level);
      out += '}';
      return;
    }
  }
}

}  // namespace

std::string Value::dump(int indent) const {
  std::string out;
  write_value(*this, indent, 0, out);
  return out;
}

// ---- parser ----

/// Recursive descent over the text; depth is bounded by max_depth.
class Parser {
 public:
  Parser(std::string_view text, int max_depth) : text_(text), max_depth_(max_depth) {}

  Value parse_document() {
    skip_ws();
    Value v = parse_value(0);
    skip_ws();
    if (pos_ != text_.size()) error("unexpected text after the JSON value");
    return v;
  }

 private:
  [[noreturn]] void error(std::string_view what) const { error_at(what, pos_); }
  [[noreturn]] void error_at(std::string_view what, size_t pos) const {
    fail("json", "{} at byte {} (found {})", what, pos, describe_byte(text_, pos));
  }

  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return at_end() ? '\0' : text_[pos_]; }

  void skip_ws() {
    while (!at_end()) {
      char c = text_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      ++pos_;
    }
  }

  void expect_literal(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) error(fmt::format("expected '{}'", word));
    pos_ += word.size();
  }

  Value parse_value(int depth) {
    if (at_end()) error("expected a value");
    switch (peek()) {
      case '{': return parse_object(depth + 1);
      case '[': return parse_array(depth + 1);
      case '"': return Value(parse_string());
      case 't': expect_literal("true"); return Value(true);
      case 'f': expect_literal("false"); return Value(false);
      case 'n': expect_literal("null"); return Value();
      default:
        if (peek() == '-' || (peek() >= '0' && peek() <= '9')) return parse_number();
        error("expected a value");
    }
  }

  void check_depth(int depth) const {
    if (depth > max_depth_) error(fmt::format("nesting deeper than {} levels", max_depth_));
  }

  Value parse_object(int depth) {
    check_depth(depth);
    ++pos_;  // '{'
    Value result = Value::object();
    Object& members = std::get<Object>(result.v_);
    skip_ws();
    if (peek() == '}') {
      ++pos_;
      return result;
    }
    while (true) {
      skip_ws();
      if (peek() != '"') error("expected a string key");
      size_t key_pos = pos_;
      std::string key = parse_string();
      for (const auto& m : members)
        if (m.first == key) error_at(fmt::format("duplicate key {}", quote(key)), key_pos);
      skip_ws();
      if (peek() != ':') error("expected ':'");
      ++pos_;
      skip_ws();
      members.emplace_back(std::move(key), parse_value(depth));
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == '}') {
        ++pos_;
        return result;
      }
      error("expected ',' or '}'");
    }
  }

  Value parse_array(int depth) {
    check_depth(depth);
    ++pos_;  // '['
    Value result = Value::array();
    Array& items = std::get<Array>(result.v_);
    skip_ws();
    if (peek() == ']') {
      ++pos_;
      return result;
    }
    while (true) {
      skip_ws();
      items.push_back(parse_value(depth));
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == ']') {
        ++pos_;
        return result;
      }
      error("expected ',' or ']'");
    }
  }

  Value parse_number() {
    const size_t start = pos_;
    bool integral = true;
    if (peek() == '-') ++pos_;
    if (peek() == '0') {
      ++pos_;
      if (peek() >= '0' && peek() <= '9') error("leading zeros are not allowed");
    } else if (peek() >= '1' && peek() <= '9') {
      while (peek() >= '0' && peek() <= '9') ++pos_;
    } else {
      error("expected a digit");
    }
    if (peek() == '.') {
      integral = false;
      ++pos_;
      if (!(peek() >= '0' && peek() <= '9')) error("expected a digit after '.'");
      while (peek() >= '0' && peek() <= '9') ++pos_;
    }
    if (peek() == 'e' || peek() == 'E') {
      integral = false;
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (!(peek() >= '0' && peek() <= '9')) error("expected a digit in the exponent");
      while (peek() >= '0' && peek() <= '9') ++pos_;
    }
    const char* first = text_.data() + start;
    const char* last = text_.data() + pos_;
    if (integral) {
      int64_t i = 0;
      auto [p, ec] = std::from_chars(first, last, i);
      if (ec == std::errc() && p == last) return Value(i);
      uint64_t u = 0;
      auto [pu, ecu] = std::from_chars(first, last, u);
      if (ecu == std::errc() && pu == last) return Value(u);
      // Larger integers fall through to a double.
    }
    double d = 0;
    auto [p, ec] = std::from_chars(first, last, d);
    if (ec == std::errc::result_out_of_range) error_at("number is out of the double range", start);
    if (ec != std::errc() || p != last) error_at("invalid number", start);
    return Value(d);
  }

  uint32_t parse_hex4() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = peek();
      uint32_t digit;
      if (c >= '0' && c <= '9') digit = static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') digit = static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') digit = static_cast<uint32_t>(c - 'A' + 10);
      else error("expected 4 hex digits after \\u");
      v = v * 16 + digit;
      ++pos_;
    }
    return v;
  }

  // Validates one UTF-8 sequence starting at pos_ and appends it.
  void copy_utf8(std::string& out) {
    const unsigned char c = static_cast<unsigned char>(text_[pos_]);
    int extra;
    uint32_t cp, min;
    if (c >= 0xC2 && c <= 0xDF) { extra = 1; cp = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { extra = 2; cp = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { extra = 3; cp = c & 0x07; min = 0x10000; }
    else error("invalid UTF-8");
    if (pos_ + static_cast<size_t>(extra) >= text_.size()) error("invalid UTF-8");
    for (int i = 1; i <= extra; ++i) {
      unsigned char cc = static_cast<unsigned char>(text_[pos_ + static_cast<size_t>(i)]);
      if ((cc & 0xC0) != 0x80) error("invalid UTF-8");
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and code points above U+10FFFF are invalid.
    if (cp < min || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) error("invalid UTF-8");
    out.append(text_.substr(pos_, static_cast<size_t>(extra) + 1));
    pos_ += static_cast<size_t>(extra) + 1;
  }

  std::string parse_string() {
    ++pos_;  // opening quote
    std::string out;
    while (true) {
      if (at_end()) error("unterminated string");
      const unsigned char c = static_cast<unsigned char>(text_[pos_]);
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c < 0x20) error("unescaped control character in string");
      if (c >= 0x80) {
        copy_utf8(out);
        continue;
      }
      if (c != '\\') {
        out += static_cast<char>(c);
        ++pos_;
        continue;
      }
      ++pos_;  // backslash
      const char e = peek();
      ++pos_;
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = parse_hex4();
          if (cp >= 0xDC00 && cp <= 0xDFFF) error("unpaired low surrogate in \\u escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (text_.substr(pos_, 2) != "\\u") error("expected a low surrogate \\u escape");
            pos_ += 2;
            uint32_t low = parse_hex4();
            if (low < 0xDC00 || low > 0xDFFF) error("expected a low surrogate \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default:
          --pos_;
          error("invalid escape");
      }
    }
  }

  std::string_view text_;
  size_t pos_ = 0;
  int max_depth_;
};

Value parse(std::string_view text, int max_depth) { return Parser(text, max_depth).parse_document(); }

}  // namespace latent::json
