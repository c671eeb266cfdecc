#include "physio/common/stored_message.h"

#include <cstdint>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/wire_format_lite.h>

#include "physio/common/ids.h"

namespace physio {

std::string RequestFingerprint(const google::protobuf::Message& request) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    request.SerializeToCodedStream(&coded);
  }
  return Sha256Hex(request.GetTypeName() + "\n" + bytes);
}

std::string WrapAsMessageField(int field_number, std::string_view message_bytes) {
  using google::protobuf::internal::WireFormatLite;
  std::string bytes;
  bytes.reserve(message_bytes.size() + 16);
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.WriteTag(WireFormatLite::MakeTag(field_number, WireFormatLite::WIRETYPE_LENGTH_DELIMITED));
    coded.WriteVarint32(static_cast<std::uint32_t>(message_bytes.size()));
    coded.WriteRaw(message_bytes.data(), static_cast<int>(message_bytes.size()));
  }
  return bytes;
}

}  // namespace physio
