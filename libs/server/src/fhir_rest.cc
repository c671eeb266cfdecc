#include "physio/server/fhir_rest.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <ctime>
#include <set>

#include "physio/common/fhir_search.h"
#include "physio/common/validation.h"
#include "physio/server/http_gateway.h"
#include "physio/server/status_codes.h"

namespace physio {

namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using nlohmann::json;

constexpr const char* kFhirJson = "application/fhir+json; charset=utf-8";
constexpr const char* kPrefix = "/fhir/R4";
constexpr int kDefaultCount = 20;
constexpr int kMaxCount = 100;
// The headers that become gRPC metadata of the calls (checked before anything else).
constexpr const char* kForwardedHeaders[] = {"Authorization", "X-Request-Id", "Traceparent"};

const char* IssueCode(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT: return "invalid";
    case grpc::StatusCode::NOT_FOUND: return "not-found";
    case grpc::StatusCode::PERMISSION_DENIED: return "forbidden";
    case grpc::StatusCode::UNAUTHENTICATED: return "login";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "throttled";
    case grpc::StatusCode::UNAVAILABLE: return "transient";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "timeout";
    case grpc::StatusCode::ALREADY_EXISTS: return "duplicate";
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::ABORTED: return "conflict";
    case grpc::StatusCode::UNIMPLEMENTED: return "not-supported";
    default: return "exception";
  }
}

// Our field names as a FHIR client knows them.
std::string FhirDiagnostics(std::string text) {
  for (const auto& [ours, theirs] : {std::pair<std::string, std::string>{"patient_id:", "patient:"},
                                     {"count:", "_count:"}, {"cursor:", "_cursor:"}, {"query.patient_id:", "patient:"},
                                     {"resource_json:", "body:"}, {"if_none_exist:", "If-None-Exist:"},
                                     {"since:", "_since:"}, {"types:", "_type:"}}) {
    if (text.rfind(ours, 0) == 0) return theirs + text.substr(ours.size());
  }
  return text;
}

void Answer(httplib::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_content(body, kFhirJson);
}

// A search or read routed to another service that is down, or slower than the deadline, fails in
// gRPC's own client, whose message names the peer's address ("ipv4:10.0.3.7:50052: Failed to
// connect"): the topology stays in the log; the caller is told what to do, as the gRPC port tells it
// (ForClient in grpc_context.cc).
void AnswerError(httplib::Response& res, grpc::StatusCode code, const std::string& diagnostics) {
  std::string told = diagnostics;
  // Our own services' answers of these codes are already written for the caller (with the request id).
  const bool ours = diagnostics.starts_with("a store or service is unavailable") ||
                    diagnostics.starts_with("internal error");
  if (!ours && (code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED ||
                code == grpc::StatusCode::UNKNOWN || code == grpc::StatusCode::INTERNAL)) {
    spdlog::warn("fhir: a routed call answered {}: {}", StatusCodeName(code), diagnostics);
    told = code == grpc::StatusCode::UNAVAILABLE         ? "a store or service is unavailable; retry"
           : code == grpc::StatusCode::DEADLINE_EXCEEDED ? "no answer within the deadline; retry"
                                                         : "internal error";
  }
  Answer(res, FhirHttpStatus(code), FhirOperationOutcome(code, FhirDiagnostics(told)));
}

// Percent-encoding of a query value (RFC 3986 unreserved characters kept).
std::string Encode(const std::string& text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// A patient reference as FHIR search writes it: "123", "Patient/123" or ".../Patient/123".
std::string PatientOfReference(const std::string& value, bool bare_allowed) {
  const auto at = value.rfind("Patient/");
  if (at != std::string::npos && (at == 0 || value[at - 1] == '/')) return value.substr(at + 8);
  return bare_allowed && value.find('/') == std::string::npos ? value : "";
}

// Reflection helpers: the SearchFhir / CreateFhirResource messages are built and read by field name.
void SetString(Message& message, const char* name, const std::string& value) {
  if (const auto* field = message.GetDescriptor()->FindFieldByName(name)) message.GetReflection()->SetString(&message, field, value);
}
std::string GetString(const Message& message, const char* name) {
  const auto* field = message.GetDescriptor()->FindFieldByName(name);
  return field == nullptr ? "" : message.GetReflection()->GetString(message, field);
}
std::vector<std::string> GetStrings(const Message& message, const char* name) {
  std::vector<std::string> out;
  const auto* field = message.GetDescriptor()->FindFieldByName(name);
  if (field == nullptr) return out;
  const auto* reflection = message.GetReflection();
  for (int i = 0; i < reflection->FieldSize(message, field); ++i) out.push_back(reflection->GetRepeatedString(message, field, i));
  return out;
}

// A FHIR instant (UTC, whole seconds) for a Unix time.
std::string Instant(std::int64_t seconds) {
  const std::time_t at = static_cast<std::time_t>(seconds);
  std::tm utc{};
  gmtime_r(&at, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

std::string Today() { return Instant(std::time(nullptr)); }

bool ValidHost(const std::string& host) {
  return !host.empty() && host.size() <= 255 && std::all_of(host.begin(), host.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' || c == '[' || c == ']';
         });
}

}  // namespace

int FhirHttpStatus(grpc::StatusCode code) { return StatusRowOf(code).http_status; }

std::string FhirOperationOutcome(grpc::StatusCode code, const std::string& diagnostics, const char* issue) {
  return json{{"resourceType", "OperationOutcome"},
              {"issue", json::array({{{"severity", code == grpc::StatusCode::OK ? "information" : "error"},
                                      {"code", issue != nullptr ? issue : IssueCode(code)},
                                      {"diagnostics", diagnostics}}})}}
      .dump();
}

FhirRest::FhirRest(FhirRestSettings settings, FhirInvoker invoke, const TokenVerifier& verifier,
                   std::function<void(const httplib::Request&, httplib::Response&)> cors, bool tls)
    : settings_(std::move(settings)), invoke_(std::move(invoke)), verifier_(verifier), cors_(std::move(cors)), tls_(tls) {
  if (settings_.search_request == nullptr || settings_.search_response == nullptr ||
      settings_.create_request == nullptr || settings_.create_response == nullptr) {
    throw std::invalid_argument("FhirRest: the request and response messages are required");
  }
}

std::string FhirRest::BaseOf(const httplib::Request& req) const {
  if (!settings_.base_url.empty()) return settings_.base_url;
  const std::string host = req.get_header_value("Host");
  return std::string(tls_ ? "https://" : "http://") + (ValidHost(host) ? host : "localhost") + kPrefix;
}

bool FhirRest::RefusedBeforeBody(const httplib::Request& req, httplib::Response& res) {
  cors_(req, res);
  auto refuse = [&](int status, grpc::StatusCode code, const std::string& why) {
    Answer(res, status, FhirOperationOutcome(code, why));
    res.set_header("Connection", "close");  // the unread body is never taken for the next request
    return true;
  };
  for (const char* header : kForwardedHeaders) {
    const auto count = req.get_header_value_count(header);
    if (count > 1) return refuse(400, grpc::StatusCode::INVALID_ARGUMENT, std::string(header) + ": sent more than once");
    if (count == 1) {
      if (auto problem = ForwardedHeaderProblem(header, req.get_header_value(header))) {
        return refuse(400, grpc::StatusCode::INVALID_ARGUMENT, *problem);
      }
    }
  }
  if (req.path == std::string(kPrefix) + "/metadata") return false;  // public, as FHIR servers' are
  if (!BearerVerifies(req.get_header_value("Authorization"), verifier_)) {
    // Refused by the pipeline from the headers alone (it audits and limits refusals per address).
    grpc::Status status(grpc::StatusCode::UNAUTHENTICATED, "a valid bearer token is required");
    for (const auto& [type, routes] : settings_.search) {
      const auto own = std::find_if(routes.begin(), routes.end(), [](const auto& r) { return r.channel == nullptr; });
      if (own == routes.end()) continue;
      std::string ignored;
      status = invoke_(req, nullptr, own->method, "", &ignored);
      break;
    }
    if (status.ok()) status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "a valid bearer token is required");
    res.set_header("WWW-Authenticate", "Bearer realm=\"fhir\"");
    return refuse(FhirHttpStatus(status.error_code()), status.error_code(), status.error_message());
  }
  // Every query parameter (a search's, a bulk export's) is one line of UTF-8 text: protobuf would
  // not send anything else on to a service, and a line break or an escape sequence would come back
  // to the client in a diagnostic. Refused here, naming the parameter as the client wrote it.
  for (const auto& [name, value] : req.params) {
    if (!IsValidUtf8(name) || ControlCharacterIn(name, LineBreaks::kOneLine) >= 0) {
      return refuse(400, grpc::StatusCode::INVALID_ARGUMENT,
                    "a query parameter's name must be UTF-8 text without control characters");
    }
    if (!IsValidUtf8(value)) return refuse(400, grpc::StatusCode::INVALID_ARGUMENT, name + ": must be UTF-8 text");
    if (auto why = ControlCharacterRefusal(value, LineBreaks::kOneLine); !why.empty()) {
      return refuse(400, grpc::StatusCode::INVALID_ARGUMENT, name + ": " + why);
    }
  }
  if (req.method == "POST") {
    const std::string condition = req.get_header_value("If-None-Exist");
    if (!IsValidUtf8(condition)) {
      return refuse(400, grpc::StatusCode::INVALID_ARGUMENT, "If-None-Exist: must be UTF-8 text");
    }
    const std::string base = CaseFoldedToken(req.get_header_value("Content-Type"));  // RFC 9110 8.3.1
    if (base != "application/fhir+json" && base != "application/json") {
      res.set_header("Accept-Post", "application/fhir+json");
      return refuse(415, grpc::StatusCode::INVALID_ARGUMENT, "Content-Type: must be application/fhir+json");
    }
    if (!DeclaresUtf8OrNoCharset(req.get_header_value("Content-Type"))) {
      res.set_header("Accept-Post", "application/fhir+json; charset=utf-8");
      return refuse(415, grpc::StatusCode::INVALID_ARGUMENT, "Content-Type: a FHIR JSON body is UTF-8 (charset=utf-8)");
    }
  }
  return false;
}

void FhirRest::Mount(httplib::Server& server) {
  const std::string prefix = kPrefix;
  auto format_refused = [](const httplib::Request& req, httplib::Response& res) {
    if (!req.has_param("_format")) return false;
    static const std::set<std::string> kJson = {"json", "application/json", "application/fhir+json"};
    if (kJson.contains(req.get_param_value("_format"))) return false;
    Answer(res, 406, FhirOperationOutcome(grpc::StatusCode::INVALID_ARGUMENT, "_format: only JSON is served"));
    return true;
  };
  server.Get(prefix + "/metadata", [this, format_refused](const httplib::Request& req, httplib::Response& res) {
    cors_(req, res);
    if (format_refused(req, res)) return;
    Answer(res, 200, CapabilityStatement(BaseOf(req)));
  });
  server.Get(prefix + R"(/([A-Za-z]{1,64}))", [this, format_refused](const httplib::Request& req, httplib::Response& res) {
    if (format_refused(req, res)) return;
    Search(req, res, req.matches[1]);
  });
  server.Get(prefix + R"(/([A-Za-z]{1,64})/([A-Za-z0-9\-.]{1,64}))",
             [this, format_refused](const httplib::Request& req, httplib::Response& res) {
               if (format_refused(req, res)) return;
               Read(req, res, req.matches[1], req.matches[2]);
             });
  server.Post(prefix + R"(/([A-Za-z]{1,64}))", [this](const httplib::Request& req, httplib::Response& res) {
    Create(req, res, req.matches[1]);
  });
  if (settings_.bulk) {
    server.Get(prefix + R"(/\$export)", [this](const httplib::Request& req, httplib::Response& res) { ExportKickOff(req, res, ""); });
    server.Get(prefix + R"(/Group/([A-Za-z0-9._:\-]{1,64})/\$export)",
               [this](const httplib::Request& req, httplib::Response& res) { ExportKickOff(req, res, req.matches[1]); });
    server.Get(prefix + R"(/\$export-status/([A-Za-z0-9._:\-]{1,128}))",
               [this](const httplib::Request& req, httplib::Response& res) { ExportStatus(req, res, req.matches[1]); });
    server.Delete(prefix + R"(/\$export-status/([A-Za-z0-9._:\-]{1,128}))",
                  [this](const httplib::Request& req, httplib::Response& res) { ExportCancel(req, res, req.matches[1]); });
    server.Get(prefix + R"(/\$export-file/([A-Za-z0-9._:\-]{1,128})/([a-z]{1,32})/([A-Za-z]{1,64})/([0-9]{1,6}))",
               [this](const httplib::Request& req, httplib::Response& res) {
                 ExportFile(req, res, req.matches[1], req.matches[2], req.matches[3], std::stoi(req.matches[4]));
               });
  }
  auto not_supported = [](const httplib::Request&, httplib::Response& res) {
    Answer(res, 405, FhirOperationOutcome(grpc::StatusCode::UNIMPLEMENTED,
                                          "this interaction is not supported (see /fhir/R4/metadata)"));
  };
  server.Put(prefix + "/.*", not_supported);
  server.Patch(prefix + "/.*", not_supported);
  server.Delete(prefix + "/.*", not_supported);
}

void FhirRest::Search(const httplib::Request& req, httplib::Response& res, const std::string& type) {
  const auto routes = settings_.search.find(type);
  if (routes == settings_.search.end()) {
    return AnswerError(res, grpc::StatusCode::NOT_FOUND, "resource type " + type + " is not served here (see /metadata)");
  }
  const bool strict = req.get_header_value("Prefer").find("handling=strict") != std::string::npos;
  int count = kDefaultCount;
  std::string cursor, patient;
  std::vector<std::pair<std::string, std::string>> passed;
  std::vector<std::string> notes;
  for (const auto& [name, value] : req.params) {
    if (name == "_count") {
      int parsed = 0;
      const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), parsed);
      if (error != std::errc() || end != value.data() + value.size() || parsed < 1) {
        return AnswerError(res, grpc::StatusCode::INVALID_ARGUMENT, "_count: must be a positive whole number");
      }
      if (parsed > kMaxCount && strict) {
        return AnswerError(res, grpc::StatusCode::INVALID_ARGUMENT, "_count: at most " + std::to_string(kMaxCount));
      }
      if (parsed > kMaxCount) notes.push_back("_count above " + std::to_string(kMaxCount) + " was reduced to it");
      count = std::min(parsed, kMaxCount);
    } else if (name == "_cursor") {
      cursor = value;
    } else if (name == "_format") {
      continue;  // checked by the route
    } else if (name == "patient" || name == "subject" || name == "patient:Patient" || name == "subject:Patient") {
      const std::string named = PatientOfReference(value, name.rfind("patient", 0) == 0);
      if (named.empty() || value.find(',') != std::string::npos) {
        return AnswerError(res, grpc::StatusCode::INVALID_ARGUMENT, name + ": one patient, as <id> or Patient/<id>");
      }
      if (!patient.empty() && patient != named) {
        return AnswerError(res, grpc::StatusCode::INVALID_ARGUMENT, name + ": one patient per search");
      }
      patient = named;
    } else {
      passed.emplace_back(name, value);
    }
  }
  // The cursor: which of the type's services the page starts at, then that service's own cursor.
  std::size_t start = 0;
  std::string inner;
  if (!cursor.empty()) {
    const auto tilde = cursor.find('~');
    const auto [end, error] = std::from_chars(cursor.data(), cursor.data() + (tilde == std::string::npos ? 0 : tilde), start);
    if (tilde == std::string::npos || error != std::errc() || end != cursor.data() + tilde || start >= routes->second.size()) {
      return AnswerError(res, grpc::StatusCode::INVALID_ARGUMENT, "_cursor: not a cursor of this search");
    }
    inner = cursor.substr(tilde + 1);
  }

  const std::string base = BaseOf(req);
  json entries = json::array();
  std::set<std::string> ignored;
  std::string next;
  int remaining = count;
  for (std::size_t i = start; i < routes->second.size() && remaining > 0; ++i) {
    const auto& route = routes->second[i];
    std::unique_ptr<Message> request(settings_.search_request->New());
    SetString(*request, "resource_type", type);
    SetString(*request, "patient_id", patient);
    SetString(*request, "cursor", i == start ? inner : "");
    const auto* descriptor = request->GetDescriptor();
    const auto* reflection = request->GetReflection();
    reflection->SetBool(request.get(), descriptor->FindFieldByName("strict"), strict);
    reflection->SetInt32(request.get(), descriptor->FindFieldByName("count"), remaining);
    const auto* parameters = descriptor->FindFieldByName("parameters");
    for (const auto& [name, value] : passed) {
      Message* parameter = reflection->AddMessage(request.get(), parameters);
      SetString(*parameter, "name", name);
      SetString(*parameter, "value", value);
    }
    std::string bytes;
    const grpc::Status status = invoke_(req, route.channel, route.method, request->SerializeAsString(), &bytes);
    if (status.error_code() == grpc::StatusCode::NOT_FOUND) continue;  // a patient the caller may not see: nothing
    if (!status.ok()) return AnswerError(res, status.error_code(), status.error_message());
    std::unique_ptr<Message> response(settings_.search_response->New());
    if (!response->ParseFromString(bytes)) return AnswerError(res, grpc::StatusCode::INTERNAL, "internal error");
    for (const auto& text : GetStrings(*response, "resources_json")) {
      json resource = json::parse(text, nullptr, false);
      if (resource.is_discarded()) return AnswerError(res, grpc::StatusCode::INTERNAL, "internal error");
      entries.push_back({{"fullUrl", base + "/" + type + "/" + resource.value("id", "")},
                         {"resource", std::move(resource)},
                         {"search", {{"mode", "match"}}}});
      --remaining;
    }
    for (const auto& name : GetStrings(*response, "ignored_parameters")) ignored.insert(name);
    if (const std::string more = GetString(*response, "next_cursor"); !more.empty()) {
      next = std::to_string(i) + "~" + more;
      break;
    }
    if (remaining <= 0 && i + 1 < routes->second.size()) next = std::to_string(i + 1) + "~";
  }

  // Links carry the parameters that were applied (the specification's rule for self).
  std::string query;
  if (!patient.empty()) query += "patient=" + Encode(patient);
  for (const auto& [name, value] : passed) {
    if (ignored.contains(name)) continue;
    query += (query.empty() ? "" : "&") + Encode(name) + "=" + Encode(value);
  }
  query += (query.empty() ? "" : "&") + std::string("_count=") + std::to_string(count);
  json links = json::array({{{"relation", "self"}, {"url", base + "/" + type + "?" + query +
                                                               (cursor.empty() ? "" : "&_cursor=" + Encode(cursor))}}});
  if (!next.empty()) links.push_back({{"relation", "next"}, {"url", base + "/" + type + "?" + query + "&_cursor=" + Encode(next)}});
  if (!ignored.empty()) {
    std::string names;
    for (const auto& name : ignored) names += (names.empty() ? "" : ", ") + name;
    notes.push_back("not supported and not applied: " + names + " (Prefer: handling=strict refuses them)");
  }
  if (!notes.empty()) {
    json issues = json::array();
    for (const auto& note : notes) issues.push_back({{"severity", "warning"}, {"code", "not-supported"}, {"diagnostics", note}});
    entries.push_back({{"resource", {{"resourceType", "OperationOutcome"}, {"issue", issues}}}, {"search", {{"mode", "outcome"}}}});
  }
  cors_(req, res);
  Answer(res, 200, json{{"resourceType", "Bundle"}, {"type", "searchset"}, {"link", links}, {"entry", entries}}.dump());
}

void FhirRest::Read(const httplib::Request& req, httplib::Response& res, const std::string& type, const std::string& id) {
  cors_(req, res);
  const auto routes = settings_.search.find(type);
  if (routes == settings_.search.end()) {
    return AnswerError(res, grpc::StatusCode::NOT_FOUND, "resource type " + type + " is not served here (see /metadata)");
  }
  for (const auto& route : routes->second) {
    std::unique_ptr<Message> request(settings_.search_request->New());
    SetString(*request, "resource_type", type);
    SetString(*request, "id", id);
    std::string bytes;
    const grpc::Status status = invoke_(req, route.channel, route.method, request->SerializeAsString(), &bytes);
    if (status.error_code() == grpc::StatusCode::NOT_FOUND) continue;
    if (!status.ok()) return AnswerError(res, status.error_code(), status.error_message());
    std::unique_ptr<Message> response(settings_.search_response->New());
    if (!response->ParseFromString(bytes)) return AnswerError(res, grpc::StatusCode::INTERNAL, "internal error");
    const auto found = GetStrings(*response, "resources_json");
    if (!found.empty()) return Answer(res, 200, found.front());
  }
  AnswerError(res, grpc::StatusCode::NOT_FOUND, type + "/" + id + " not found");
}

void FhirRest::Create(const httplib::Request& req, httplib::Response& res, const std::string& type) {
  cors_(req, res);
  const auto route = settings_.create.find(type);
  if (route == settings_.create.end()) {
    return Answer(res, settings_.search.contains(type) ? 405 : 404,
                  FhirOperationOutcome(grpc::StatusCode::UNIMPLEMENTED, "create of " + type + " is not supported (see /metadata)"));
  }
  // Protobuf sends no string that is not UTF-8 (RFC 8259 8.1 asks it of JSON too).
  if (!IsValidUtf8(req.body)) {
    return Answer(res, 400, FhirOperationOutcome(grpc::StatusCode::INVALID_ARGUMENT, "body: must be UTF-8 text (JSON)"));
  }
  std::unique_ptr<Message> request(settings_.create_request->New());
  SetString(*request, "resource_type", type);
  SetString(*request, "resource_json", req.body);
  SetString(*request, "if_none_exist", req.get_header_value("If-None-Exist"));
  std::string bytes;
  const grpc::Status status =
      invoke_(req, route->second.channel, route->second.method, request->SerializeAsString(), &bytes);
  if (!status.ok()) {
    // A repeat of a conditional create with another resource: the condition matched something else.
    const bool conditional = req.has_header("If-None-Exist");
    if (conditional && (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
                        status.error_code() == grpc::StatusCode::ALREADY_EXISTS)) {
      return Answer(res, 412, FhirOperationOutcome(status.error_code(), status.error_message()));
    }
    return AnswerError(res, status.error_code(), status.error_message());
  }
  std::unique_ptr<Message> response(settings_.create_response->New());
  if (!response->ParseFromString(bytes)) return AnswerError(res, grpc::StatusCode::INTERNAL, "internal error");
  const std::string resource = GetString(*response, "resource_json");
  const bool created = response->GetReflection()->GetBool(*response, response->GetDescriptor()->FindFieldByName("created"));
  const json parsed = json::parse(resource, nullptr, false);
  if (!parsed.is_discarded() && parsed.contains("id")) {
    res.set_header("Location", BaseOf(req) + "/" + type + "/" + parsed["id"].get<std::string>());
  }
  Answer(res, created ? 201 : 200, resource);
}

std::string FhirRest::CapabilityStatement(const std::string& base) const {
  json resources = json::array();
  for (const auto& [type, routes] : settings_.search) {
    json params = json::array();
    if (type == "AuditEvent") {
      params.push_back({{"name", "patient"}, {"type", "reference"}, {"documentation", "the patient the access concerned"}});
    } else {
      params.push_back({{"name", "patient"},
                        {"type", "reference"},
                        {"documentation", "required (a patient's own token implies it): the patient whose records are searched"}});
    }
    for (const auto& info : FhirSearch::SupportedParameters(type)) {
      params.push_back({{"name", info.name}, {"type", info.type}, {"documentation", info.documentation}});
    }
    json interactions = json::array({{{"code", "search-type"}}});
    if (type != "AuditEvent") interactions.insert(interactions.begin(), json{{"code", "read"}});
    json resource = {{"type", type},
                     {"versioning", "no-version"},
                     {"readHistory", false},
                     {"interaction", interactions},
                     {"searchParam", params}};
    if (settings_.create.contains(type)) {
      resource["interaction"].push_back({{"code", "create"}});
      resource["conditionalCreate"] = true;
    }
    resources.push_back(std::move(resource));
  }
  json operations = json::array();
  if (settings_.bulk) {
    const char* kExport = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export";
    resources.push_back({{"type", "Group"},
                         {"operation", json::array({{{"name", "export"},
                                                     {"definition", "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"},
                                                     {"documentation", "Group/<clinic id>/$export: the clinic's patients"}}})}});
    operations.push_back({{"name", "export"}, {"definition", kExport}});
  }
  json statement = {
      {"resourceType", "CapabilityStatement"},
      {"status", "active"},
      {"date", Today()},
      {"publisher", "physio-backend"},
      {"kind", "instance"},
      {"software", {{"name", "physio-backend"}, {"version", settings_.software_version}}},
      {"implementation", {{"description", "Physiotherapy for low back pain: assessment, plans and progress"}, {"url", base}}},
      {"fhirVersion", "4.0.1"},
      {"format", json::array({"json"})},
      {"rest",
       json::array({{{"mode", "server"},
                     {"documentation", "Searches take _count (1-100, default 20) and page with the next link (_cursor). "
                                       "Unsupported parameters are ignored and reported, or refused with "
                                       "Prefer: handling=strict."},
                     {"security",
                      {{"cors", true},
                       {"service", json::array({{{"coding", json::array({{{"system", "http://terminology.hl7.org/CodeSystem/restful-security-service"},
                                                                           {"code", "SMART-on-FHIR"}}})}}})},
                       {"description", "OAuth 2.0 bearer tokens from the configured issuers; SMART resource scopes "
                                       "(system/CarePlan.read, patient/*.rs) are honoured when a token carries them."}}},
                     {"resource", resources}}})}};
  if (!operations.empty()) {
    statement["rest"][0]["operation"] = operations;
    statement["instantiates"] = json::array({"http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"});
  }
  return statement.dump();
}

bool FhirRest::CallOwn(const httplib::Request& req, httplib::Response& res, const std::string& method,
                       const std::function<void(Message&)>& fill, std::unique_ptr<Message>* response) {
  const std::string name = method.substr(1);  // "/pkg.Service/Method" -> "pkg.Service.Method"
  const auto slash = name.find('/');
  const auto* descriptor = google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
      name.substr(0, slash) + "." + name.substr(slash + 1));
  if (descriptor == nullptr) {
    AnswerError(res, grpc::StatusCode::UNIMPLEMENTED, "bulk export is not served here");
    return false;
  }
  auto* factory = google::protobuf::MessageFactory::generated_factory();
  std::unique_ptr<Message> request(factory->GetPrototype(descriptor->input_type())->New());
  fill(*request);
  std::string bytes;
  const grpc::Status status = invoke_(req, nullptr, method, request->SerializeAsString(), &bytes);
  if (!status.ok()) {
    AnswerError(res, status.error_code(), status.error_message());
    return false;
  }
  response->reset(factory->GetPrototype(descriptor->output_type())->New());
  if (!(*response)->ParseFromString(bytes)) {
    AnswerError(res, grpc::StatusCode::INTERNAL, "internal error");
    return false;
  }
  return true;
}

void FhirRest::ExportKickOff(const httplib::Request& req, httplib::Response& res, const std::string& group) {
  cors_(req, res);
  const std::string prefer = req.get_header_value("Prefer");
  if (prefer.find("respond-async") == std::string::npos) {
    return AnswerError(res, grpc::StatusCode::INVALID_ARGUMENT, "Prefer: respond-async is required (FHIR Bulk Data)");
  }
  const bool lenient = prefer.find("handling=lenient") != std::string::npos;
  std::vector<std::string> types;
  std::string since;
  for (const auto& [name, value] : req.params) {
    if (name == "_outputFormat") {
      static const std::set<std::string> kNdjson = {"application/fhir+ndjson", "application/ndjson", "ndjson"};
      if (!kNdjson.contains(value)) {
        return AnswerError(res, grpc::StatusCode::INVALID_ARGUMENT, "_outputFormat: only application/fhir+ndjson");
      }
    } else if (name == "_type") {
      std::size_t start = 0;
      while (start <= value.size()) {
        const auto comma = value.find(',', start);
        const std::string type = value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (!type.empty()) types.push_back(type);
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    } else if (name == "_since") {
      since = value;
    } else if (!lenient) {
      return AnswerError(res, grpc::StatusCode::INVALID_ARGUMENT,
                         name + ": not supported by this export (Prefer: handling=lenient ignores it)");
    }
  }
  if (types.size() > 32) return AnswerError(res, grpc::StatusCode::INVALID_ARGUMENT, "_type: at most 32 types");
  const std::string host = BaseOf(req);
  const std::string request_url = host.substr(0, host.size() - std::string(kPrefix).size()) + req.target;
  std::unique_ptr<Message> response;
  if (!CallOwn(req, res, settings_.bulk->start,
               [&](Message& request) {
                 SetString(request, "group_id", group);
                 SetString(request, "since", since);
                 SetString(request, "request_url", request_url.substr(0, 2048));
                 const auto* field = request.GetDescriptor()->FindFieldByName("types");
                 for (const auto& type : types) request.GetReflection()->AddString(&request, field, type);
               },
               &response)) {
    return;
  }
  res.status = 202;
  res.set_header("Content-Location", host + "/$export-status/" + GetString(*response, "job_id"));
}

void FhirRest::ExportStatus(const httplib::Request& req, httplib::Response& res, const std::string& job) {
  cors_(req, res);
  std::unique_ptr<Message> status;
  if (!CallOwn(req, res, settings_.bulk->status, [&](Message& request) { SetString(request, "job_id", job); }, &status)) {
    return;
  }
  const auto* descriptor = status->GetDescriptor();
  const auto* reflection = status->GetReflection();
  const auto instant = [&](const char* name) {
    const auto& time = reflection->GetMessage(*status, descriptor->FindFieldByName(name));
    const auto* seconds = time.GetDescriptor()->FindFieldByName("seconds");
    return Instant(time.GetReflection()->GetInt64(time, seconds));
  };
  if (!reflection->GetBool(*status, descriptor->FindFieldByName("complete"))) {
    res.status = 202;
    res.set_header("X-Progress",
                   std::to_string(reflection->GetInt64(*status, descriptor->FindFieldByName("written"))) + " resources written");
    res.set_header("Retry-After", "2");
    return;
  }
  const std::string base = BaseOf(req);
  json output = json::array();
  const auto* outputs = descriptor->FindFieldByName("outputs");
  for (int i = 0; i < reflection->FieldSize(*status, outputs); ++i) {
    const Message& file = reflection->GetRepeatedMessage(*status, outputs, i);
    const auto* file_reflection = file.GetReflection();
    const auto* file_descriptor = file.GetDescriptor();
    const std::string service = GetString(file, "service"), type = GetString(file, "type");
    const int part = file_reflection->GetInt32(file, file_descriptor->FindFieldByName("part"));
    output.push_back({{"type", type},
                      {"url", base + "/$export-file/" + job + "/" + service + "/" + type + "/" + std::to_string(part)},
                      {"count", file_reflection->GetInt32(file, file_descriptor->FindFieldByName("count"))}});
  }
  json errors = json::array();
  for (const auto& error : GetStrings(*status, "errors")) {
    errors.push_back({{"type", "OperationOutcome"}, {"message", error}});
  }
  res.set_header("Expires", instant("expire_time"));
  Answer(res, 200, json{{"transactionTime", instant("transaction_time")},
                        {"request", GetString(*status, "request_url")},
                        {"requiresAccessToken", true},
                        {"output", output},
                        {"error", errors}}
                       .dump());
  res.set_header("Content-Type", "application/json");
}

void FhirRest::ExportCancel(const httplib::Request& req, httplib::Response& res, const std::string& job) {
  cors_(req, res);
  std::unique_ptr<Message> done;
  if (!CallOwn(req, res, settings_.bulk->cancel, [&](Message& request) { SetString(request, "job_id", job); }, &done)) {
    return;
  }
  res.status = 202;
}

void FhirRest::ExportFile(const httplib::Request& req, httplib::Response& res, const std::string& job,
                          const std::string& service, const std::string& type, int part) {
  cors_(req, res);
  std::unique_ptr<Message> file;
  if (!CallOwn(req, res, settings_.bulk->file,
               [&](Message& request) {
                 SetString(request, "job_id", job);
                 SetString(request, "service", service);
                 SetString(request, "type", type);
                 request.GetReflection()->SetInt32(&request, request.GetDescriptor()->FindFieldByName("part"), part);
               },
               &file)) {
    return;
  }
  res.status = 200;
  res.set_content(GetString(*file, "ndjson"), "application/fhir+ndjson");
}

}  // namespace physio
