// Asks a running service for its health (grpc.health.v1) and, optionally, the
// services its reflection lists. Exit 0 only when the status is SERVING.
//   physio-probe --addr=127.0.0.1:50051 [--service=physio.assessment.v1.AssessmentService] [--list-services=true]
//                [--wait-ms=15000] [--ca-file=ca.pem --cert-file=me.pem --key-file=me.key]
// With --ca-file it speaks TLS (and with --cert-file/--key-file presents a
// client certificate, as a service under mutual TLS requires).
#include <grpcpp/grpcpp.h>

#include <iostream>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
#include "physio/common/config.h"
#include "physio/server/grpc_context.h"
#include "src/proto/grpc/reflection/v1alpha/reflection.grpc.pb.h"

namespace refl = grpc::reflection::v1alpha;

int main(int argc, char** argv) {
  try {
    physio::Config config({{"addr", "127.0.0.1:50051", "service address"},
                           {"service", "", "service name to check ('' = the server as a whole)"},
                           {"list-services", "false", "also print the services reflection lists"},
                           {"wait-ms", "0", "keep asking until SERVING or this many ms have passed"},
                           {"ca-file", "", "TLS: the CA bundle the service's certificate must chain to"},
                           {"cert-file", "", "mutual TLS: the client certificate to present"},
                           {"key-file", "", "mutual TLS: its private key"},
                           {"server-name", "", "TLS: the name expected in the service's certificate, when not the address's host"}},
                          argc, argv);
    if (config.help_requested()) {
      std::cout << config.Usage(argv[0]);
      return 0;
    }
    auto channel = physio::MakePeerChannel(config.Get("addr"), {config.Get("ca-file"), config.Get("cert-file"),
                                                                config.Get("key-file"), config.Get("server-name")});
    auto health = grpc::health::v1::Health::NewStub(channel);
    auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(config.GetInt("wait-ms"));
    std::string status_name;
    for (;;) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
      grpc::health::v1::HealthCheckRequest request;
      request.set_service(config.Get("service"));
      grpc::health::v1::HealthCheckResponse response;
      auto status = health->Check(&context, request, &response);
      status_name = status.ok() ? grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status())
                                : "UNREACHABLE (" + status.error_message() + ")";
      if (response.status() == grpc::health::v1::HealthCheckResponse::SERVING) break;
      if (std::chrono::steady_clock::now() >= give_up) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    std::cout << config.Get("addr") << " " << (config.Get("service").empty() ? "(server)" : config.Get("service"))
              << ": " << status_name << "\n";
    if (config.Get("list-services") == "true") {
      auto reflection = refl::ServerReflection::NewStub(channel);
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      auto stream = reflection->ServerReflectionInfo(&context);
      refl::ServerReflectionRequest request;
      request.set_list_services("*");
      stream->Write(request);
      stream->WritesDone();
      refl::ServerReflectionResponse response;
      while (stream->Read(&response)) {
        for (const auto& service : response.list_services_response().service()) {
          std::cout << "  reflection: " << service.name() << "\n";
        }
      }
      stream->Finish();
    }
    return status_name == "SERVING" ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "physio-probe: " << e.what() << "\n";
    return 2;
  }
}
