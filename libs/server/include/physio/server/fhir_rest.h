#pragma once
// The FHIR R4 REST API (docs/fhir.md) on a service's HTTP port, under /fhir/R4/:
// GET metadata (the CapabilityStatement), GET <Type>/<id> (read), GET <Type>?... (search, a
// searchset Bundle with paging links) and POST <Type> (create, If-None-Exist honoured). Every
// interaction is one or more unary gRPC calls to the services that hold the resources (this
// process's own over the in-process channel, the others' over peer channels, the caller's token
// forwarded), so authentication, clinic scope, quotas, input bounds and audit are the gRPC
// pipeline's, written once. Errors are OperationOutcome resources with the HTTP status of the
// one status table (status_codes.h).
#include <grpcpp/grpcpp.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "physio/auth/token_verifier.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace google::protobuf {
class Message;
}

namespace physio {

// Where one resource type's interactions go: a unary method (full path,
// "/physio.planning.v1.PlanningService/SearchFhir") on a channel (null: this process's own).
struct FhirRestRoute {
  std::shared_ptr<grpc::Channel> channel;
  std::string method;
};

struct FhirRestSettings {
  // Resource type -> the methods that search it (SearchFhir shape), asked in turn: a search
  // pages through the first's resources, then the next's; a read takes the first that has it.
  std::map<std::string, std::vector<FhirRestRoute>> search;
  // Resource type -> the method that creates it (CreateFhirResource shape).
  std::map<std::string, FhirRestRoute> create;
  // The messages of those methods (any service's: they share one layout), built by reflection.
  const google::protobuf::Message* search_request = nullptr;
  const google::protobuf::Message* search_response = nullptr;
  const google::protobuf::Message* create_request = nullptr;
  const google::protobuf::Message* create_response = nullptr;
  // FHIR Bulk Data export (docs/fhir.md#bulk): the kick-off, status, file and cancel methods
  // (full paths of this process's own service, whose messages are found by their descriptors);
  // empty: no $export.
  struct BulkExport {
    std::string start, status, file, cancel;
  };
  std::optional<BulkExport> bulk;
  // The base URL links and Location headers use; empty: from the request's Host header.
  std::string base_url;
  std::string software_version = "1";
};

// One unary call on `channel` (null: in-process) with the HTTP request's forwarded headers.
using FhirInvoker = std::function<grpc::Status(const httplib::Request& req, const std::shared_ptr<grpc::Channel>& channel,
                                               const std::string& method, const std::string& request_bytes,
                                               std::string* response_bytes)>;

class FhirRest {
 public:
  // `cors` adds the CORS headers an allowed origin gets; `tls` says which scheme the base URL has.
  FhirRest(FhirRestSettings settings, FhirInvoker invoke, const TokenVerifier& verifier,
           std::function<void(const httplib::Request&, httplib::Response&)> cors, bool tls);

  // Registers the routes under /fhir/R4/.
  void Mount(httplib::Server& server);
  // For the gateway's pre-request step (before a body is read): refuses a request whose
  // forwarded headers are malformed or whose token does not verify (through the pipeline, so
  // the refusal is audited and limited), and a create with a content type that is not FHIR JSON.
  // True when it answered.
  bool RefusedBeforeBody(const httplib::Request& req, httplib::Response& res);

  // The CapabilityStatement this API serves at /metadata.
  std::string CapabilityStatement(const std::string& base) const;

 private:
  void Search(const httplib::Request& req, httplib::Response& res, const std::string& type);
  void Read(const httplib::Request& req, httplib::Response& res, const std::string& type, const std::string& id);
  void Create(const httplib::Request& req, httplib::Response& res, const std::string& type);
  std::string BaseOf(const httplib::Request& req) const;
  void ExportKickOff(const httplib::Request& req, httplib::Response& res, const std::string& group);
  void ExportStatus(const httplib::Request& req, httplib::Response& res, const std::string& job);
  void ExportCancel(const httplib::Request& req, httplib::Response& res, const std::string& job);
  void ExportFile(const httplib::Request& req, httplib::Response& res, const std::string& job, const std::string& service,
                  const std::string& type, int part);
  // A unary call to one of this process's own methods by name, its messages found by descriptor;
  // false when it was answered with an error.
  bool CallOwn(const httplib::Request& req, httplib::Response& res, const std::string& method,
               const std::function<void(google::protobuf::Message&)>& fill,
               std::unique_ptr<google::protobuf::Message>* response);

  FhirRestSettings settings_;
  FhirInvoker invoke_;
  const TokenVerifier& verifier_;
  std::function<void(const httplib::Request&, httplib::Response&)> cors_;
  bool tls_;
};

// An OperationOutcome (severity error) for a gRPC status, with the HTTP status it is sent with.
// `issue` overrides the FHIR issue type the code maps to (e.g. "too-long" for a request past the
// port's limits, which is RESOURCE_EXHAUSTED but not "throttled").
int FhirHttpStatus(grpc::StatusCode code);
std::string FhirOperationOutcome(grpc::StatusCode code, const std::string& diagnostics, const char* issue = nullptr);

}  // namespace physio
