#include "physio/common/proto_json_parser.h"

#include "physio/common/validation.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/timestamp.pb.h>
#include <google/protobuf/util/time_util.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace physio {

namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// Thrown to decline: protobuf's parser then reads the text.
struct Declined {};

// Nesting taken here at most (protobuf's parser stops at 100; deeper here is declined first).
constexpr int kMaxDepth = 64;

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  void ParseDocument(Message& message) {
    if (!IsValidUtf8(text_)) throw Declined{};
    // A well-known type at the top (Struct, a wrapper, ...) has a JSON form of its own: protobuf's.
    if (message.GetDescriptor()->full_name().rfind("google.protobuf.", 0) == 0) throw Declined{};
    ParseMessage(message, 0);
    SkipSpace();
    if (pos_ != text_.size()) throw Declined{};
  }

 private:
  // A scalar token: a string (unescaped) or the text of a number, true, false or null.
  struct Token {
    bool is_string = false;
    std::string string;     // a string's value
    std::string_view bare;  // a number's or literal's text
  };

  void SkipSpace() {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\n' || text_[pos_] == '\r' || text_[pos_] == '\t')) {
      ++pos_;
    }
  }
  char Peek() {
    SkipSpace();
    if (pos_ >= text_.size()) throw Declined{};
    return text_[pos_];
  }
  void Expect(char c) {
    if (Peek() != c) throw Declined{};
    ++pos_;
  }
  bool Take(char c) {
    if (Peek() != c) return false;
    ++pos_;
    return true;
  }

  static void AppendUtf8(std::string& out, std::uint32_t code) {
    if (code < 0x80) {
      out.push_back(static_cast<char>(code));
    } else if (code < 0x800) {
      out.push_back(static_cast<char>(0xc0 | (code >> 6)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3f)));
    } else if (code < 0x10000) {
      out.push_back(static_cast<char>(0xe0 | (code >> 12)));
      out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3f)));
    } else {
      out.push_back(static_cast<char>(0xf0 | (code >> 18)));
      out.push_back(static_cast<char>(0x80 | ((code >> 12) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3f)));
    }
  }

  std::uint32_t Hex4() {
    if (pos_ + 4 > text_.size()) throw Declined{};
    std::uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = text_[pos_++];
      value <<= 4;
      if (c >= '0' && c <= '9') value |= static_cast<std::uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') value |= static_cast<std::uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') value |= static_cast<std::uint32_t>(c - 'A' + 10);
      else throw Declined{};
    }
    return value;
  }

  // At the opening quote; the unescaped string.
  void ParseString(std::string& out) {
    Expect('"');
    out.clear();
    for (;;) {
      const std::size_t start = pos_;
      while (pos_ < text_.size() && text_[pos_] != '"' && text_[pos_] != '\\') {
        if (static_cast<unsigned char>(text_[pos_]) < 0x20) throw Declined{};  // a raw control character
        ++pos_;
      }
      out.append(text_.substr(start, pos_ - start));
      if (pos_ >= text_.size()) throw Declined{};
      if (text_[pos_++] == '"') return;
      if (pos_ >= text_.size()) throw Declined{};
      const char escape = text_[pos_++];
      switch (escape) {
        case '"': out.push_back('"'); break;
        case '\\': out.push_back('\\'); break;
        case '/': out.push_back('/'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          std::uint32_t code = Hex4();
          if (code >= 0xd800 && code <= 0xdbff) {  // a surrogate pair's first half
            if (pos_ + 2 > text_.size() || text_[pos_] != '\\' || text_[pos_ + 1] != 'u') throw Declined{};
            pos_ += 2;
            const std::uint32_t low = Hex4();
            if (low < 0xdc00 || low > 0xdfff) throw Declined{};
            code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
          } else if (code >= 0xdc00 && code <= 0xdfff) {
            throw Declined{};
          }
          AppendUtf8(out, code);
          break;
        }
        default: throw Declined{};
      }
    }
  }

  // A string, number, true, false or null.
  Token ParseScalar() {
    Token token;
    if (Peek() == '"') {
      token.is_string = true;
      ParseString(token.string);
      return token;
    }
    const std::size_t start = pos_;
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '-' || c == '+' || c == '.' || c == 'E') {
        ++pos_;
      } else {
        break;
      }
    }
    token.bare = text_.substr(start, pos_ - start);
    if (token.bare.empty()) throw Declined{};
    return token;
  }

  // Skips any value (an unknown field's).
  void SkipValue(int depth) {
    if (depth > kMaxDepth) throw Declined{};
    const char c = Peek();
    if (c == '{') {
      ++pos_;
      if (Take('}')) return;
      std::string key;
      do {
        ParseString(key);
        Expect(':');
        SkipValue(depth + 1);
      } while (Take(','));
      Expect('}');
    } else if (c == '[') {
      ++pos_;
      if (Take(']')) return;
      do {
        SkipValue(depth + 1);
      } while (Take(','));
      Expect(']');
    } else {
      const Token token = ParseScalar();
      if (!token.is_string && token.bare != "null" && token.bare != "true" && token.bare != "false" &&
          !IsJsonNumber(token.bare)) {
        throw Declined{};
      }
    }
  }


  // A bare token in JSON's number grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
  static bool IsJsonNumber(std::string_view text) {
    std::size_t i = 0;
    const auto digits = [&] {
      const std::size_t start = i;
      while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
      return i > start;
    };
    if (i < text.size() && text[i] == '-') ++i;
    if (i < text.size() && text[i] == '0') {
      ++i;
    } else if (!digits()) {
      return false;
    }
    if (i < text.size() && text[i] == '.') {
      ++i;
      if (!digits()) return false;
    }
    if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
      ++i;
      if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
      if (!digits()) return false;
    }
    return i == text.size();
  }

  static bool IsNull(const Token& token) { return !token.is_string && token.bare == "null"; }

  // An integer field: a number without fraction or exponent, or the same quoted.
  template <typename Int>
  static Int ParseInt(const Token& token) {
    // Quoted or not, in JSON's number grammar, and not "-0" (what protobuf makes of it is its business).
    const std::string_view text = token.is_string ? std::string_view(token.string) : token.bare;
    if (!IsJsonNumber(text) || text.rfind("-0", 0) == 0) throw Declined{};
    Int value{};
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size()) throw Declined{};
    return value;
  }

  static double ParseDouble(const Token& token) {
    if (token.is_string) {
      if (token.string == "NaN") return std::numeric_limits<double>::quiet_NaN();
      if (token.string == "Infinity") return std::numeric_limits<double>::infinity();
      if (token.string == "-Infinity") return -std::numeric_limits<double>::infinity();
    }
    const std::string_view text = token.is_string ? std::string_view(token.string) : token.bare;
    if (!IsJsonNumber(text)) throw Declined{};
    double value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) {
      throw Declined{};
    }
    if (value == 0 && std::signbit(value)) throw Declined{};  // "-0" is 0 to protobuf, "-0.0" is not
    return value;
  }

  static bool ParseBool(const Token& token) {
    if (token.is_string) throw Declined{};
    if (token.bare == "true") return true;
    if (token.bare == "false") return false;
    throw Declined{};
  }

  static int ParseEnum(const FieldDescriptor* field, const Token& token) {
    if (token.is_string) {
      // A scan of the values (a record names one in most of its messages), as FieldByName.
      const auto* type = field->enum_type();
      for (int i = 0; i < type->value_count(); ++i) {
        if (type->value(i)->name() == token.string) return type->value(i)->number();
      }
      throw Declined{};  // protobuf's parser decides what an unknown name means
    }
    return ParseInt<std::int32_t>(token);
  }

  // One value of a scalar or enum field (one element of a repeated one).
  void SetScalar(Message& message, const Reflection* reflection, const FieldDescriptor* field, const Token& token) {
    const bool repeated = field->is_repeated();
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32: {
        const auto v = ParseInt<std::int32_t>(token);
        repeated ? reflection->AddInt32(&message, field, v) : reflection->SetInt32(&message, field, v);
        return;
      }
      case FieldDescriptor::CPPTYPE_UINT32: {
        const auto v = ParseInt<std::uint32_t>(token);
        repeated ? reflection->AddUInt32(&message, field, v) : reflection->SetUInt32(&message, field, v);
        return;
      }
      case FieldDescriptor::CPPTYPE_INT64: {
        const auto v = ParseInt<std::int64_t>(token);
        repeated ? reflection->AddInt64(&message, field, v) : reflection->SetInt64(&message, field, v);
        return;
      }
      case FieldDescriptor::CPPTYPE_UINT64: {
        const auto v = ParseInt<std::uint64_t>(token);
        repeated ? reflection->AddUInt64(&message, field, v) : reflection->SetUInt64(&message, field, v);
        return;
      }
      case FieldDescriptor::CPPTYPE_DOUBLE: {
        const double v = ParseDouble(token);
        repeated ? reflection->AddDouble(&message, field, v) : reflection->SetDouble(&message, field, v);
        return;
      }
      case FieldDescriptor::CPPTYPE_FLOAT: break;  // none in the records: protobuf's (its rounding and range)
      case FieldDescriptor::CPPTYPE_BOOL: {
        const bool v = ParseBool(token);
        repeated ? reflection->AddBool(&message, field, v) : reflection->SetBool(&message, field, v);
        return;
      }
      case FieldDescriptor::CPPTYPE_ENUM: {
        const int v = ParseEnum(field, token);
        repeated ? reflection->AddEnumValue(&message, field, v) : reflection->SetEnumValue(&message, field, v);
        return;
      }
      case FieldDescriptor::CPPTYPE_STRING: {
        if (field->type() == FieldDescriptor::TYPE_BYTES || !token.is_string) throw Declined{};  // base64: protobuf's
        repeated ? reflection->AddString(&message, field, token.string)
                 : reflection->SetString(&message, field, token.string);
        return;
      }
      case FieldDescriptor::CPPTYPE_MESSAGE: break;
    }
    throw Declined{};
  }

  // A message-typed value (one element of a repeated field).
  void ParseMessageValue(Message& message, int depth) {
    const std::string& type = message.GetDescriptor()->full_name();
    if (type == "google.protobuf.Timestamp") {
      const Token token = ParseScalar();
      if (!token.is_string) throw Declined{};
      auto* timestamp = dynamic_cast<google::protobuf::Timestamp*>(&message);
      if (timestamp == nullptr || !google::protobuf::util::TimeUtil::FromString(token.string, timestamp)) {
        throw Declined{};
      }
      return;
    }
    if (type.rfind("google.protobuf.", 0) == 0) throw Declined{};  // other well-known types: protobuf's
    ParseMessage(message, depth);
  }

  // The records use the .proto's names. A message's fields are scanned from just after the
  // previous key's (printed JSON comes in field order, so that is usually the next one; jsonb
  // gives keys shortest first) and round the rest: mostly length comparisons, cheaper than
  // protobuf's FindFieldByName, which hashed every key into its symbol table and was 4% of a
  // GetAssessment's CPU (issue 33).
  static const FieldDescriptor* FieldByName(const Descriptor* descriptor, const std::string& key, int& next) {
    const int count = descriptor->field_count();
    for (int k = 0; k < count; ++k) {
      const int i = (next + k) % count;
      const FieldDescriptor* field = descriptor->field(i);
      if (field->name() == key) {
        next = i + 1;
        return field;
      }
    }
    return nullptr;
  }

  // API callers' lowerCamel names and fields this build does not know come here.
  static const FieldDescriptor* FieldByJsonName(const Descriptor* descriptor, const std::string& key) {
    for (int i = 0; i < descriptor->field_count(); ++i) {
      if (descriptor->field(i)->json_name() == key) return descriptor->field(i);
    }
    return nullptr;
  }

  void ParseMessage(Message& message, int depth) {
    if (depth > kMaxDepth) throw Declined{};
    const Descriptor* descriptor = message.GetDescriptor();
    const Reflection* reflection = message.GetReflection();
    Expect('{');
    if (Take('}')) return;
    std::string key;
    std::vector<const FieldDescriptor*> seen_fields;
    int next_field = 0;
    do {
      ParseString(key);
      Expect(':');
      if (key.empty()) throw Declined{};  // protobuf's parser has its own reading of an empty name
      const FieldDescriptor* field = FieldByName(descriptor, key, next_field);
      if (field == nullptr) field = FieldByJsonName(descriptor, key);
      if (field == nullptr) {
        SkipValue(depth + 1);  // a newer version's field
        continue;
      }
      if (field->is_map()) throw Declined{};
      // A field named twice (in both styles, say), or two of one oneof: protobuf's parser decides.
      for (const auto* seen : seen_fields) {
        if (seen == field ||
            (field->real_containing_oneof() != nullptr && seen->real_containing_oneof() == field->real_containing_oneof())) {
          throw Declined{};
        }
      }
      seen_fields.push_back(field);
      if (field->is_repeated()) {
        if (Peek() != '[') {
          if (IsNull(ParseScalar())) continue;
          throw Declined{};
        }
        ++pos_;
        if (Take(']')) continue;
        do {
          if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
            if (Peek() == 'n') throw Declined{};  // null inside a list
            ParseMessageValue(*reflection->AddMessage(&message, field), depth + 1);
          } else {
            const Token token = ParseScalar();
            if (IsNull(token)) throw Declined{};
            SetScalar(message, reflection, field, token);
          }
        } while (Take(','));
        Expect(']');
        continue;
      }
      if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        if (Peek() == 'n') {
          if (!IsNull(ParseScalar())) throw Declined{};
          continue;  // null: not set
        }
        ParseMessageValue(*reflection->MutableMessage(&message, field), depth + 1);
        continue;
      }
      const Token token = ParseScalar();
      if (IsNull(token)) continue;
      SetScalar(message, reflection, field, token);
    } while (Take(','));
    Expect('}');
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

}  // namespace

bool ParseProtoJson(std::string_view json, Message* message) {
  message->Clear();
  try {
    Parser(json).ParseDocument(*message);
    return true;
  } catch (const Declined&) {
    message->Clear();
    return false;
  }
}

}  // namespace physio
