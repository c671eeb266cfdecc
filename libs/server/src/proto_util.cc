#include "physio/server/proto_util.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/json_util.h>

#include "physio/common/error.h"
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

std::string ToJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) throw Error(ErrorCode::kInternal, "cannot encode " + message.GetTypeName());
  return json;
}

void FromJson(const std::string& json, google::protobuf::Message* message) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;  // rows written by a newer version stay readable
  auto status = google::protobuf::util::JsonStringToMessage(json, message, options);
  if (!status.ok()) throw Error(ErrorCode::kInternal, "cannot decode stored " + message->GetTypeName());
}

}  // namespace physio
