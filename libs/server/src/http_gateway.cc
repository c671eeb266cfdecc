#include "physio/server/http_gateway.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/generic/generic_stub.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <condition_variable>
#include <mutex>
#include <stdexcept>

#include "physio/common/logging.h"
#include "physio/server/grpc_context.h"
#include "physio/server/status_codes.h"

namespace physio {

namespace {

using google::protobuf::Message;

const char* const kAllowedHeaders =
    "Content-Type, Authorization, Connect-Protocol-Version, Connect-Timeout-Ms, X-Request-Id, Traceparent, "
    "X-User-Agent";
const char* const kExposedHeaders = "Retry-After-Ms, Grpc-Retry-Pushback-Ms";

enum class Codec { kJson, kProto, kUnsupported };

Codec CodecOf(const std::string& content_type) {
  const std::string base = content_type.substr(0, content_type.find(';'));
  if (base == "application/json") return Codec::kJson;
  if (base == "application/proto") return Codec::kProto;
  return Codec::kUnsupported;
}

void ConnectError(httplib::Response& res, grpc::StatusCode code, const std::string& message) {
  res.status = ConnectHttpStatus(code);
  res.set_content(std::string(R"({"code":")") + ConnectCodeName(code) + R"(","message":")" + JsonEscape(message) +
                      "\"}",
                  "application/json");
}

// One unary call on the in-process channel, waited for on this HTTP thread.
grpc::Status CallInProcess(grpc::GenericStub& stub, grpc::ClientContext& context, const std::string& path,
                           const std::string& request_bytes, std::string* response_bytes) {
  grpc::Slice slice(request_bytes);
  grpc::ByteBuffer request(&slice, 1), response;
  std::mutex mutex;
  std::condition_variable done_cv;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&context, path, grpc::StubOptions(), &request, &response, [&](grpc::Status result) {
    std::lock_guard lock(mutex);
    status = std::move(result);
    done = true;
    done_cv.notify_one();
  });
  std::unique_lock lock(mutex);
  done_cv.wait(lock, [&] { return done; });
  if (status.ok()) {
    std::vector<grpc::Slice> slices;
    if (!response.Dump(&slices).ok()) return grpc::Status(grpc::StatusCode::INTERNAL, "unreadable response");
    response_bytes->clear();
    for (const auto& part : slices) response_bytes->append(reinterpret_cast<const char*>(part.begin()), part.size());
  }
  return status;
}

}  // namespace

const char* ConnectCodeName(grpc::StatusCode code) { return StatusRowOf(code).connect_name; }

int ConnectHttpStatus(grpc::StatusCode code) { return StatusRowOf(code).http_status; }

HttpGateway::HttpGateway(HttpGatewaySettings settings, std::shared_ptr<grpc::Channel> in_process,
                         std::vector<std::string> services, const Metrics& metrics)
    : settings_(std::move(settings)), channel_(std::move(in_process)), services_(std::move(services)), metrics_(metrics) {
  if (settings_.tls_cert_file.empty()) {
    server_ = std::make_unique<httplib::Server>();
  } else {
    server_ = std::make_unique<httplib::SSLServer>(
        settings_.tls_cert_file.c_str(), settings_.tls_key_file.c_str(),
        settings_.tls_client_ca_file.empty() ? nullptr : settings_.tls_client_ca_file.c_str());
    if (!server_->is_valid()) throw std::runtime_error("http: cannot load tls-cert-file / tls-key-file");
  }
  const int threads = std::max(1, settings_.threads);
  // httplib takes ownership of the queue it is handed (its API is a raw pointer).
  server_->new_task_queue = [threads] { return std::make_unique<httplib::ThreadPool>(threads).release(); };
  server_->set_payload_max_length(settings_.max_body_bytes);
  Routes();
}

HttpGateway::~HttpGateway() { Shutdown(); }

void HttpGateway::Routes() {
  auto allowed_origin = [this](const httplib::Request& req) -> std::string {
    const std::string origin = req.get_header_value("Origin");
    if (origin.empty()) return "";
    if (settings_.cors_origins.contains("*") || settings_.cors_origins.contains(origin)) return origin;
    return "";
  };
  auto cors = [allowed_origin](const httplib::Request& req, httplib::Response& res) {
    const std::string origin = allowed_origin(req);
    if (origin.empty()) return;
    res.set_header("Access-Control-Allow-Origin", origin);
    res.set_header("Vary", "Origin");
    res.set_header("Access-Control-Expose-Headers", kExposedHeaders);
  };

  server_->Options(R"(/.*)", [allowed_origin](const httplib::Request& req, httplib::Response& res) {
    const std::string origin = allowed_origin(req);
    res.status = 204;
    if (origin.empty()) return;  // no CORS headers: the browser refuses the call
    res.set_header("Access-Control-Allow-Origin", origin);
    res.set_header("Vary", "Origin");
    res.set_header("Access-Control-Allow-Methods", "POST, GET");
    res.set_header("Access-Control-Allow-Headers", kAllowedHeaders);
    res.set_header("Access-Control-Max-Age", "7200");
  });

  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_.Render(), "text/plain; version=0.0.4");
  });

  server_->Post(R"(/([A-Za-z0-9_.]+)/([A-Za-z0-9_]+))", [this, cors](const httplib::Request& req,
                                                                    httplib::Response& res) {
    cors(req, res);
    const std::string service = req.matches[1], method_name = req.matches[2];
    const auto* method = std::find(services_.begin(), services_.end(), service) == services_.end()
                             ? nullptr
                             : google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(service + "." +
                                                                                                    method_name);
    if (method == nullptr || method->client_streaming() || method->server_streaming()) {
      ConnectError(res, grpc::StatusCode::UNIMPLEMENTED, "no unary procedure /" + service + "/" + method_name);
      res.status = 404;
      return;
    }
    const Codec codec = CodecOf(req.get_header_value("Content-Type"));
    if (codec == Codec::kUnsupported) {
      res.status = 415;
      res.set_header("Accept-Post", "application/json, application/proto");
      return;
    }
    if (req.has_header("Connect-Protocol-Version") && req.get_header_value("Connect-Protocol-Version") != "1") {
      ConnectError(res, grpc::StatusCode::INVALID_ARGUMENT, "Connect-Protocol-Version: only 1 is supported");
      return;
    }
    auto* factory = google::protobuf::MessageFactory::generated_factory();
    std::unique_ptr<Message> request(factory->GetPrototype(method->input_type())->New());
    if (codec == Codec::kJson) {
      google::protobuf::util::JsonParseOptions options;
      options.ignore_unknown_fields = false;
      const auto parsed = google::protobuf::util::JsonStringToMessage(req.body.empty() ? "{}" : req.body,
                                                                      request.get(), options);
      if (!parsed.ok()) {
        ConnectError(res, grpc::StatusCode::INVALID_ARGUMENT, "request body: " + std::string(parsed.message()));
        return;
      }
    } else if (!request->ParseFromString(req.body)) {
      ConnectError(res, grpc::StatusCode::INVALID_ARGUMENT, "request body: not a valid " +
                                                                method->input_type()->full_name());
      return;
    }

    auto timeout = settings_.default_timeout;
    if (req.has_header("Connect-Timeout-Ms")) {
      const std::string value = req.get_header_value("Connect-Timeout-Ms");
      long ms = 0;
      const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), ms);
      if (error != std::errc() || end != value.data() + value.size() || ms <= 0 || value.size() > 10) {
        ConnectError(res, grpc::StatusCode::INVALID_ARGUMENT, "Connect-Timeout-Ms: a positive number of milliseconds");
        return;
      }
      timeout = std::min(std::chrono::milliseconds(ms), settings_.max_timeout);
    }
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + timeout);
    for (const auto& [header, key] : {std::pair{"Authorization", "authorization"}, std::pair{"X-Request-Id", "x-request-id"},
                                      std::pair{"Traceparent", "traceparent"}}) {
      if (req.has_header(header)) context.AddMetadata(key, req.get_header_value(header));
    }
    context.AddMetadata(kHttpPeerMetadata, req.remote_addr + ":" + std::to_string(req.remote_port));
    context.AddMetadata(kGatewayKeyMetadata, GatewayKey());

    grpc::GenericStub stub(channel_);
    std::string response_bytes;
    const grpc::Status status =
        CallInProcess(stub, context, "/" + service + "/" + method_name, request->SerializeAsString(), &response_bytes);
    for (const auto& [key, value] : context.GetServerTrailingMetadata()) {
      if (key == "retry-after-ms" || key == "grpc-retry-pushback-ms") {
        res.set_header(std::string(key.data(), key.size()), std::string(value.data(), value.size()));
      }
    }
    if (!status.ok()) {
      ConnectError(res, status.error_code(), status.error_message());
      return;
    }
    std::unique_ptr<Message> response(factory->GetPrototype(method->output_type())->New());
    if (!response->ParseFromString(response_bytes)) {
      ConnectError(res, grpc::StatusCode::INTERNAL, "internal error");
      return;
    }
    if (codec == Codec::kProto) {
      res.set_content(response->SerializeAsString(), "application/proto");
      return;
    }
    std::string json;
    google::protobuf::util::JsonPrintOptions options;
    if (!google::protobuf::util::MessageToJsonString(*response, &json, options).ok()) {
      ConnectError(res, grpc::StatusCode::INTERNAL, "internal error");
      return;
    }
    res.set_content(json, "application/json");
  });

  // Anything else: a Connect-style not-found (no HTML error pages).
  server_->set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty() && res.status == 404) {
      ConnectError(res, grpc::StatusCode::UNIMPLEMENTED, "no such path");
      res.status = 404;
    }
  });
}

int HttpGateway::Start() {
  const auto colon = settings_.listen.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("http-listen must be host:port");
  const std::string host = settings_.listen.substr(0, colon);
  const int wanted = std::stoi(settings_.listen.substr(colon + 1));
  port_ = wanted == 0 ? server_->bind_to_any_port(host) : (server_->bind_to_port(host, wanted) ? wanted : -1);
  if (port_ <= 0) throw std::runtime_error("cannot listen on " + settings_.listen + " (http)");
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return port_;
}

void HttpGateway::Shutdown() {
  if (!thread_.joinable()) return;
  server_->stop();
  thread_.join();
}

}  // namespace physio
