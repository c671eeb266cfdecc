#include "physio/common/proto_json_printer.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/timestamp.pb.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include <cfloat>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace physio {

namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// A message protobuf's printer must handle (a well-known type with a JSON form of its own, a map).
struct NeedsProtobufPrinter {};
// A value proto3 JSON cannot express (protobuf's printer refuses it too).
struct Unprintable {};

void AppendEscaped(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    switch (c) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      default: break;
    }
    // Control characters, DEL, and '<' '>' (so a JSON answer is safe inside HTML), as protobuf escapes them.
    if (c < 0x20 || c == 0x7f || c == '<' || c == '>') {
      out += "\\u00";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
      continue;
    }
    // U+2028 and U+2029 (E2 80 A8/A9) end a line in JavaScript.
    if (c == 0xe2 && i + 2 < text.size() && static_cast<unsigned char>(text[i + 1]) == 0x80 &&
        (static_cast<unsigned char>(text[i + 2]) == 0xa8 || static_cast<unsigned char>(text[i + 2]) == 0xa9)) {
      out += static_cast<unsigned char>(text[i + 2]) == 0xa8 ? "\\u2028" : "\\u2029";
      i += 2;
      continue;
    }
    out.push_back(static_cast<char>(c));
  }
  out.push_back('"');
}

// protobuf's SimpleDtoa/SimpleFtoa: the shortest of DIG and DIG+2/3 significant digits that reads back.
void AppendDouble(std::string& out, double value) {
  if (!std::isfinite(value)) {
    out += std::isnan(value) ? "\"NaN\"" : value > 0 ? "\"Infinity\"" : "\"-Infinity\"";
    return;
  }
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.*g", DBL_DIG, value);
  if (std::strtod(buffer, nullptr) != value) std::snprintf(buffer, sizeof buffer, "%.*g", DBL_DIG + 2, value);
  out += buffer;
}

void AppendFloat(std::string& out, float value) {
  if (!std::isfinite(value)) {
    out += std::isnan(value) ? "\"NaN\"" : value > 0 ? "\"Infinity\"" : "\"-Infinity\"";
    return;
  }
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.*g", FLT_DIG, static_cast<double>(value));
  if (std::strtof(buffer, nullptr) != value) {
    std::snprintf(buffer, sizeof buffer, "%.*g", FLT_DIG + 3, static_cast<double>(value));
  }
  out += buffer;
}

template <typename Integer>
void AppendInteger(std::string& out, Integer value, bool quoted) {
  char buffer[24];
  const auto end = std::to_chars(buffer, buffer + sizeof buffer, value).ptr;
  if (quoted) out.push_back('"');
  out.append(buffer, end);
  if (quoted) out.push_back('"');
}

void AppendBase64(std::string& out, const std::string& bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  out.push_back('"');
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = static_cast<unsigned char>(bytes[i]) << 16 | static_cast<unsigned char>(bytes[i + 1]) << 8 |
                       static_cast<unsigned char>(bytes[i + 2]);
    for (int shift : {18, 12, 6, 0}) out.push_back(kAlphabet[(v >> shift) & 0x3f]);
  }
  if (const std::size_t rest = bytes.size() - i; rest > 0) {
    unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out.push_back(kAlphabet[(v >> 18) & 0x3f]);
    out.push_back(kAlphabet[(v >> 12) & 0x3f]);
    out.push_back(rest == 2 ? kAlphabet[(v >> 6) & 0x3f] : '=');
    out.push_back('=');
  }
  out.push_back('"');
}

bool IsWellKnown(const Descriptor* descriptor) { return descriptor->file()->package() == "google.protobuf"; }

class Printer {
 public:
  Printer(std::string& out, JsonFieldNames names) : out_(out), names_(names) {}

  void PrintMessage(const Message& message) {
    const Descriptor* descriptor = message.GetDescriptor();
    if (IsWellKnown(descriptor)) {
      if (descriptor->full_name() != "google.protobuf.Timestamp") throw NeedsProtobufPrinter{};
      PrintTimestamp(message);
      return;
    }
    const Reflection* reflection = message.GetReflection();
    // The fields set, in field-number order (proto3: a field at its default is not set).
    std::vector<const FieldDescriptor*> fields;
    reflection->ListFields(message, &fields);
    out_.push_back('{');
    bool first = true;
    for (const FieldDescriptor* field : fields) {
      if (field->is_map()) throw NeedsProtobufPrinter{};
      if (!first) out_.push_back(',');
      first = false;
      out_.push_back('"');
      out_ += names_ == JsonFieldNames::kProto ? field->name() : field->json_name();
      out_ += "\":";
      if (field->is_repeated()) {
        out_.push_back('[');
        const int size = reflection->FieldSize(message, field);
        for (int i = 0; i < size; ++i) {
          if (i > 0) out_.push_back(',');
          PrintValue(message, reflection, field, i);
        }
        out_.push_back(']');
      } else {
        PrintValue(message, reflection, field, -1);
      }
    }
    out_.push_back('}');
  }

 private:
  // The field's value (index >= 0: element `index` of a repeated field).
  void PrintValue(const Message& message, const Reflection* reflection, const FieldDescriptor* field, int index) {
    const bool repeated = index >= 0;
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        AppendInteger(out_, repeated ? reflection->GetRepeatedInt32(message, field, index)
                                     : reflection->GetInt32(message, field), false);
        return;
      case FieldDescriptor::CPPTYPE_UINT32:
        AppendInteger(out_, repeated ? reflection->GetRepeatedUInt32(message, field, index)
                                     : reflection->GetUInt32(message, field), false);
        return;
      case FieldDescriptor::CPPTYPE_INT64:
        AppendInteger(out_, repeated ? reflection->GetRepeatedInt64(message, field, index)
                                     : reflection->GetInt64(message, field), true);
        return;
      case FieldDescriptor::CPPTYPE_UINT64:
        AppendInteger(out_, repeated ? reflection->GetRepeatedUInt64(message, field, index)
                                     : reflection->GetUInt64(message, field), true);
        return;
      case FieldDescriptor::CPPTYPE_DOUBLE:
        AppendDouble(out_, repeated ? reflection->GetRepeatedDouble(message, field, index)
                                    : reflection->GetDouble(message, field));
        return;
      case FieldDescriptor::CPPTYPE_FLOAT:
        AppendFloat(out_, repeated ? reflection->GetRepeatedFloat(message, field, index)
                                   : reflection->GetFloat(message, field));
        return;
      case FieldDescriptor::CPPTYPE_BOOL:
        out_ += (repeated ? reflection->GetRepeatedBool(message, field, index) : reflection->GetBool(message, field))
                    ? "true"
                    : "false";
        return;
      case FieldDescriptor::CPPTYPE_ENUM: {
        if (field->enum_type()->file()->package() == "google.protobuf") throw NeedsProtobufPrinter{};  // NullValue
        const int number = repeated ? reflection->GetRepeatedEnumValue(message, field, index)
                                    : reflection->GetEnumValue(message, field);
        if (const auto* value = field->enum_type()->FindValueByNumber(number)) {
          out_.push_back('"');
          out_ += value->name();
          out_.push_back('"');
        } else {
          AppendInteger(out_, number, false);  // a value this build does not know
        }
        return;
      }
      case FieldDescriptor::CPPTYPE_STRING: {
        std::string scratch;
        const std::string& value = repeated ? reflection->GetRepeatedStringReference(message, field, index, &scratch)
                                            : reflection->GetStringReference(message, field, &scratch);
        if (field->type() == FieldDescriptor::TYPE_BYTES) {
          AppendBase64(out_, value);
        } else {
          AppendEscaped(out_, value);
        }
        return;
      }
      case FieldDescriptor::CPPTYPE_MESSAGE:
        PrintMessage(repeated ? reflection->GetRepeatedMessage(message, field, index)
                              : reflection->GetMessage(message, field));
        return;
    }
  }

  void PrintTimestamp(const Message& message) {
    const Descriptor* descriptor = message.GetDescriptor();
    const Reflection* reflection = message.GetReflection();
    google::protobuf::Timestamp timestamp;
    timestamp.set_seconds(reflection->GetInt64(message, descriptor->FindFieldByNumber(1)));
    timestamp.set_nanos(reflection->GetInt32(message, descriptor->FindFieldByNumber(2)));
    if (timestamp.seconds() < google::protobuf::util::TimeUtil::kTimestampMinSeconds ||
        timestamp.seconds() > google::protobuf::util::TimeUtil::kTimestampMaxSeconds || timestamp.nanos() < 0 ||
        timestamp.nanos() > 999999999) {
      throw Unprintable{};
    }
    out_.push_back('"');
    out_ += google::protobuf::util::TimeUtil::ToString(timestamp);
    out_.push_back('"');
  }

  std::string& out_;
  JsonFieldNames names_;
};

}  // namespace

bool PrintProtoJson(const Message& message, JsonFieldNames names, std::string* json) {
  json->clear();
  try {
    Printer(*json, names).PrintMessage(message);
    return true;
  } catch (const Unprintable&) {
    return false;
  } catch (const NeedsProtobufPrinter&) {
    json->clear();
    google::protobuf::util::JsonPrintOptions options;
    options.preserve_proto_field_names = names == JsonFieldNames::kProto;
    return google::protobuf::util::MessageToJsonString(message, json, options).ok();
  }
}

}  // namespace physio
