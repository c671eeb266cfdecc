// libFuzzer: every request type of the three services, parsed from bytes,
// goes through the checks every call gets (unknown fields, bounds), the
// idempotency fingerprint and the jsonb round trip without crashing.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "physio/assessment/v1/assessment.pb.h"
#include "physio/common/error.h"
#include "physio/common/stored_message.h"
#include "physio/planning/v1/planning.pb.h"
#include "physio/progress/v1/progress.pb.h"
#include "physio/db/proto_json.h"
#include "physio/server/proto_util.h"

namespace {
std::vector<const google::protobuf::Message*> RequestPrototypes() {
  std::vector<const google::protobuf::Message*> prototypes;
  for (const auto* file : {physio::assessment::v1::StartIntakeRequest::descriptor()->file(),
                           physio::planning::v1::GeneratePlanRequest::descriptor()->file(),
                           physio::progress::v1::RecordVisitRequest::descriptor()->file()}) {
    for (int s = 0; s < file->service_count(); ++s) {
      for (int m = 0; m < file->service(s)->method_count(); ++m) {
        prototypes.push_back(
            google::protobuf::MessageFactory::generated_factory()->GetPrototype(file->service(s)->method(m)->input_type()));
      }
    }
  }
  return prototypes;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto prototypes = RequestPrototypes();
  if (size < 1) return 0;
  std::unique_ptr<google::protobuf::Message> request(prototypes[data[0] % prototypes.size()]->New());
  if (!request->ParseFromArray(data + 1, static_cast<int>(size - 1))) return 0;
  try {
    physio::CheckRequestBounds(*request, physio::InputLimits{});
  } catch (const physio::Error& e) {
    if (e.code() != physio::ErrorCode::kInvalidArgument) __builtin_trap();
    return 0;
  }
  physio::RequestFingerprint(*request);
  try {
    std::unique_ptr<google::protobuf::Message> copy(request->New());
    physio::FromJson(physio::ToJson(*request), copy.get());
  } catch (const physio::Error&) {
    // Invalid UTF-8 in a string field cannot be written as JSON: an error, not a crash.
  }
  return 0;
}
