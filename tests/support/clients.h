#pragma once
// gRPC clients of the three services for tests, one per caller identity.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include "physio/assessment/v1/assessment.grpc.pb.h"
#include "physio/planning/v1/planning.grpc.pb.h"
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

// One empty request to gRPC server reflection: UNIMPLEMENTED where it is not served.
inline grpc::Status CallReflection(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
  grpc::Slice no_bytes("");
  grpc::ByteBuffer empty(&no_bytes, 1), reply;
  grpc::Status status;
  std::mutex mutex;
  std::condition_variable finished;
  bool done = false;
  stub.UnaryCall(&context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", grpc::StubOptions(),
                 &empty, &reply, [&](grpc::Status result) {
                   std::lock_guard lock(mutex);
                   status = std::move(result);
                   done = true;
                   finished.notify_one();
                 });
  std::unique_lock lock(mutex);
  finished.wait(lock, [&] { return done; });
  return status;
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

}  // namespace physio::testing
