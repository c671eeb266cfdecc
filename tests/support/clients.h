#pragma once
// gRPC clients of the three services for tests, one per caller identity.
#include <gtest/gtest.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include "physio/assessment/v1/assessment.grpc.pb.h"
#include "physio/planning/v1/planning.grpc.pb.h"
#include "physio/common/ids.h"
#include "physio/progress/v1/progress.grpc.pb.h"
#include "test_env.h"

namespace physio::testing {

namespace apb = physio::assessment::v1;
namespace ppb = physio::planning::v1;
namespace gpb = physio::progress::v1;
namespace cpb = physio::common::v1;

class Caller {
 public:
  Caller(const ServiceCluster& cluster, std::string token,
         const std::shared_ptr<grpc::ChannelCredentials>& credentials = grpc::InsecureChannelCredentials())
      : token_(std::move(token)),
        assessment(apb::AssessmentService::NewStub(grpc::CreateChannel(cluster.assessment_addr(), credentials))),
        planning(ppb::PlanningService::NewStub(grpc::CreateChannel(cluster.planning_addr(), credentials))),
        progress(gpb::ProgressService::NewStub(grpc::CreateChannel(cluster.progress_addr(), credentials))) {}

  // A context with this caller's token (none when the token is empty) and a deadline.
  std::unique_ptr<grpc::ClientContext> Context(std::chrono::milliseconds deadline = std::chrono::seconds(10)) const {
    auto context = std::make_unique<grpc::ClientContext>();
    if (!token_.empty()) context->AddMetadata("authorization", "Bearer " + token_);
    context->set_deadline(std::chrono::system_clock::now() + deadline);
    return context;
  }

  template <typename Stub, typename Req, typename Resp>
  grpc::Status Call(Stub* stub, grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                    const Req& request, Resp* response,
                    std::chrono::milliseconds deadline = std::chrono::seconds(10)) const {
    auto context = Context(deadline);
    return (stub->*method)(context.get(), request, response);
  }

 private:
  std::string token_;

 public:
  std::unique_ptr<apb::AssessmentService::Stub> assessment;
  std::unique_ptr<ppb::PlanningService::Stub> planning;
  std::unique_ptr<gpb::ProgressService::Stub> progress;
};

// A stored assessment (pain 6, ODI 20/50, red flags screened and none found)
// and the plan generated from it, approved, for `patient`; effective from
// `effective_seconds` (Unix time) when given, as an importing system would back-date it.
inline ppb::Plan ApprovedPlanFor(const Caller& clinician, const std::string& patient, int64_t effective_seconds = 0);

// One unary call by its method path with the request as raw bytes (a generic stub, so the bytes
// need not be a valid message): the status the server answered.
inline grpc::Status CallWithBytes(const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext& context,
                                  const std::string& path, const std::string& request_bytes) {
  grpc::GenericStub stub(channel);
  grpc::Slice bytes(request_bytes);
  grpc::ByteBuffer request(&bytes, 1), reply;
  grpc::Status status;
  std::mutex mutex;
  std::condition_variable finished;
  bool done = false;
  stub.UnaryCall(&context, path, grpc::StubOptions(), &request, &reply, [&](grpc::Status result) {
    std::lock_guard lock(mutex);
    status = std::move(result);
    done = true;
    finished.notify_one();
  });
  std::unique_lock lock(mutex);
  finished.wait(lock, [&] { return done; });
  return status;
}

// One empty request to gRPC server reflection: UNIMPLEMENTED where it is not served.
inline grpc::Status CallReflection(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
  return CallWithBytes(channel, context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", "");
}

inline cpb::InstrumentAnswer Answer(cpb::Instrument instrument, const std::string& item, int value,
                                    bool declined = false) {
  cpb::InstrumentAnswer answer;
  answer.set_instrument(instrument);
  answer.set_item_id(item);
  answer.set_value(value);
  answer.set_declined(declined);
  return answer;
}

// The patient's plan in use or suspended, as `clinician` reads it (an empty plan when there is none).
inline ppb::Plan PlanInUseOrSuspended(const Caller& clinician, const std::string& patient) {
  ppb::GetActivePlanRequest get;
  get.set_patient_id(patient);
  get.set_include_suspended(true);
  ppb::GetActivePlanResponse got;
  EXPECT_TRUE(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::GetActivePlan, get, &got).ok());
  return got.plan();
}

inline ppb::Plan ApprovedPlanFor(const Caller& clinician, const std::string& patient, int64_t effective_seconds) {
  apb::CreateAssessmentRequest create;
  create.set_request_id("rq-" + patient + "-" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  create.set_patient_id(patient);
  *create.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 6);
  for (int i = 1; i <= 10; ++i) *create.add_answers() = Answer(cpb::INSTRUMENT_ODI, "odi." + std::to_string(i), 2);
  create.mutable_red_flag_screen();
  apb::CreateAssessmentResponse created;
  EXPECT_TRUE(clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, create,
                             &created).ok());
  ppb::GeneratePlanRequest generate;
  generate.set_request_id(create.request_id() + "-g");
  generate.set_assessment_id(created.assessment().assessment_id());
  ppb::GeneratePlanResponse generated;
  EXPECT_TRUE(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::GeneratePlan, generate,
                             &generated).ok());
  ppb::ApprovePlanRequest approve;
  approve.set_request_id(create.request_id() + "-a");
  approve.set_plan_id(generated.plan().plan_id());
  approve.set_etag(generated.plan().etag());
  if (effective_seconds > 0) approve.mutable_effective_time()->set_seconds(effective_seconds);
  ppb::ApprovePlanResponse approved;
  EXPECT_TRUE(clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::ApprovePlan, approve,
                             &approved).ok());
  return approved.plan();
}

// A visit with its pain before, recorded by `caller`.
inline grpc::Status RecordVisitFor(const Caller& caller, const std::string& patient, gpb::VisitKind kind,
                                   int pain_before, gpb::RecordVisitResponse* visited) {
  gpb::RecordVisitRequest visit;
  visit.set_request_id(NewId("rq"));
  visit.set_patient_id(patient);
  visit.set_kind(kind);
  visit.set_pain_before(pain_before);
  return caller.Call(caller.progress.get(), &gpb::ProgressService::Stub::RecordVisit, visit, visited);
}

// An Oswestry re-measure with every one of the ten items answered `per_item` (0-5: the score is
// 20 * per_item percent), recorded by `caller`.
inline grpc::Status RecordOdiFor(const Caller& caller, const std::string& patient, int per_item,
                                 gpb::RecordOutcomeResponse* recorded) {
  gpb::RecordOutcomeRequest outcome;
  outcome.set_request_id(NewId("rq"));
  outcome.set_patient_id(patient);
  outcome.set_instrument(cpb::INSTRUMENT_ODI);
  for (int i = 1; i <= 10; ++i) *outcome.add_answers() = Answer(cpb::INSTRUMENT_ODI, "odi." + std::to_string(i), per_item);
  return caller.Call(caller.progress.get(), &gpb::ProgressService::Stub::RecordOutcome, outcome, recorded);
}

// Ends an active plan (completed or discharged) against its etag.
inline grpc::Status CompletePlanWith(const Caller& clinician, const std::string& plan_id, const std::string& etag,
                                     ppb::PlanStatus outcome, const std::string& reason,
                                     ppb::CompletePlanResponse* completed) {
  ppb::CompletePlanRequest complete;
  complete.set_request_id(NewId("rq"));
  complete.set_plan_id(plan_id);
  complete.set_etag(etag);
  complete.set_outcome(outcome);
  complete.set_reason(reason);
  return clinician.Call(clinician.planning.get(), &ppb::PlanningService::Stub::CompletePlan, complete, completed);
}

}  // namespace physio::testing
