#include "physio/server/proto_util.h"

#include <cstdint>

#include "physio/common/error.h"
#include "physio/common/ids.h"
#include "physio/common/validation.h"

namespace physio {

namespace {
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

std::string Path(const std::string& parent, const std::string& field) {
  return parent.empty() ? field : parent + "." + field;
}

// PostgreSQL's text and jsonb hold no NUL character, and libpq passes a parameter as a C string,
// so a NUL would fail the write late and generically or, worse, cut the stored text short; the
// other control characters have no place in a clinical record (ControlCharacterIn says why).
void CheckText(const std::string& name, std::string_view text, std::size_t limit) {
  if (text.size() > limit) ThrowInvalidArgument(name, "at most " + std::to_string(limit) + " bytes");
  if (const std::string why = ControlCharacterRefusal(text); !why.empty()) ThrowInvalidArgument(name, why);
}

// A google.protobuf.Timestamp outside its own definition (years 0001-9999, nanos 0-999,999,999) is
// no time at all: refused wherever it is, before a use case compares it or PostgreSQL is given it.
void CheckTimestamp(const std::string& name, const Message& timestamp) {
  const auto* descriptor = timestamp.GetDescriptor();
  const auto* reflection = timestamp.GetReflection();
  const int64_t seconds = reflection->GetInt64(timestamp, descriptor->FindFieldByNumber(1));
  const int32_t nanos = reflection->GetInt32(timestamp, descriptor->FindFieldByNumber(2));
  constexpr int64_t kMinSeconds = -62135596800;  // 0001-01-01T00:00:00Z
  constexpr int64_t kMaxSeconds = 253402300799;  // 9999-12-31T23:59:59Z
  if (seconds < kMinSeconds || seconds > kMaxSeconds || nanos < 0 || nanos > 999999999) {
    ThrowInvalidArgument(name, "is not a valid timestamp (years 0001-9999, nanos 0-999999999)");
  }
}

void CheckBounds(const Message& message, const InputLimits& limits, const std::string& path, int depth) {
  if (depth > 32) ThrowInvalidArgument(path, "nested too deeply");
  if (message.GetDescriptor()->full_name() == "google.protobuf.Timestamp") CheckTimestamp(path, message);
  const auto* reflection = message.GetReflection();
  const auto& unknown = reflection->GetUnknownFields(message);
  if (!unknown.empty()) {
    ThrowInvalidArgument(path.empty() ? "request" : path,
                         "unknown field number " + std::to_string(unknown.field(0).number()) +
                             " (not part of " + message.GetDescriptor()->full_name() + ")");
  }
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const FieldDescriptor* field : fields) {
    const std::string name = Path(path, field->name());
    // A whole document carried in a string is named *_json (a FHIR resource to import).
    const std::size_t text_limit =
        field->name().ends_with("_json") ? limits.max_document_bytes : limits.max_string_bytes;
    if (field->is_repeated()) {
      const int size = reflection->FieldSize(message, field);
      if (size > limits.max_repeated) {
        ThrowInvalidArgument(name, "at most " + std::to_string(limits.max_repeated) + " entries");
      }
      for (int i = 0; i < size; ++i) {
        const std::string item = name + "[" + std::to_string(i) + "]";
        if (field->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
          std::string scratch;
          CheckText(item, reflection->GetRepeatedStringReference(message, field, i, &scratch), text_limit);
        } else if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
          CheckBounds(reflection->GetRepeatedMessage(message, field, i), limits, item, depth + 1);
        }
      }
    } else if (field->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
      std::string scratch;
      CheckText(name, reflection->GetStringReference(message, field, &scratch), text_limit);
    } else if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      CheckBounds(reflection->GetMessage(message, field), limits, name, depth + 1);
    }
  }
}
}  // namespace

void CheckRequestBounds(const google::protobuf::Message& request, const InputLimits& limits) {
  CheckBounds(request, limits, "", 0);
}

}  // namespace physio
