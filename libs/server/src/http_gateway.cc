#include "physio/server/http_gateway.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/generic/generic_stub.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <list>
#include <mutex>
#include <stdexcept>

#include "physio/common/logging.h"
#include "physio/common/process_stats.h"
#include "physio/common/proto_json_printer.h"
#include "physio/common/validation.h"
#include "physio/server/grpc_context.h"
#include "physio/server/status_codes.h"

// Without it every keep-alive answer written as headers then body waits for the
// client's delayed ACK (Nagle): about 40 ms a call (docs/benchmarks.md, issue 33).
static_assert(CPPHTTPLIB_TCP_NODELAY, "the HTTP port needs TCP_NODELAY (libs/third_party/CMakeLists.txt)");

namespace physio {

namespace {

using google::protobuf::Message;

const char* const kAllowedHeaders =
    "Content-Type, Authorization, Connect-Protocol-Version, Connect-Timeout-Ms, X-Request-Id, Traceparent, "
    "X-User-Agent";
const char* const kExposedHeaders = "Retry-After-Ms, Grpc-Retry-Pushback-Ms";
// The headers whose values become gRPC metadata of the in-process call.
constexpr std::pair<const char*, const char*> kForwarded[] = {
    {"Authorization", "authorization"}, {"X-Request-Id", "x-request-id"}, {"Traceparent", "traceparent"}};
constexpr std::size_t kMaxForwardedHeaderBytes = 8192;

enum class Codec { kJson, kProto, kUnsupported };

// What the HTTP library's refusal of a request past the port's limits says (413, 414, 431), for
// both the Connect and the FHIR answer; "" for any other status.
std::string PastLimit(int status, std::size_t max_body) {
  if (status == 413) return "request body larger than " + std::to_string(max_body) + " bytes";
  if (status == 414) {
    return "request target (path and query) longer than " + std::to_string(CPPHTTPLIB_REQUEST_URI_MAX_LENGTH) + " bytes";
  }
  if (status == 431) {
    return "request headers too large (each line at most " + std::to_string(CPPHTTPLIB_HEADER_MAX_LENGTH) +
           " bytes, at most " + std::to_string(CPPHTTPLIB_HEADER_MAX_COUNT) + " fields)";
  }
  return "";
}

Codec CodecOf(const std::string& content_type) {
  const std::string base = CaseFoldedToken(content_type);  // RFC 9110 8.3.1
  if (base == "application/json") return DeclaresUtf8OrNoCharset(content_type) ? Codec::kJson : Codec::kUnsupported;
  if (base == "application/proto") return Codec::kProto;
  return Codec::kUnsupported;
}

void ConnectError(httplib::Response& res, grpc::StatusCode code, const std::string& message) {
  res.status = ConnectHttpStatus(code);
  res.set_content(std::string(R"({"code":")") + ConnectCodeName(code) + R"(","message":")" + JsonEscape(message) +
                      "\"}",
                  "application/json");
}

// A refusal before the body was read: the connection is closed after the
// answer, so the unread body is never taken for the next request.
httplib::Server::HandlerResponse RefuseUnread(httplib::Response& res, grpc::StatusCode code, const std::string& message) {
  ConnectError(res, code, message);
  res.set_header("Connection", "close");
  return httplib::Server::HandlerResponse::Handled;
}

bool IsPrintableAscii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

// RFC 7235 token68: the characters a bearer token may have.
bool IsToken68(std::string_view text) {
  const auto end = text.find_last_not_of('=');
  if (end == std::string_view::npos) return false;
  return std::all_of(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(end) + 1, [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' ||
           c == '/';
  });
}

// The unary procedure a path names on this server, or nullptr.
const google::protobuf::MethodDescriptor* Procedure(const std::vector<std::string>& services, const std::string& service,
                                                    const std::string& method_name) {
  if (std::find(services.begin(), services.end(), service) == services.end()) return nullptr;
  const auto* method = google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(service + "." + method_name);
  if (method == nullptr || method->client_streaming() || method->server_streaming()) return nullptr;
  return method;
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

// The connections' threads: `base` from the start, one more (up to `most`)
// whenever a connection arrives and no thread is free to take it, and at most
// `max_queued` connections waiting; past that httplib closes a new connection
// at once. (httplib's own ThreadPool counts a thread as free until it has woken
// up, so a burst of slow connections queues behind its first threads; here a
// waiting connection is set against the threads actually waiting.) A thread
// beyond `base` that has had no connection for `idle_timeout` ends (a burst of
// 512 kept-alive callers left 563 threads, about 70 MiB, for good). httplib
// takes ownership of the queue it is handed (its API is a raw pointer).
// `waiting`, when given, is kept at the number of connections waiting for a thread.
// `server`, when given, is asked to close one idle kept-alive connection for each connection
// that has to wait with every thread started (its thread then takes the waiting one), and the
// asks not yet taken are withdrawn once nothing waits: a client holding connections open
// without requests cannot keep the others out for its keep-alive timeout.
class ConnectionThreads final : public httplib::TaskQueue {
 public:
  ConnectionThreads(std::size_t base, std::size_t most, std::size_t max_queued, std::chrono::milliseconds idle_timeout,
                    std::shared_ptr<std::atomic<std::size_t>> waiting, httplib::Server* server)
      : base_(base), most_(std::max(base, most)), max_queued_(max_queued), idle_timeout_(idle_timeout),
        waiting_(std::move(waiting)), server_(server) {
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < base; ++i) threads_.emplace_back([this] { Work(); });
  }
  ~ConnectionThreads() override { shutdown(); }

  bool enqueue(std::function<void()> fn) override {
    {
      std::lock_guard lock(mutex_);
      if (stopping_ || jobs_.size() >= max_queued_) return false;
      jobs_.push_back(std::move(fn));
      if (waiting_) waiting_->store(jobs_.size());
      if (jobs_.size() > idle_) {
        if (threads_.size() < most_) {
          threads_.emplace_back([this] { Work(); });
        } else if (server_ != nullptr) {
          server_->yield_idle_connection();
          asked_to_yield_ = true;
        }
      }
    }
    wake_.notify_one();
    return true;
  }

  void shutdown() override {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      stopping_ = true;
    }
    wake_.notify_all();
    // No thread is added or ends once stopping_ is set, so the list can be walked unlocked.
    for (auto& thread : threads_) thread.join();
  }

 private:
  void Work() {
    for (;;) {
      std::function<void()> job;
      bool ended = false, last_extra = false;
      {
        std::unique_lock lock(mutex_);
        ++idle_;
        const bool woken = wake_.wait_for(lock, idle_timeout_, [&] { return stopping_ || !jobs_.empty(); });
        --idle_;
        if (woken) {
          if (jobs_.empty()) return;  // stopping, and nothing left to serve
          job = std::move(jobs_.front());
          jobs_.pop_front();
          if (waiting_) waiting_->store(jobs_.size());
          if (jobs_.empty() && asked_to_yield_) {
            server_->withdraw_idle_yields();
            asked_to_yield_ = false;
          }
        } else {
          if (threads_.size() <= base_) continue;
          // Idle past the timeout, beyond the base: this thread ends, detached (its stack is
          // freed as it exits; nothing is left to join). It touches nothing of this queue after
          // the lock is released, and shutdown() no longer waits for it.
          const auto self = std::find_if(threads_.begin(), threads_.end(),
                                         [](const std::thread& t) { return t.get_id() == std::this_thread::get_id(); });
          if (self == threads_.end()) continue;
          self->detach();
          threads_.erase(self);
          ended = true;
          last_extra = threads_.size() == base_;
        }
      }
      if (ended) {
        // The last of a burst's threads: the memory their malloc arenas kept goes back to the
        // system (without this a 512-caller burst left the planning service at 82 MiB, not 33).
        if (last_extra) TrimFreeHeap();
        return;
      }
      job();
    }
  }

  const std::size_t base_, most_, max_queued_;
  const std::chrono::milliseconds idle_timeout_;
  const std::shared_ptr<std::atomic<std::size_t>> waiting_;
  httplib::Server* const server_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  std::list<std::thread> threads_;
  std::size_t idle_ = 0;
  bool asked_to_yield_ = false;  // idle connections were asked to yield since the queue was last empty
  bool stopping_ = false;
};

std::function<httplib::TaskQueue*()> HttpThreadPool(int threads, int max_threads, int max_queued,
                                                    std::chrono::milliseconds idle_timeout,
                                                    std::shared_ptr<std::atomic<std::size_t>> waiting = nullptr,
                                                    httplib::Server* server = nullptr) {
  const auto base = static_cast<std::size_t>(std::max(1, threads));
  const auto most = static_cast<std::size_t>(std::max(1, max_threads));
  const auto queued = static_cast<std::size_t>(std::max(1, max_queued));
  const auto idle = std::max(idle_timeout, std::chrono::milliseconds(1));
  return [base, most, queued, idle, waiting, server] {
    return std::make_unique<ConnectionThreads>(base, most, queued, idle, waiting, server).release();
  };
}

// Bounds shared by the gateway and the metrics listener.
void BoundRequests(httplib::Server& server, std::chrono::milliseconds request_read_timeout,
                   std::chrono::milliseconds keepalive_timeout, std::size_t max_body_bytes) {
  server.set_read_timeout(std::min<std::chrono::milliseconds>(request_read_timeout, std::chrono::seconds(5)));
  server.set_request_read_max_timeout(static_cast<time_t>(request_read_timeout.count()));
  server.set_keep_alive_timeout(std::max<time_t>(1, static_cast<time_t>(keepalive_timeout.count() / 1000)));
  server.set_keep_alive_max_count(1000);
  server.set_payload_max_length(max_body_bytes);
}

// Binds `listen` (host:port, port 0: a free one) and serves on `thread`; returns the bound port.
int StartServing(httplib::Server& server, const std::string& listen, const char* what, std::thread& thread) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error(std::string(what) + " must be host:port");
  const std::string host = listen.substr(0, colon);
  const int wanted = std::stoi(listen.substr(colon + 1));
  // cpp-httplib's default is SO_REUSEPORT, which lets a second process share the port (see
  // ServiceHost::Start): SO_REUSEADDR only, so a restart can still bind past TIME_WAIT.
  server.set_socket_options([](auto sock) {
    const int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  const int port = wanted == 0 ? server.bind_to_any_port(host) : (server.bind_to_port(host, wanted) ? wanted : -1);
  if (port <= 0) throw std::runtime_error("cannot listen on " + listen + " (" + what + ")");
  thread = std::thread([&server] { server.listen_after_bind(); });
  return port;
}

// Stops accepting and lets requests in progress finish (once).
void StopServing(httplib::Server& server, std::thread& thread) {
  if (!thread.joinable()) return;
  server.stop();
  thread.join();
}

}  // namespace

bool BearerVerifies(const std::string& authorization, const TokenVerifier& verifier) {
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.size() <= kBearer.size()) return false;
  try {
    verifier.Verify(authorization.substr(kBearer.size()));
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

const char* ConnectCodeName(grpc::StatusCode code) { return StatusRowOf(code).connect_name; }

int ConnectHttpStatus(grpc::StatusCode code) { return StatusRowOf(code).http_status; }

std::string CaseFoldedToken(std::string_view value) {
  std::string token(value.substr(0, value.find(';')));
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.pop_back();
  std::transform(token.begin(), token.end(), token.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return token;
}

bool DeclaresUtf8OrNoCharset(std::string_view content_type) {
  std::size_t at = content_type.find(';');
  while (at != std::string_view::npos) {
    const std::size_t next = content_type.find(';', at + 1);
    std::string parameter(content_type.substr(at + 1, next == std::string_view::npos ? next : next - at - 1));
    std::transform(parameter.begin(), parameter.end(), parameter.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    parameter.erase(std::remove_if(parameter.begin(), parameter.end(), [](char c) { return c == ' ' || c == '\t'; }),
                    parameter.end());
    if (parameter.starts_with("charset=")) {
      std::string charset = parameter.substr(8);
      if (charset.size() >= 2 && charset.front() == '"' && charset.back() == '"') charset = charset.substr(1, charset.size() - 2);
      if (charset != "utf-8" && charset != "utf8") return false;
    }
    at = next;
  }
  return true;
}

std::optional<std::string> ForwardedHeaderProblem(std::string_view name, std::string_view value) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  const std::string label(name);
  if (value.size() > kMaxForwardedHeaderBytes) return label + ": longer than 8192 bytes";
  if (!IsPrintableAscii(value)) return label + ": only printable ASCII characters are allowed";
  if (lower == "authorization") {
    constexpr std::string_view kBearer = "Bearer ";
    if (value.substr(0, kBearer.size()) != kBearer || !IsToken68(value.substr(kBearer.size()))) {
      return label + ": must be 'Bearer <token>'";
    }
  } else if (lower == "x-request-id") {
    if (!IsOpaqueId(std::string(value))) return label + ": must be 1-128 characters of [A-Za-z0-9._:-]";
  } else if (lower == "traceparent") {
    if (!IsWellFormedTraceparent(value)) return label + ": must be a W3C version-00 traceparent";
  }
  return std::nullopt;
}

HttpGateway::HttpGateway(HttpGatewaySettings settings, std::shared_ptr<grpc::Channel> in_process,
                         std::vector<std::string> services, const TokenVerifier& verifier)
    : settings_(std::move(settings)), channel_(std::move(in_process)), services_(std::move(services)), verifier_(verifier) {
  if (settings_.tls_cert_file.empty()) {
    server_ = std::make_unique<httplib::Server>();
  } else {
    server_ = std::make_unique<httplib::SSLServer>(
        settings_.tls_cert_file.c_str(), settings_.tls_key_file.c_str(),
        settings_.tls_client_ca_file.empty() ? nullptr : settings_.tls_client_ca_file.c_str());
    if (!server_->is_valid()) throw std::runtime_error("http: cannot load tls-cert-file / tls-key-file");
  }
  server_->new_task_queue = HttpThreadPool(settings_.threads, settings_.max_threads, settings_.max_queued_connections,
                                           settings_.idle_thread_timeout, waiting_connections_, server_.get());
  BoundRequests(*server_, settings_.request_read_timeout, settings_.keepalive_timeout, settings_.max_body_bytes);
  Routes();
}

HttpGateway::~HttpGateway() { Shutdown(); }

void HttpGateway::Cors(const httplib::Request& req, httplib::Response& res) const {
  const std::string origin = req.get_header_value("Origin");
  if (origin.empty() || !(settings_.cors_origins.contains("*") || settings_.cors_origins.contains(origin))) return;
  res.set_header("Access-Control-Allow-Origin", origin);
  res.set_header("Vary", "Origin");
  res.set_header("Access-Control-Expose-Headers", kExposedHeaders);
}

grpc::Status HttpGateway::Invoke(const httplib::Request& req, const std::shared_ptr<grpc::Channel>& channel,
                                 std::chrono::milliseconds timeout, const std::string& path,
                                 const std::string& request_bytes, std::string* response_bytes,
                                 httplib::Response* res) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  for (const auto& [header, key] : kForwarded) {
    if (req.has_header(header)) context.AddMetadata(key, req.get_header_value(header));
  }
  if (channel == nullptr) {
    // The gateway key never leaves this process: a peer must not be told to believe an address.
    context.AddMetadata(kHttpPeerMetadata, req.remote_addr + ":" + std::to_string(req.remote_port));
    context.AddMetadata(kGatewayKeyMetadata, GatewayKey());
  }
  grpc::GenericStub stub(channel == nullptr ? channel_ : channel);
  const grpc::Status status = CallInProcess(stub, context, path, request_bytes, response_bytes);
  if (res != nullptr) {
    for (const auto& [key, value] : context.GetServerTrailingMetadata()) {
      if (key == "retry-after-ms" || key == "grpc-retry-pushback-ms") {
        res->set_header(std::string(key.data(), key.size()), std::string(value.data(), value.size()));
      }
    }
  }
  return status;
}

void HttpGateway::EnableFhir(FhirRestSettings settings) {
  fhir_ = std::make_unique<FhirRest>(
      std::move(settings),
      [this](const httplib::Request& req, const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
             const std::string& request_bytes, std::string* response_bytes) {
        return Invoke(req, channel, settings_.default_timeout, method, request_bytes, response_bytes, nullptr);
      },
      verifier_, [this](const httplib::Request& req, httplib::Response& res) { Cors(req, res); },
      !settings_.tls_cert_file.empty());
  fhir_->Mount(*server_);
}

void HttpGateway::Routes() {
  auto allowed_origin = [this](const httplib::Request& req) -> std::string {
    const std::string origin = req.get_header_value("Origin");
    if (origin.empty()) return "";
    if (settings_.cors_origins.contains("*") || settings_.cors_origins.contains(origin)) return origin;
    return "";
  };
  auto cors = [this](const httplib::Request& req, httplib::Response& res) { Cors(req, res); };

  server_->Options(R"(/.*)", [allowed_origin](const httplib::Request& req, httplib::Response& res) {
    const std::string origin = allowed_origin(req);
    res.status = 204;
    if (origin.empty()) return;  // no CORS headers: the browser refuses the call
    res.set_header("Access-Control-Allow-Origin", origin);
    res.set_header("Vary", "Origin");
    res.set_header("Access-Control-Allow-Methods", "GET, POST");
    res.set_header("Access-Control-Allow-Headers", std::string(kAllowedHeaders) + ", Prefer, If-None-Exist");
    res.set_header("Access-Control-Max-Age", "7200");
  });

  // The in-process call with the request's forwarded headers (already checked);
  // false when it was answered with an error.
  auto call = [this](const httplib::Request& req, httplib::Response& res, const std::string& path,
                      const std::string& request_bytes, std::string* response_bytes) {
    auto timeout = settings_.default_timeout;
    if (req.has_header("Connect-Timeout-Ms")) {
      const std::string value = req.get_header_value("Connect-Timeout-Ms");
      long ms = 0;
      const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), ms);
      if (error != std::errc() || end != value.data() + value.size() || ms <= 0 || value.size() > 10) {
        ConnectError(res, grpc::StatusCode::INVALID_ARGUMENT, "Connect-Timeout-Ms: a positive number of milliseconds");
        return false;
      }
      timeout = std::min(std::chrono::milliseconds(ms), settings_.max_timeout);
    }
    const grpc::Status status = Invoke(req, nullptr, timeout, path, request_bytes, response_bytes, &res);
    if (!status.ok()) {
      ConnectError(res, status.error_code(), status.error_message());
      return false;
    }
    return true;
  };

  // Everything that can be decided from the request line and headers, before
  // the body is read: the procedure, the codec, the headers bound for gRPC
  // metadata, and the token. A request that fails is answered without its body
  // being read (and its connection closed).
  server_->set_pre_request_handler([this, cors, call](const httplib::Request& req, httplib::Response& res) {
    using httplib::Server;
    if (fhir_ && req.path.rfind("/fhir/R4/", 0) == 0) {
      return fhir_->RefusedBeforeBody(req, res) ? Server::HandlerResponse::Handled : Server::HandlerResponse::Unhandled;
    }
    if (req.method != "POST") return Server::HandlerResponse::Unhandled;
    cors(req, res);
    for (const auto& [header, key] : kForwarded) {
      const auto count = req.get_header_value_count(header);
      if (count > 1) return RefuseUnread(res, grpc::StatusCode::INVALID_ARGUMENT, std::string(header) + ": sent more than once");
      if (count == 0) continue;
      if (auto problem = ForwardedHeaderProblem(header, req.get_header_value(header))) {
        return RefuseUnread(res, grpc::StatusCode::INVALID_ARGUMENT, *problem);
      }
    }
    const std::string service = req.matches[1], method_name = req.matches[2];
    if (Procedure(services_, service, method_name) == nullptr) {
      RefuseUnread(res, grpc::StatusCode::UNIMPLEMENTED, "no unary procedure /" + service + "/" + method_name);
      res.status = 404;
      return Server::HandlerResponse::Handled;
    }
    if (CodecOf(req.get_header_value("Content-Type")) == Codec::kUnsupported) {
      res.status = 415;
      res.set_header("Accept-Post", "application/json, application/proto");
      res.set_header("Connection", "close");
      return Server::HandlerResponse::Handled;
    }
    if (req.has_header("Connect-Protocol-Version") && req.get_header_value("Connect-Protocol-Version") != "1") {
      return RefuseUnread(res, grpc::StatusCode::INVALID_ARGUMENT, "Connect-Protocol-Version: only 1 is supported");
    }
    // A compressed body is not read here: Connect's `unimplemented`, naming what is (the protocol's
    // answer to an encoding the server lacks), rather than the HTTP library's bare 415.
    // Content codings are case-insensitive (RFC 9110 8.4.1): "IDENTITY" is no encoding either.
    if (const std::string encoding = CaseFoldedToken(req.get_header_value("Content-Encoding"));
        !encoding.empty() && encoding != "identity") {
      res.set_header("Accept-Encoding", "identity");
      return RefuseUnread(res, grpc::StatusCode::UNIMPLEMENTED,
                          "Content-Encoding: only identity (an uncompressed body) is read here");
    }
    if (!BearerVerifies(req.get_header_value("Authorization"), verifier_)) {
      // The pipeline refuses it (and audits and limits refusals per address),
      // from the headers alone: an empty request, the body never read.
      std::string ignored;
      call(req, res, "/" + service + "/" + method_name, "", &ignored);
      res.set_header("Connection", "close");
      return Server::HandlerResponse::Handled;
    }
    return Server::HandlerResponse::Unhandled;
  });

  server_->Post(R"(/([A-Za-z0-9_.]+)/([A-Za-z0-9_]+))", [this, call](const httplib::Request& req,
                                                                    httplib::Response& res) {
    const std::string service = req.matches[1], method_name = req.matches[2];
    const auto* method = Procedure(services_, service, method_name);  // checked before the body was read
    const Codec codec = CodecOf(req.get_header_value("Content-Type"));
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
    std::string response_bytes;
    if (!call(req, res, "/" + service + "/" + method_name, request->SerializeAsString(), &response_bytes)) return;
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
    if (!PrintProtoJson(*response, JsonFieldNames::kLowerCamel, &json)) {
      ConnectError(res, grpc::StatusCode::INTERNAL, "internal error");
      return;
    }
    res.set_content(json, "application/json");
  });

  // A thread serves one connection at a time, for as long as it is kept alive. While
  // connections wait for a thread (more keep-alive callers than http-max-threads), each
  // answer asks its client to close, so the waiting ones are served in turn instead of
  // timing out behind connections that never end (issue 33: 512 JSON callers, 256 threads).
  server_->set_post_routing_handler([waiting = waiting_connections_](const httplib::Request&, httplib::Response& res) {
    if (waiting->load() > 0 && !res.has_header("Connection")) res.set_header("Connection", "close");
  });

  // Anything else: a Connect-style error (no HTML error pages).
  const std::size_t max_body = settings_.max_body_bytes;
  server_->set_error_handler([max_body](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    const int status = res.status;
    if (req.path.rfind("/fhir/", 0) == 0 && status >= 400) {
      // FHIR clients get an OperationOutcome.
      // Past the port's limits is FHIR's "too-long" (not "throttled": waiting would not help).
      std::string outcome;
      if (status == 404) {
        outcome = FhirOperationOutcome(grpc::StatusCode::NOT_FOUND, "no such FHIR path (see /fhir/R4/metadata)");
      } else if (const std::string limit = PastLimit(status, max_body); !limit.empty()) {
        outcome = FhirOperationOutcome(grpc::StatusCode::RESOURCE_EXHAUSTED, limit, "too-long");
      } else {
        outcome = FhirOperationOutcome(grpc::StatusCode::INVALID_ARGUMENT, "malformed HTTP request");
      }
      res.set_content(outcome, "application/fhir+json; charset=utf-8");
      res.status = status;
      return;
    }
    if (status == 404) {
      ConnectError(res, grpc::StatusCode::UNIMPLEMENTED, "no such path");
    } else if (const std::string limit = PastLimit(status, max_body); !limit.empty()) {
      ConnectError(res, grpc::StatusCode::RESOURCE_EXHAUSTED, limit);
    } else if (status == 400) {
      ConnectError(res, grpc::StatusCode::INVALID_ARGUMENT, "malformed HTTP request");
    } else {
      return;
    }
    res.status = status;
  });
}

int HttpGateway::Start() { return port_ = StartServing(*server_, settings_.listen, "http-listen", thread_); }

void HttpGateway::Shutdown() { StopServing(*server_, thread_); }

HttpGateway::IdleCloses HttpGateway::IdleConnectionsClosed() const {
  return {server_->keep_alive_timeouts(), server_->idle_yields()};
}

MetricsListener::MetricsListener(std::string listen, const Metrics& metrics)
    : listen_(std::move(listen)), metrics_(metrics), server_(std::make_unique<httplib::Server>()) {
  server_->new_task_queue = HttpThreadPool(2, 2, 16, std::chrono::minutes(1));
  BoundRequests(*server_, std::chrono::seconds(5), std::chrono::seconds(5), 0);
  server_->set_payload_max_length(1024);
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_.Render(), "text/plain; version=0.0.4");
  });
}

MetricsListener::~MetricsListener() { Shutdown(); }

int MetricsListener::Start() { return port_ = StartServing(*server_, listen_, "metrics-listen", thread_); }

void MetricsListener::Shutdown() { StopServing(*server_, thread_); }

}  // namespace physio
