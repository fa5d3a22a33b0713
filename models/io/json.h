// A small JSON value (null, bool, number, string, array, object with insertion order), a strict
// RFC 8259 parser and a writer. Used for safetensors headers, checkpoint metadata, config.json
// and metrics.jsonl.
//
// Numbers keep integers exact: a literal without fraction or exponent that fits int64 (or uint64)
// is stored as an integer, so 64-bit RNG state words round-trip; everything else is a double and
// is written in the shortest form that reads back to the same double.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace latent::json {

class Value;
/// A JSON array.
using Array = std::vector<Value>;
/// A JSON object: members in insertion order (written back in the same order).
using Object = std::vector<std::pair<std::string, Value>>;

/// The kinds of JSON value.
enum class Type { Null, Bool, Number, String, Array, Object };

/// One JSON value. Accessors of the wrong kind throw "[json] expected a string, found a number".
class Value {
 public:
  /// null.
  Value() = default;
  /// null.
  Value(std::nullptr_t) {}
  /// true or false.
  Value(bool b) : v_(b) {}
  /// An exact integer of any integral type (unsigned values above INT64_MAX stay unsigned).
  template <class I, std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>, int> = 0>
  Value(I i) {
    if constexpr (std::is_signed_v<I>)
      v_ = static_cast<int64_t>(i);
    else
      set_unsigned(static_cast<uint64_t>(i));
  }
  /// A floating-point number.
  Value(double d) : v_(d) {}
  /// A string (UTF-8).
  Value(const char* s) : v_(std::string(s)) {}
  /// A string (UTF-8).
  Value(std::string s) : v_(std::move(s)) {}
  /// A string (UTF-8).
  Value(std::string_view s) : v_(std::string(s)) {}
  /// An array.
  Value(Array a) : v_(std::move(a)) {}
  /// An object.
  Value(Object o) : v_(std::move(o)) {}

  /// An empty object ({}).
  static Value object() { return Value(Object{}); }
  /// An empty array ([]).
  static Value array() { return Value(Array{}); }

  /// The kind of value.
  Type type() const;
  /// True for null.
  bool is_null() const { return type() == Type::Null; }
  /// True for true and false.
  bool is_bool() const { return type() == Type::Bool; }
  /// True for numbers (integers and doubles).
  bool is_number() const { return type() == Type::Number; }
  /// True for numbers stored exactly as integers (literals without fraction or exponent).
  bool is_integer() const { return v_.index() == 2 || v_.index() == 3; }
  /// True for strings.
  bool is_string() const { return type() == Type::String; }
  /// True for arrays.
  bool is_array() const { return type() == Type::Array; }
  /// True for objects.
  bool is_object() const { return type() == Type::Object; }

  /// The boolean.
  bool as_bool() const;
  /// The number as a double (integers converted).
  double as_double() const;
  /// The number as an exact int64 ("[json] 1.5 is not an integer", "... does not fit int64").
  int64_t as_int64() const;
  /// The number as an exact uint64 (negative numbers throw).
  uint64_t as_uint64() const;
  /// The string.
  const std::string& as_string() const;
  /// The array.
  const Array& as_array() const;
  /// The array, mutable.
  Array& as_array();
  /// The object's members in order.
  const Object& as_object() const;
  /// The object's members, mutable.
  Object& as_object();

  /// Elements of an array or members of an object; 0 for other kinds.
  size_t size() const;
  /// Member `key` of an object, or nullptr when absent (throws when this is not an object).
  const Value* find(std::string_view key) const;
  /// Member `key` of an object ("[json] missing key 'epoch'" when absent).
  const Value& at(std::string_view key) const;
  /// Element i of an array ("[json] index 3 is out of range for an array of 2").
  const Value& at(size_t index) const;
  /// Member `key`, inserted as null at the end when absent; a null value becomes an object first.
  Value& operator[](std::string_view key);
  /// Appends to an array; a null value becomes an array first.
  void push_back(Value value);

  /// Text: compact (`{"a":1,"b":[true,null]}`) when indent < 0, otherwise one member per line
  /// indented by `indent` spaces. Non-finite doubles are written as null (JSON has no NaN).
  std::string dump(int indent = -1) const;

  /// Structural equality (integers and doubles compare by value; object member order matters).
  friend bool operator==(const Value& a, const Value& b);

 private:
  friend class Parser;
  void set_unsigned(uint64_t u);
  std::variant<std::nullptr_t, bool, int64_t, uint64_t, double, std::string, Array, Object> v_;
};

/// Parses exactly one JSON value (surrounding whitespace allowed). Strict: no comments, trailing
/// commas, leading zeros, NaN, unescaped control characters, invalid UTF-8 or duplicate keys.
/// Errors are one line with the byte offset: "[json] expected ',' or '}' at byte 57 (found 'x')".
/// Nesting deeper than `max_depth` arrays/objects fails (no stack overflow on hostile input).
Value parse(std::string_view text, int max_depth = 128);

/// `s` as a JSON string literal with quotes and escapes.
std::string quote(std::string_view s);

}  // namespace latent::json
