// libFuzzer, differential: whatever ParseProtoJson takes, protobuf's parser (as
// FromJson calls it) takes too and makes the same message of; what it declines
// it leaves empty. Never a crash.
#include <google/protobuf/util/json_util.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "physio/assessment/v1/assessment.pb.h"
#include "physio/common/proto_json_parser.h"
#include "physio/planning/v1/planning.pb.h"
#include "physio/progress/v1/progress.pb.h"

namespace {
void Check(const std::string& json, google::protobuf::Message& ours, google::protobuf::Message& theirs) {
  if (!physio::ParseProtoJson(json, &ours)) {
    if (ours.ByteSizeLong() != 0) __builtin_trap();
    return;
  }
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (!google::protobuf::util::JsonStringToMessage(json, &theirs, options).ok()) __builtin_trap();
  if (ours.SerializeAsString() != theirs.SerializeAsString()) __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string json(reinterpret_cast<const char*>(data), size);
  {
    physio::assessment::v1::Assessment ours, theirs;
    Check(json, ours, theirs);
  }
  {
    physio::planning::v1::Plan ours, theirs;
    Check(json, ours, theirs);
  }
  {
    physio::progress::v1::HomeExerciseLog ours, theirs;
    Check(json, ours, theirs);
  }
  return 0;
}
