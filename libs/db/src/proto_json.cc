#include "physio/db/proto_json.h"

#include <google/protobuf/util/json_util.h>

#include "physio/common/error.h"
#include "physio/common/proto_json_parser.h"
#include "physio/common/proto_json_printer.h"

namespace physio {

std::string ToJson(const google::protobuf::Message& message) {
  std::string json;
  if (!PrintProtoJson(message, JsonFieldNames::kProto, &json)) {
    throw Error(ErrorCode::kInternal, "cannot encode " + message.GetTypeName());
  }
  return json;
}

void FromJson(const std::string& json, google::protobuf::Message* message) {
  if (ParseProtoJson(json, message)) return;
  // Declined (a map, bytes, another well-known type, anything unusual): protobuf's parser decides.
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  auto status = google::protobuf::util::JsonStringToMessage(json, message, options);
  if (!status.ok()) throw Error(ErrorCode::kInternal, "cannot decode stored " + message->GetTypeName());
}

}  // namespace physio
