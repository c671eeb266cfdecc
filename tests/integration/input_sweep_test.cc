// A property-based pass over every write and most reads of the three services, through the
// public gRPC API on real stores: each request starts valid (made afresh, so an etag or a state
// is current), then one field at any depth (set in the valid request or not) takes an edge value:
// control characters, a bidi override, blank text, the extreme integers, an enum value no one
// declared, NaN and infinities, timestamps at and beyond their range, nanos out of range. Whatever
// the value, the answer is a clean one (success or a refusal a caller can act on), never INTERNAL
// or UNKNOWN, the service stays up, a refused request leaves every stored row and session as it
// was, and every record written can be read back: over gRPC, over Connect/JSON and as FHIR.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/util/json_util.h>
#include <httplib.h>
#include <libpq-fe.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <set>

#include "clients.h"
#include "clinical_fixture.h"
#include "physio/auth/token_minter.h"
#include "physio/common/ids.h"
#include "physio/server/status_codes.h"
#include "sanitizers.h"

namespace physio::testing {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// One edge value put into one field: `label` says which ("history.age_years = INT32_MIN").
struct Mutation {
  std::string label;
  std::string field;  // the leaf's path ("history.goals")
  std::string value;  // which edge value ("blank text")
  std::vector<const FieldDescriptor*> path;  // the fields from the request to the leaf
  std::function<void(Message*, const FieldDescriptor*)> set;  // sets the leaf on its parent
};

// The message the leaf sits in: each field on the way is created (a repeated field's first
// element, added when there is none).
Message* ParentOf(Message* message, const std::vector<const FieldDescriptor*>& path) {
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    const Reflection* reflection = message->GetReflection();
    const FieldDescriptor* field = path[i];
    if (field->is_repeated()) {
      message = reflection->FieldSize(*message, field) == 0 ? reflection->AddMessage(message, field)
                                                            : reflection->MutableRepeatedMessage(message, field, 0);
    } else {
      message = reflection->MutableMessage(message, field);
    }
  }
  return message;
}

std::vector<std::pair<std::string, std::function<void(Message*, const FieldDescriptor*)>>> EdgeValues(
    const FieldDescriptor* field) {
  using Set = std::function<void(Message*, const FieldDescriptor*)>;
  std::vector<std::pair<std::string, Set>> values;
  const auto scalar = [&](const std::string& label, auto put_single, auto put_repeated, auto add) {
    values.emplace_back(label, [=](Message* m, const FieldDescriptor* f) {
      const Reflection* r = m->GetReflection();
      if (!f->is_repeated()) {
        put_single(r, m, f);
      } else if (r->FieldSize(*m, f) == 0) {
        add(r, m, f);
      } else {
        put_repeated(r, m, f);
      }
    });
  };
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      for (const auto& [label, text] : std::vector<std::pair<std::string, std::string>>{
               {"a control character", "checked\x01" "at the visit"},
               {"an escape sequence", "\x1b[2J\x1b[31mchecked at the visit"},
               {"a right-to-left override", "\xe2\x80\xae" "checked at the visit"},
               {"paired isolates", "\xe2\x81\xa7" "\xd7\x9b\xd7\x90\xd7\x91" "\xe2\x81\xa9" " checked at the visit"},
               {"blank text", "            "},
               {"empty text", ""},
               {"a line break", "line one\r\nline two"},
               {"an emoji", "\xf0\x9f\x98\x80"}}) {
        scalar(
            label, [t = text](const Reflection* r, Message* m, const FieldDescriptor* f) { r->SetString(m, f, t); },
            [t = text](const Reflection* r, Message* m, const FieldDescriptor* f) { r->SetRepeatedString(m, f, 0, t); },
            [t = text](const Reflection* r, Message* m, const FieldDescriptor* f) { r->AddString(m, f, t); });
      }
      break;
    case FieldDescriptor::CPPTYPE_INT32:
      for (const int32_t v : {std::numeric_limits<int32_t>::min(), -1, std::numeric_limits<int32_t>::max()}) {
        scalar(
            std::to_string(v), [v](const Reflection* r, Message* m, const FieldDescriptor* f) { r->SetInt32(m, f, v); },
            [v](const Reflection* r, Message* m, const FieldDescriptor* f) { r->SetRepeatedInt32(m, f, 0, v); },
            [v](const Reflection* r, Message* m, const FieldDescriptor* f) { r->AddInt32(m, f, v); });
      }
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      for (const int64_t v : {std::numeric_limits<int64_t>::min(), int64_t{-1}, std::numeric_limits<int64_t>::max()}) {
        scalar(
            std::to_string(v), [v](const Reflection* r, Message* m, const FieldDescriptor* f) { r->SetInt64(m, f, v); },
            [v](const Reflection* r, Message* m, const FieldDescriptor* f) { r->SetRepeatedInt64(m, f, 0, v); },
            [v](const Reflection* r, Message* m, const FieldDescriptor* f) { r->AddInt64(m, f, v); });
      }
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
      values.emplace_back("the largest unsigned", [](Message* m, const FieldDescriptor* f) {
        const Reflection* r = m->GetReflection();
        if (f->is_repeated()) return;
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_UINT32) r->SetUInt32(m, f, std::numeric_limits<uint32_t>::max());
        else r->SetUInt64(m, f, std::numeric_limits<uint64_t>::max());
      });
      break;
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT:
      for (const auto& [label, v] : std::vector<std::pair<std::string, double>>{
               {"NaN", std::nan("")}, {"infinity", HUGE_VAL}, {"minus infinity", -HUGE_VAL}, {"-0", -0.0}, {"1e300", 1e300}}) {
        values.emplace_back(label, [v = v](Message* m, const FieldDescriptor* f) {
          const Reflection* r = m->GetReflection();
          const bool is_double = f->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE;
          if (!f->is_repeated()) {
            if (is_double) r->SetDouble(m, f, v); else r->SetFloat(m, f, static_cast<float>(v));
          } else if (is_double) {
            r->AddDouble(m, f, v);
          } else {
            r->AddFloat(m, f, static_cast<float>(v));
          }
        });
      }
      break;
    case FieldDescriptor::CPPTYPE_BOOL:
      scalar(
          "flipped", [](const Reflection* r, Message* m, const FieldDescriptor* f) { r->SetBool(m, f, !r->GetBool(*m, f)); },
          [](const Reflection* r, Message* m, const FieldDescriptor* f) { r->SetRepeatedBool(m, f, 0, true); },
          [](const Reflection* r, Message* m, const FieldDescriptor* f) { r->AddBool(m, f, true); });
      break;
    case FieldDescriptor::CPPTYPE_ENUM:
      for (const int v : {12345, -7}) {
        scalar(
            "undeclared enum value " + std::to_string(v),
            [v](const Reflection* r, Message* m, const FieldDescriptor* f) { r->SetEnumValue(m, f, v); },
            [v](const Reflection* r, Message* m, const FieldDescriptor* f) { r->SetRepeatedEnumValue(m, f, 0, v); },
            [v](const Reflection* r, Message* m, const FieldDescriptor* f) { r->AddEnumValue(m, f, v); });
      }
      break;
    case FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
  return values;
}

// Timestamps (and durations) are one leaf each: their two fields at and beyond their ranges.
std::vector<std::pair<std::string, std::pair<int64_t, int32_t>>> TimeEdges() {
  return {{"0001-01-01T00:00:00Z", {-62135596800, 0}},
          {"before 0001-01-01", {-62135596801, 0}},
          {"9999-12-31T23:59:59Z", {253402300799, 0}},
          {"after 9999", {253402300800, 0}},
          {"the smallest int64 seconds", {std::numeric_limits<int64_t>::min(), 0}},
          {"negative nanos", {1'700'000'000, -1}},
          {"a billion nanos", {1'700'000'000, 1'000'000'000}}};
}

bool IsTimeLike(const Descriptor* message) {
  return message->full_name() == "google.protobuf.Timestamp" || message->full_name() == "google.protobuf.Duration";
}

void CollectMutations(const Descriptor* message, std::vector<const FieldDescriptor*>& path,
                      std::set<const Descriptor*>& on_path, std::vector<Mutation>& out) {
  for (int i = 0; i < message->field_count(); ++i) {
    const FieldDescriptor* field = message->field(i);
    path.push_back(field);
    std::string label;
    for (const auto* step : path) label += (label.empty() ? "" : ".") + step->name();
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && IsTimeLike(field->message_type())) {
      for (const auto& [name, value] : TimeEdges()) {
        out.push_back({label + " = " + name, label, name, path, [value = value](Message* m, const FieldDescriptor* f) {
                         const Reflection* r = m->GetReflection();
                         Message* time = f->is_repeated() ? r->AddMessage(m, f) : r->MutableMessage(m, f);
                         const Descriptor* d = time->GetDescriptor();
                         time->GetReflection()->SetInt64(time, d->FindFieldByName("seconds"), value.first);
                         time->GetReflection()->SetInt32(time, d->FindFieldByName("nanos"), value.second);
                       }});
      }
    } else if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (!on_path.contains(field->message_type()) && path.size() < 5) {
        on_path.insert(field->message_type());
        CollectMutations(field->message_type(), path, on_path, out);
        on_path.erase(field->message_type());
      }
    } else {
      for (auto& [name, set] : EdgeValues(field)) out.push_back({label + " = " + name, label, name, path, std::move(set)});
    }
    path.pop_back();
  }
}

std::vector<Mutation> MutationsOf(const Descriptor* request) {
  std::vector<Mutation> out;
  std::vector<const FieldDescriptor*> path;
  std::set<const Descriptor*> on_path{request};
  CollectMutations(request, path, on_path, out);
  return out;
}

// Answers a caller cannot act on: a defect, whatever the input.
bool IsDefect(grpc::StatusCode code) {
  return code == grpc::StatusCode::INTERNAL || code == grpc::StatusCode::UNKNOWN ||
         code == grpc::StatusCode::DATA_LOSS || code == grpc::StatusCode::UNIMPLEMENTED ||
         code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED;
}

class InputSweep : public ClinicalFixture {
 protected:
  // One RPC and how to make a valid request for it now.
  struct Base {
    std::string service;  // e.g. "physio.progress.v1.ProgressService"
    std::string method;
    std::string token;
    std::function<std::unique_ptr<Message>()> make;
    // When set, the token for the request just made (a patient's own, for requests about them).
    std::function<std::string()> token_of = {};
    // Each change is sent a second time as Connect/JSON (a browser's way), to be answered alike.
    bool json_too = false;
  };

  std::shared_ptr<grpc::Channel> ChannelOf(const std::string& service) const {
    if (service.find("assessment") != std::string::npos) return assessment_channel_;
    if (service.find("planning") != std::string::npos) return planning_channel_;
    return progress_channel_;
  }

  grpc::Status Send(const Base& base, const Message& request) const {
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + (base.token_of ? base.token_of() : base.token));
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return CallWithBytes(ChannelOf(base.service), context, "/" + base.service + "/" + base.method,
                         request.SerializeAsString());
  }

  int HttpPortOf(const std::string& service) const {
    if (service.find("assessment") != std::string::npos) return cluster_->assessment_http_port();
    if (service.find("planning") != std::string::npos) return cluster_->planning_http_port();
    return cluster_->progress_http_port();
  }

  // The same request over the Connect/JSON port: the gRPC code its answer maps to, or nullopt when
  // the request has no JSON form (protobuf prints no timestamp outside its definition).
  std::optional<grpc::StatusCode> SendJson(const Base& base, const Message& request) const {
    std::string body;
    if (!google::protobuf::util::MessageToJsonString(request, &body).ok()) return std::nullopt;
    httplib::Client client("127.0.0.1", HttpPortOf(base.service));
    const httplib::Headers headers = {
        {"Authorization", "Bearer " + (base.token_of ? base.token_of() : base.token)}, {"Connect-Protocol-Version", "1"}};
    const auto answer = client.Post(("/" + base.service + "/" + base.method).c_str(), headers, body, "application/json");
    if (!answer) return grpc::StatusCode::UNAVAILABLE;
    if (answer->status == 200) return grpc::StatusCode::OK;
    const auto error = nlohmann::json::parse(answer->body, nullptr, false);
    const std::string name = error.is_object() ? error.value("code", "") : "";
    for (int code = 0; code <= 16; ++code) {
      if (name == StatusRowOf(static_cast<grpc::StatusCode>(code)).connect_name) return static_cast<grpc::StatusCode>(code);
    }
    ADD_FAILURE() << base.method << ": not a Connect error: " << answer->status << " " << answer->body;
    return grpc::StatusCode::UNKNOWN;
  }

  // What every table of the three services holds for this test's tenant, as one line per table:
  // its row count and the newest transaction that wrote one of its rows (`xmin`), so a row inserted,
  // updated or deleted changes the line (events by their ids, which their numbering after commit
  // leaves alone). What only background work changes
  // is left out: the audit trail (a refusal of patient data is itself audited), webhook deliveries
  // and their cursors, bulk export runs, the events' numbers (given after commit), and the outcome
  // report's figures with the queue of patients they are computed for.
  std::map<std::string, std::string> StoredState(const std::string& session_id) {
    if (!state_connection_) {
      state_connection_.reset(PQconnectdb((postgres_->Conninfo("physio") + " connect_timeout=5").c_str()));
      const std::string tables = postgres_->Execute(
          "SELECT string_agg(quote_ident(table_schema) || '.' || quote_ident(table_name), ',' ORDER BY 1) "
          "FROM information_schema.columns WHERE column_name = 'tenant_id' "
          "AND table_schema IN ('assessment', 'planning', 'progress') "
          "AND table_name NOT IN ('audit_events', 'webhook_deliveries', 'webhook_attempts', 'webhook_cursors', "
          "'bulk_export_runs', 'bulk_export_files', 'bulk_export_jobs', 'event_sequences', 'episode_progress', "
          "'episode_changes')",
          "physio");
      std::string sql;
      std::size_t start = 0;
      while (start < tables.size()) {
        const std::size_t end = std::min(tables.find(',', start), tables.size());
        const std::string table = tables.substr(start, end - start);
        if (!sql.empty()) sql += " UNION ALL ";
        const bool events = table.ends_with(".events");
        sql += "SELECT '" + table + "', count(*) || ' rows, newest ' || coalesce(max(" +
               (events ? std::string("event_id") : std::string("xmin::text::bigint")) + "), 0) FROM " + table +
               " WHERE tenant_id = $1";
        start = end + 1;
      }
      // Prepared once: planning a union of twenty scans costs more than running it.
      PGresult* prepared = PQprepare(state_connection_.get(), "state", sql.c_str(), 1, nullptr);
      EXPECT_EQ(PQresultStatus(prepared), PGRES_COMMAND_OK) << PQerrorMessage(state_connection_.get());
      PQclear(prepared);
    }
    std::map<std::string, std::string> state;
    const char* tenant = tenant_.c_str();
    PGresult* result = PQexecPrepared(state_connection_.get(), "state", 1, &tenant, nullptr, nullptr, 0);
    if (PQresultStatus(result) == PGRES_TUPLES_OK) {
      for (int row = 0; row < PQntuples(result); ++row) state[PQgetvalue(result, row, 0)] = PQgetvalue(result, row, 1);
    } else {
      ADD_FAILURE() << "reading the stored state: " << PQerrorMessage(state_connection_.get());
    }
    PQclear(result);
    // And the tenant's sessions in Redis (intakes and visits under way): how many there are, and a
    // hash of the value of the one the request names (a request can only change the session it
    // names; a new or a deleted one shows in the count).
    static constexpr const char* kRedisState = R"LUA(
      local lines = {}
      for _, prefix in ipairs({'asmt:{t:' .. ARGV[1] .. '}:intake:', 'prog:{t:' .. ARGV[1] .. '}:visit:'}) do
        lines[#lines + 1] = prefix .. '* ' .. #redis.call('KEYS', prefix .. '*')
        local key = prefix .. ARGV[2]
        if ARGV[2] ~= '' and redis.call('EXISTS', key) == 1 then
          lines[#lines + 1] = key .. ' ' .. redis.sha1hex(redis.call('DUMP', key))
        end
      end
      return table.concat(lines, '\n')
    )LUA";
    const std::string keys = RedisCommandAt(redis_->port(), {"EVAL", kRedisState, "0", tenant_, session_id});
    EXPECT_FALSE(keys.starts_with("ERR")) << keys;
    std::size_t start = 0;
    while (start < keys.size()) {
      const std::size_t end = std::min(keys.find('\n', start), keys.size());
      const std::string line = keys.substr(start, end - start);
      const std::size_t space = line.rfind(' ');
      state["redis " + line.substr(0, space)] = line.substr(space + 1);
      start = end + 1;
    }
    return state;
  }

  // Sends every mutation of `base`'s request; returns how many answers of each code came back.
  std::map<grpc::StatusCode, int> Sweep(const Base& base) {
    std::map<grpc::StatusCode, int> codes;
    std::map<std::string, std::map<std::string, bool>> refused_text;  // field -> edge value -> refused
    const auto prototype = base.make();
    // The request before any change is valid: else every change would meet the same refusal.
    const grpc::Status valid = Send(base, *prototype);
    EXPECT_TRUE(valid.ok()) << base.method << ": " << valid.error_message();
    for (const auto& mutation : MutationsOf(prototype->GetDescriptor())) {
      auto request = base.make();
      const auto* session_field = request->GetDescriptor()->FindFieldByName("session_id");
      const std::string session_id =
          session_field != nullptr && session_field->type() == FieldDescriptor::TYPE_STRING
              ? request->GetReflection()->GetString(*request, session_field)
              : "";
      mutation.set(ParentOf(request.get(), mutation.path), mutation.path.back());
      // A refused request changes nothing stored: not one row, not the session it names. Checked in
      // the plain build; under the sanitizers (memory errors) the store reads would only cost time.
      std::map<std::string, std::string> before;
      if (!kUnderAddressSanitizer) before = StoredState(session_id);
      const grpc::Status status = Send(base, *request);
      ++codes[status.error_code()];
      if (!status.ok() && !kUnderAddressSanitizer) {
        const auto after = StoredState(session_id);
        for (const auto& [table, held] : after) {
          EXPECT_EQ(before.contains(table) ? before.at(table) : "", held)
              << base.method << " with " << mutation.label << " was refused (" << status.error_code() << " "
              << status.error_message() << ") but changed " << table;
        }
        for (const auto& [table, held] : before) {
          EXPECT_TRUE(after.contains(table)) << base.method << " with " << mutation.label << " was refused ("
                                             << status.error_code() << ") but removed " << table;
        }
      }
      if (std::getenv("PHYSIO_SWEEP_VERBOSE") != nullptr) {
        std::printf("[sweep] %s %s -> %d %s\n", base.method.c_str(), mutation.label.c_str(), status.error_code(),
                    status.error_message().substr(0, 160).c_str());
      }
      EXPECT_FALSE(IsDefect(status.error_code()))
          << base.method << " with " << mutation.label << ": " << status.error_code() << " " << status.error_message();
      if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
        EXPECT_FALSE(status.error_message().empty()) << base.method << " with " << mutation.label;
      }
      // A control character is refused wherever it is, naming the field it is in; so is a
      // bidirectional override left open. Paired bidirectional controls are text.
      if (mutation.value == "a control character" || mutation.value == "an escape sequence" ||
          mutation.value == "a right-to-left override") {
        EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << base.method << " with " << mutation.label;
        EXPECT_NE(status.error_message().find(mutation.path.back()->name()), std::string::npos)
            << base.method << " with " << mutation.label << ": " << status.error_message();
      }
      if (mutation.value == "paired isolates") {
        EXPECT_EQ(status.error_message().find("bidirectional"), std::string::npos)
            << base.method << " with " << mutation.label << ": " << status.error_message();
      }
      // So is a timestamp outside its definition, whatever the field.
      if (mutation.value == "before 0001-01-01" || mutation.value == "after 9999" ||
          mutation.value == "the smallest int64 seconds" || mutation.value == "negative nanos" ||
          mutation.value == "a billion nanos") {
        EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << base.method << " with " << mutation.label;
        EXPECT_NE(status.error_message().find(mutation.path.back()->name()), std::string::npos)
            << base.method << " with " << mutation.label << ": " << status.error_message();
      }
      if (mutation.value == "empty text" || mutation.value == "blank text") {
        refused_text[mutation.field][mutation.value] = !status.ok();
      }
      if (base.json_too) {
        auto again = base.make();
        mutation.set(ParentOf(again.get(), mutation.path), mutation.path.back());
        const auto json_code = SendJson(base, *again);
        if (json_code) {
          EXPECT_EQ(*json_code, status.error_code()) << base.method << " over Connect/JSON with " << mutation.label;
          ++json_calls_;
        }
      }
    }
    // Where a text is required, white space alone does not pass for it.
    for (const auto& [field, refused] : refused_text) {
      if (refused.contains("empty text") && refused.at("empty text")) {
        EXPECT_TRUE(refused.contains("blank text") && refused.at("blank text"))
            << base.method << ": " << field << " is refused empty but taken blank";
      }
    }
    return codes;
  }

  // One request of a JSON-document sweep (`what` names the change, `edge` its value), counted in
  // `codes`: never a defect, no control character in its message, a control character refused,
  // and a refusal leaving every stored row as it was. Defined below, after HasControlCharacter.
  grpc::Status SendChecked(const Base& base, const Message& request, const std::string& what, const std::string& edge,
                           std::map<grpc::StatusCode, int>& codes);

  // The FHIR REST searches read back reach all three services; webhooks go to a local receiver.
  static void SetUpTestSuite() {
    StartStoresAndCluster([](const std::string& service, Config& config) {
      RouteFhirToPeers(service, config);
      // No questionnaire notices given in the background: a refused request is checked to change
      // no row, and a notice given at that moment would look like its doing.
      if (service == "progress") config.Set("outcome-task-scan-interval-s", "0");
      if (service == "assessment") {
        config.Set("bulk-export-max-jobs", "100");
        config.Set("webhook-allow-http", "true");
        config.Set("webhook-allowed-networks", "127.0.0.0/8");
      }
    });
  }

  void SetUp() override {
    ClinicalFixture::SetUp();
    staff_token_ = MakeToken(*keys_, tenant_, "staff-1", {"clinician", "integrator", "auditor", "analyst"});
    assessment_channel_ = grpc::CreateChannel(cluster_->assessment_addr(), grpc::InsecureChannelCredentials());
    planning_channel_ = grpc::CreateChannel(cluster_->planning_addr(), grpc::InsecureChannelCredentials());
    progress_channel_ = grpc::CreateChannel(cluster_->progress_addr(), grpc::InsecureChannelCredentials());
  }

  // Every record of `patient` reads back whatever its text holds: over gRPC, as Connect/JSON and
  // as FHIR (REST search and the export RPCs).
  void ReadBack(const std::string& patient) const {
    const Caller staff = Staff();
    apb::ListAssessmentsRequest list;
    list.set_patient_id(patient);
    list.set_page_size(100);
    int assessments = 0;
    for (;;) {
      apb::ListAssessmentsResponse page;
      const auto status = staff.Call(staff.assessment.get(), &apb::AssessmentService::Stub::ListAssessments, list, &page);
      ASSERT_TRUE(status.ok()) << status.error_message();
      for (const auto& listed : page.assessments()) {
        ++assessments;
        apb::ExportAssessmentFhirRequest fhir;
        fhir.set_assessment_id(listed.assessment_id());
        apb::ExportAssessmentFhirResponse exported;
        const auto exported_status =
            staff.Call(staff.assessment.get(), &apb::AssessmentService::Stub::ExportAssessmentFhir, fhir, &exported);
        EXPECT_TRUE(exported_status.ok()) << listed.assessment_id() << ": " << exported_status.error_message();
      }
      if (page.next_page_token().empty()) break;
      list.set_page_token(page.next_page_token());
    }
    ppb::GetActivePlanRequest get_plan;
    get_plan.set_patient_id(patient);
    get_plan.set_include_suspended(true);
    ppb::GetActivePlanResponse got_plan;
    const auto plan_status = staff.Call(staff.planning.get(), &ppb::PlanningService::Stub::GetActivePlan, get_plan, &got_plan);
    EXPECT_TRUE(plan_status.ok() || plan_status.error_code() == grpc::StatusCode::NOT_FOUND) << plan_status.error_message();
    const ppb::Plan& plan = got_plan.plan();
    if (!plan.plan_id().empty()) {
      ppb::ListPlanRevisionsRequest revisions;
      revisions.set_plan_id(plan.plan_id());
      ppb::ListPlanRevisionsResponse listed;
      auto status = staff.Call(staff.planning.get(), &ppb::PlanningService::Stub::ListPlanRevisions, revisions, &listed);
      EXPECT_TRUE(status.ok()) << status.error_message();
      ppb::ExportPlanFhirRequest fhir;
      fhir.set_plan_id(plan.plan_id());
      ppb::ExportPlanFhirResponse exported;
      status = staff.Call(staff.planning.get(), &ppb::PlanningService::Stub::ExportPlanFhir, fhir, &exported);
      EXPECT_TRUE(status.ok()) << status.error_message();
    }
    gpb::GetProgressSummaryRequest summary;
    summary.set_patient_id(patient);
    gpb::GetProgressSummaryResponse summarised;
    auto status = staff.Call(staff.progress.get(), &gpb::ProgressService::Stub::GetProgressSummary, summary, &summarised);
    EXPECT_TRUE(status.ok() || status.error_code() == grpc::StatusCode::NOT_FOUND) << status.error_message();
    gpb::ExportProgressFhirRequest progress_fhir;
    progress_fhir.set_patient_id(patient);
    gpb::ExportProgressFhirResponse progress_exported;
    status = staff.Call(staff.progress.get(), &gpb::ProgressService::Stub::ExportProgressFhir, progress_fhir,
                        &progress_exported);
    EXPECT_TRUE(status.ok()) << status.error_message();
    apb::ListAuditEventsRequest audit;
    audit.mutable_query()->set_patient_id(patient);
    audit.set_page_size(100);
    apb::ListAuditEventsResponse audited;
    status = staff.Call(staff.assessment.get(), &apb::AssessmentService::Stub::ListAuditEvents, audit, &audited);
    EXPECT_TRUE(status.ok()) << status.error_message();

    // The same records as Connect/JSON and through the FHIR REST API.
    const httplib::Headers connect = {{"Authorization", "Bearer " + staff_token_}, {"Connect-Protocol-Version", "1"}};
    for (const auto& [port, path, json_body] : std::vector<std::tuple<int, std::string, std::string>>{
             {cluster_->assessment_http_port(), "/physio.assessment.v1.AssessmentService/ListAssessments",
              "{\"patientId\":\"" + patient + "\",\"pageSize\":100}"},
             {cluster_->planning_http_port(), "/physio.planning.v1.PlanningService/GetActivePlan",
              "{\"patientId\":\"" + patient + "\",\"includeSuspended\":true}"},
             {cluster_->progress_http_port(), "/physio.progress.v1.ProgressService/GetProgressSummary",
              "{\"patientId\":\"" + patient + "\"}"}}) {
      httplib::Client client("127.0.0.1", port);
      const auto answer = client.Post(path.c_str(), connect, json_body, "application/json");
      ASSERT_TRUE(answer) << path;
      EXPECT_TRUE(answer->status == 200 || (answer->status == 404 && plan.plan_id().empty()))
          << path << ": " << answer->status << " " << answer->body;
    }
    httplib::Client fhir_client("127.0.0.1", cluster_->assessment_http_port());
    const httplib::Headers bearer = {{"Authorization", "Bearer " + staff_token_}};
    for (const std::string type : {"Observation", "QuestionnaireResponse", "CarePlan", "Flag", "Encounter", "Consent"}) {
      // A 504 says "retry" (its deadline passed); a client retries it, so does this one, twice. Under
      // the sanitizers, on a slow hour, mapping ~300 assessments took longer than the one store budget
      // all of a search's reads shared, and all three tries failed; each read now has its own
      // (AFhirSearchGivesEachPageItsOwnStoreBudget).
      const std::string search = "/fhir/R4/" + type + "?patient=" + patient + "&_count=100";
      auto answer = fhir_client.Get(search.c_str(), bearer);
      for (int retry = 0; retry < 2 && answer && answer->status == 504; ++retry) answer = fhir_client.Get(search.c_str(), bearer);
      ASSERT_TRUE(answer) << type;
      EXPECT_EQ(answer->status, 200) << type << ": " << answer->body.substr(0, 400);
    }
    std::printf("[sweep] read back %d assessments of %s\n", assessments, patient.c_str());
  }

  std::string PatientToken(const std::string& patient) const {
    return MakeToken(*keys_, tenant_, "user-" + patient, {"patient"}, patient);
  }
  Caller Staff() const { return Caller(*cluster_, staff_token_); }

  struct PgFinish {
    void operator()(PGconn* connection) const { PQfinish(connection); }
  };
  std::unique_ptr<PGconn, PgFinish> state_connection_;
  std::string staff_token_;
  int json_calls_ = 0;
  std::shared_ptr<grpc::Channel> assessment_channel_, planning_channel_, progress_channel_;
};


template <typename T>
std::function<std::unique_ptr<Message>()> Make(std::function<T()> make) {
  return [make = std::move(make)]() -> std::unique_ptr<Message> { return std::make_unique<T>(make()); };
}

std::string Rid() { return NewId("rq"); }

constexpr const char* kAssessment = "physio.assessment.v1.AssessmentService";
constexpr const char* kPlanning = "physio.planning.v1.PlanningService";
constexpr const char* kProgress = "physio.progress.v1.ProgressService";
// A receiver nobody runs, on an address the suite allows (deliveries fail at once, retried later).
constexpr const char* kHookUrl = "http://127.0.0.1:9/physio-events";
// A tenant library of one exercise and one template (as in library_test.cc).
constexpr const char* kTenantLibrary = R"({"entries": [{"id": "tenant.ex.hip_hinge_band", "kind": "exercise",
  "category": "functional", "title": "Banded hip hinge", "instructions": "Hinge at the hips against the band.",
  "reason": "Our clinics' lifting programme", "source": "Clinic protocol 2026",
  "dose": {"sets": 2, "reps": 10, "hold_seconds": 0, "sessions_per_week": 3, "duration_minutes": 0},
  "phases": ["movement_control", "function_optimisation"], "contraindications": ["loading_contraindicated"]}],
  "templates": [{"id": "tenant.tpl.lifting", "name": "Return to lifting", "items": [
    {"intervention_id": "tenant.ex.hip_hinge_band"}, {"intervention_id": "ex.motor.bird_dog"}]}]})";

// Prints what each RPC answered (for the closing note and for reading a failure).
void Report(const std::string& method, const std::map<grpc::StatusCode, int>& codes) {
  std::string line = method + ":";
  int total = 0;
  for (const auto& [code, count] : codes) {
    line += " " + std::to_string(code) + "x" + std::to_string(count);
    total += count;
  }
  std::printf("[sweep] %s (%d calls)\n", line.c_str(), total);
}

TEST_F(InputSweep, AssessmentWritesAnswerEveryEdgeValueCleanlyAndReadBack) {
  const std::string patient = patient_id_;
  const Caller staff = Staff();
  const auto start_intake = [&] {
    apb::StartIntakeRequest start;
    start.set_request_id(Rid());
    start.set_patient_id(patient);
    start.add_instruments(cpb::INSTRUMENT_NPRS);
    start.add_instruments(cpb::INSTRUMENT_ODI);
    apb::StartIntakeResponse started;
    EXPECT_TRUE(staff.Call(staff.assessment.get(), &apb::AssessmentService::Stub::StartIntake, start, &started).ok());
    return started.session().session_id();
  };
  const auto full_create = [&] {
    apb::CreateAssessmentRequest create = Import();
    create.mutable_red_flag_screen();
    create.mutable_history()->set_age_years(44);
    create.mutable_history()->set_episode_duration_days(12);
    create.mutable_examination()->set_straight_leg_raise_deg(70);
    create.mutable_examination()->add_observations("guarded_flexion");
    return create;
  };
  const auto assessment = [&] { return Create(full_create()); };
  const std::vector<Base> bases = {
      {kAssessment, "StartIntake", staff_token_, Make<apb::StartIntakeRequest>([&] {
         apb::StartIntakeRequest r;
         r.set_request_id(Rid());
         r.set_patient_id(patient);
         r.add_instruments(cpb::INSTRUMENT_NPRS);
         return r;
       })},
      {kAssessment, "SubmitIntakeAnswers", staff_token_, Make<apb::SubmitIntakeAnswersRequest>([&] {
         apb::SubmitIntakeAnswersRequest r;
         r.set_request_id(Rid());
         r.set_session_id(start_intake());
         *r.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 5);
         r.mutable_history()->set_age_years(40);
         r.mutable_examination()->set_lumbar_hypomobility(true);
         r.mutable_red_flag_screen();
         return r;
       })},
      {kAssessment, "CompleteIntake", staff_token_, Make<apb::CompleteIntakeRequest>([&] {
         apb::SubmitIntakeAnswersRequest submit;
         submit.set_request_id(Rid());
         submit.set_session_id(start_intake());
         *submit.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 5);
         for (int i = 1; i <= 10; ++i) *submit.add_answers() = Answer(cpb::INSTRUMENT_ODI, "odi." + std::to_string(i), 2);
         submit.mutable_red_flag_screen();
         apb::SubmitIntakeAnswersResponse submitted;
         EXPECT_TRUE(staff.Call(staff.assessment.get(), &apb::AssessmentService::Stub::SubmitIntakeAnswers, submit,
                                &submitted).ok());
         apb::CompleteIntakeRequest r;
         r.set_request_id(Rid());
         r.set_session_id(submit.session_id());
         return r;
       })},
      {kAssessment, "CreateAssessment", staff_token_, Make<apb::CreateAssessmentRequest>(full_create)},
      {kAssessment, "RecordRedFlagJudgement", staff_token_, Make<apb::RecordRedFlagJudgementRequest>([&] {
         auto create = full_create();
         create.mutable_red_flag_screen()->set_night_pain(true);
         const auto flagged = Create(create);
         apb::RecordRedFlagJudgementRequest r;
         r.set_request_id(Rid());
         r.set_assessment_id(flagged.assessment_id());
         r.set_etag(flagged.etag());
         r.set_action(apb::RED_FLAG_ACTION_MONITOR);
         r.set_rationale("night pain eases with position; reviewed");
         return r;
       })},
      {kAssessment, "ReassessPatient", staff_token_, Make<apb::ReassessPatientRequest>([&] {
         apb::ReassessPatientRequest r;
         r.set_request_id(Rid());
         r.set_previous_assessment_id(assessment().assessment_id());
         r.set_reason("four-week review");
         r.mutable_examination()->set_directional_preference(apb::DIRECTIONAL_PREFERENCE_NONE);
         *r.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 4);
         r.mutable_red_flag_screen();
         return r;
       })},
      {kAssessment, "ScoreInstrument", staff_token_, Make<apb::ScoreInstrumentRequest>([&] {
         apb::ScoreInstrumentRequest r;
         r.set_instrument(cpb::INSTRUMENT_PSFS);
         for (const auto& [item_id, activity] : std::vector<std::pair<std::string, std::string>>{
                  {"psfs.1", "walking the dog"}, {"psfs.2", "sitting through a film"}, {"psfs.3", "cycling"}}) {
           auto* item = r.add_answers();
           *item = Answer(cpb::INSTRUMENT_PSFS, item_id, 4);
           item->set_text(activity);
         }
         return r;
       })},
      {kAssessment, "RecordConsent", staff_token_, Make<apb::RecordConsentRequest>([&] {
         apb::RecordConsentRequest r;
         r.set_request_id(Rid());
         r.set_patient_id(patient);
         r.set_kind(apb::CONSENT_KIND_DATA_SHARING);
         r.set_decision(apb::CONSENT_DECISION_GRANTED);
         r.set_platform("telehealth-app");
         r.set_note("signed in app");
         return r;
       })},
      {kAssessment, "EnrolPatient", staff_token_, Make<apb::EnrolPatientRequest>([&] {
         apb::EnrolPatientRequest r;
         r.set_request_id(Rid());
         r.set_patient_id(patient);
         r.set_clinic_id("south");
         r.set_reason("referred");
         return r;
       })},
      {kAssessment, "TransferPatient", staff_token_, Make<apb::TransferPatientRequest>([&] {
         const std::string moving = "pt-" + NewId("x").substr(2, 10);
         apb::EnrolPatientRequest enrol;
         enrol.set_request_id(Rid());
         enrol.set_patient_id(moving);
         enrol.set_clinic_id("south");
         apb::EnrolPatientResponse enrolled;
         EXPECT_TRUE(staff.Call(staff.assessment.get(), &apb::AssessmentService::Stub::EnrolPatient, enrol, &enrolled).ok());
         apb::TransferPatientRequest r;
         r.set_request_id(Rid());
         r.set_patient_id(moving);
         r.set_from_clinic_id("south");
         r.set_to_clinic_id("west");
         r.set_reason("moved");
         return r;
       })},
      {kAssessment, "ImportFhirQuestionnaireResponse", staff_token_, Make<apb::ImportFhirQuestionnaireResponseRequest>([&] {
         apb::ImportFhirQuestionnaireResponseRequest r;
         r.set_request_id(Rid());
         r.set_patient_id(patient);
         r.set_resource_json(R"({"resourceType":"QuestionnaireResponse","status":"completed",)"
                             R"("questionnaire":"https://physio-backend.org/fhir/Questionnaire/nprs","subject":{"reference":"Patient/)" +
                             patient + R"("},"item":[{"linkId":"nprs","answer":[{"valueInteger":4}]}]})");
         r.mutable_red_flag_screen();
         return r;
       })},
  };
  for (auto base : bases) {
    // What a patient's intake app sends, through a browser too.
    base.json_too = base.method == "SubmitIntakeAnswers";
    Report(base.method, Sweep(base));
  }
  std::printf("[sweep] %d of the changes sent over Connect/JSON too\n", json_calls_);
  ReadBack(patient);
}

TEST_F(InputSweep, PlanningWritesAnswerEveryEdgeValueCleanlyAndReadBack) {
  const Caller staff = Staff();
  std::vector<std::string> patients;
  // A patient of their own for each request: a write that succeeds (an approval, a completion)
  // leaves the next request its valid starting point.
  const auto fresh_plan = [&] {
    patients.push_back("pt-" + NewId("x").substr(2, 10));
    return ApprovedPlanFor(staff, patients.back());
  };
  const auto draft = [&] {
    patients.push_back("pt-" + NewId("x").substr(2, 10));
    apb::CreateAssessmentRequest create = Import();
    create.set_patient_id(patients.back());
    create.mutable_red_flag_screen();
    ppb::Plan plan;
    EXPECT_TRUE(Generate(Create(create).assessment_id(), &plan).ok());
    return plan;
  };
  const auto exercise_of = [](const ppb::Plan& plan) {
    for (const auto& item : plan.items()) {
      if (item.kind() == ppb::PLAN_ITEM_KIND_EXERCISE) return item.item_id();
    }
    return std::string();
  };
  const std::vector<Base> bases = {
      {kPlanning, "GeneratePlan", staff_token_, Make<ppb::GeneratePlanRequest>([&] {
         patients.push_back("pt-" + NewId("x").substr(2, 10));
         apb::CreateAssessmentRequest create = Import();
         create.set_patient_id(patients.back());
         create.mutable_red_flag_screen();
         ppb::GeneratePlanRequest r;
         r.set_request_id(Rid());
         r.set_assessment_id(Create(create).assessment_id());
         return r;
       })},
      {kPlanning, "ApprovePlan", staff_token_, Make<ppb::ApprovePlanRequest>([&] {
         const auto plan = draft();
         ppb::ApprovePlanRequest r;
         r.set_request_id(Rid());
         r.set_plan_id(plan.plan_id());
         r.set_etag(plan.etag());
         r.mutable_effective_time()->set_seconds(std::time(nullptr) - 3600);
         return r;
       })},
      {kPlanning, "RevisePlan", staff_token_, Make<ppb::RevisePlanRequest>([&] {
         const auto plan = fresh_plan();
         ppb::RevisePlanRequest r;
         r.set_request_id(Rid());
         r.set_plan_id(plan.plan_id());
         r.set_etag(plan.etag());
         r.set_reason("tolerating the load well");
         auto* dose = r.add_changes()->mutable_set_dose();
         dose->set_item_id(exercise_of(plan));
         dose->mutable_dose()->set_sets(3);
         dose->mutable_dose()->set_reps(12);
         dose->mutable_dose()->set_sessions_per_week(4);
         return r;
       })},
      {kPlanning, "AdjustPlan", staff_token_, Make<ppb::AdjustPlanRequest>([&] {
         const auto plan = fresh_plan();
         ppb::AdjustPlanRequest r;
         r.set_request_id(Rid());
         r.set_plan_id(plan.plan_id());
         r.set_etag(plan.etag());
         r.set_adjustment(ppb::ADJUSTMENT_REGRESS);
         r.add_item_ids(exercise_of(plan));
         r.set_reason("flare after the last session");
         return r;
       })},
      {kPlanning, "CompletePlan", staff_token_, Make<ppb::CompletePlanRequest>([&] {
         const auto plan = fresh_plan();
         ppb::CompletePlanRequest r;
         r.set_request_id(Rid());
         r.set_plan_id(plan.plan_id());
         r.set_etag(plan.etag());
         r.set_outcome(ppb::PLAN_STATUS_COMPLETED);
         r.set_discharge_reason(ppb::DISCHARGE_REASON_GOALS_MET);
         r.set_reason("goals met at six weeks");
         return r;
       })},
  };
  for (const auto& base : bases) Report(base.method, Sweep(base));
  // Every fifth patient's records read back (each one's are alike; all of them would take long).
  for (size_t i = 0; i < patients.size(); i += 5) ReadBack(patients[i]);
}

TEST_F(InputSweep, ProgressWritesAnswerEveryEdgeValueCleanlyAndReadBack) {
  const Caller staff = Staff();
  // One patient with a plan for the recordings, whose answers change no state a later request
  // needs; a patient of their own for each symptom report and home log, which a safety "yes"
  // suspends (the following request would only meet the suspension).
  const std::string patient = patient_id_;
  const ppb::Plan plan = ApprovedPlanFor(staff, patient, std::time(nullptr) - 86400);
  std::vector<std::string> patients = {patient};
  const auto patient_with_plan = [&] {
    patients.push_back("pt-" + NewId("x").substr(2, 10));
    return std::make_pair(patients.back(), ApprovedPlanFor(staff, patients.back(), std::time(nullptr) - 86400));
  };
  std::string exercise;
  for (const auto& item : plan.items()) {
    if (item.kind() == ppb::PLAN_ITEM_KIND_EXERCISE && exercise.empty()) exercise = item.item_id();
  }
  TokenRequest north{kIssuer, kAudience, tenant_, "clin-north", {"clinician"}, ""};
  north.clinics = {"north"};
  const std::string north_token = MintToken(keys_->private_key_pem, north);
  const auto south_patient = [&] {
    const std::string someone = "pt-" + NewId("x").substr(2, 10);
    apb::EnrolPatientRequest enrol;
    enrol.set_request_id(Rid());
    enrol.set_patient_id(someone);
    enrol.set_clinic_id("south");
    apb::EnrolPatientResponse enrolled;
    EXPECT_TRUE(staff.Call(staff.assessment.get(), &apb::AssessmentService::Stub::EnrolPatient, enrol, &enrolled).ok());
    return someone;
  };
  const auto start_session = [&] {
    gpb::StartVisitSessionRequest start;
    start.set_request_id(Rid());
    start.set_patient_id(patient);
    start.set_kind(gpb::VISIT_KIND_CLINIC);
    gpb::StartVisitSessionResponse started;
    EXPECT_TRUE(staff.Call(staff.progress.get(), &gpb::ProgressService::Stub::StartVisitSession, start, &started).ok());
    return started.session().session_id();
  };
  const std::vector<Base> bases = {
      {kProgress, "RecordVisit", staff_token_, Make<gpb::RecordVisitRequest>([&] {
         gpb::RecordVisitRequest r;
         r.set_request_id(Rid());
         r.set_patient_id(patient);
         r.set_kind(gpb::VISIT_KIND_CLINIC);
         r.set_pain_before(5);
         r.set_pain_after(4);
         r.add_delivered_item_ids(exercise);
         r.mutable_red_flag_screen();
         r.mutable_work()->set_status(apb::WORK_STATUS_MODIFIED_DUTIES);
         r.mutable_neurological();
         r.mutable_session();
         return r;
       })},
      {kProgress, "LogHomeExercise", "", Make<gpb::LogHomeExerciseRequest>([&] {
         const auto [someone, their_plan] = patient_with_plan();
         gpb::LogHomeExerciseRequest r;
         r.set_request_id(Rid());
         r.set_patient_id(someone);
         for (const auto& item : their_plan.items()) {
           if (item.kind() == ppb::PLAN_ITEM_KIND_EXERCISE && r.exercise_id().empty()) r.set_exercise_id(item.item_id());
         }
         r.set_sets_done(2);
         r.set_reps_done(10);
         r.set_pain_during(3);
         r.set_pain_after(2);
         r.set_difficulty(gpb::DIFFICULTY_ABOUT_RIGHT);
         r.mutable_safety_net();
         r.set_usual_pain(3);
         return r;
       })},
      {kProgress, "ReportSymptoms", "", Make<gpb::ReportSymptomsRequest>([&] {
         gpb::ReportSymptomsRequest r;
         r.set_request_id(Rid());
         r.set_patient_id(patient_with_plan().first);
         r.mutable_safety_net()->set_worsening_leg_weakness(true);
         return r;
       })},
      {kProgress, "RecordOutcome", staff_token_, Make<gpb::RecordOutcomeRequest>([&] {
         gpb::RecordOutcomeRequest r;
         r.set_request_id(Rid());
         r.set_patient_id(patient);
         r.set_instrument(cpb::INSTRUMENT_PSFS);
         for (const auto& [item_id, activity] : std::vector<std::pair<std::string, std::string>>{
                  {"psfs.1", "lifting my daughter"}, {"psfs.2", "driving to work"}, {"psfs.3", "gardening"}}) {
           auto* item = r.add_answers();
           *item = Answer(cpb::INSTRUMENT_PSFS, item_id, 6);
           item->set_text(activity);
         }
         r.mutable_measure_time()->set_seconds(std::time(nullptr) - 600);
         return r;
       })},
      {kProgress, "EvaluateProgress", staff_token_, Make<gpb::EvaluateProgressRequest>([&] {
         gpb::EvaluateProgressRequest r;
         r.set_request_id(Rid());
         r.set_patient_id(patient);
         return r;
       })},
      {kProgress, "StartVisitSession", staff_token_, Make<gpb::StartVisitSessionRequest>([&] {
         gpb::StartVisitSessionRequest r;
         r.set_request_id(Rid());
         r.set_patient_id(patient);
         r.set_kind(gpb::VISIT_KIND_TELEHEALTH);
         return r;
       })},
      {kProgress, "UpdateVisitSession", staff_token_, Make<gpb::UpdateVisitSessionRequest>([&] {
         gpb::UpdateVisitSessionRequest r;
         r.set_request_id(Rid());
         r.set_session_id(start_session());
         r.set_pain_before(6);
         r.add_add_delivered_item_ids(exercise);
         r.mutable_red_flag_screen();
         r.mutable_session();
         return r;
       })},
      {kProgress, "CompleteVisitSession", staff_token_, Make<gpb::CompleteVisitSessionRequest>([&] {
         gpb::CompleteVisitSessionRequest r;
         r.set_request_id(Rid());
         r.set_session_id(start_session());
         return r;
       })},
      // A clinician of the north clinic opening a south patient's records.
      {kProgress, "BreakGlass", north_token, Make<gpb::BreakGlassRequest>([&] {
         gpb::BreakGlassRequest r;
         r.set_request_id(Rid());
         r.set_patient_id(south_patient());
         r.set_reason("patient in the clinic with new leg weakness");
         r.set_minutes(15);
         return r;
       })},
      {kProgress, "ListDueTasks", staff_token_, Make<gpb::ListDueTasksRequest>([&] {
         gpb::ListDueTasksRequest r;
         r.set_patient_id(patient);
         r.mutable_start_time()->set_seconds(std::time(nullptr) - 86400);
         r.mutable_end_time()->set_seconds(std::time(nullptr) + 86400 * 30);
         return r;
       })},
      {kProgress, "GetOutcomeReport", staff_token_, Make<gpb::GetOutcomeReportRequest>([&] {
         gpb::GetOutcomeReportRequest r;
         r.mutable_start_time()->set_seconds(std::time(nullptr) - 86400 * 90);
         r.mutable_end_time()->set_seconds(std::time(nullptr));
         r.set_group_by(gpb::REPORT_GROUPING_CLINIC);
         r.set_include_csv(true);
         return r;
       })},
  };
  for (auto base : bases) {
    std::string token;  // lives as long as the sweep that reads it through base.token_of
    if (base.token.empty()) {
      // A patient's own app: the token names the patient the request is made for.
      const auto make = base.make;
      base.make = [&, make] {
        auto request = make();
        token = PatientToken(request->GetReflection()->GetString(*request, request->GetDescriptor()->FindFieldByName("patient_id")));
        return request;
      };
      base.token_of = [&token] { return token; };
    }
    // What a patient's app and a telehealth visit send, through a browser too.
    base.json_too = base.method == "LogHomeExercise" || base.method == "ReportSymptoms" || base.method == "RecordVisit";
    Report(base.method, Sweep(base));
  }
  std::printf("[sweep] %d of the changes sent over Connect/JSON too\n", json_calls_);
  for (size_t i = 0; i < patients.size(); i += 5) ReadBack(patients[i]);
}


TEST_F(InputSweep, ReadsAndIntegrationCallsAnswerEveryEdgeValueCleanly) {
  const Caller staff = Staff();
  const std::string patient = patient_id_;
  const ppb::Plan plan = ApprovedPlanFor(staff, patient);
  std::string assessment_id;
  {
    apb::ListAssessmentsRequest list;
    list.set_patient_id(patient);
    apb::ListAssessmentsResponse listed;
    ASSERT_TRUE(staff.Call(staff.assessment.get(), &apb::AssessmentService::Stub::ListAssessments, list, &listed).ok());
    ASSERT_GT(listed.assessments_size(), 0);
    assessment_id = listed.assessments(0).assessment_id();
  }
  // An open alert to acknowledge, each time: a patient's saddle numbness.
  const auto open_alert = [&] {
    const std::string someone = "pt-" + NewId("x").substr(2, 10);
    ApprovedPlanFor(staff, someone);
    const Caller own(*cluster_, PatientToken(someone));
    gpb::ReportSymptomsRequest report;
    report.set_request_id(Rid());
    report.set_patient_id(someone);
    report.mutable_safety_net()->set_saddle_numbness(true);
    gpb::ReportSymptomsResponse reported;
    EXPECT_TRUE(own.Call(own.progress.get(), &gpb::ProgressService::Stub::ReportSymptoms, report, &reported).ok());
    gpb::GetProgressSummaryRequest summary;
    summary.set_patient_id(someone);
    gpb::GetProgressSummaryResponse summarised;
    EXPECT_TRUE(staff.Call(staff.progress.get(), &gpb::ProgressService::Stub::GetProgressSummary, summary, &summarised).ok());
    return summarised.summary().open_alerts_size() > 0 ? summarised.summary().open_alerts(0).alert_id() : std::string();
  };
  const std::vector<Base> bases = {
      {kAssessment, "ListAssessments", staff_token_, Make<apb::ListAssessmentsRequest>([&] {
         apb::ListAssessmentsRequest r;
         r.set_patient_id(patient);
         r.set_page_size(10);
         return r;
       })},
      {kAssessment, "ListAuditEvents", staff_token_, Make<apb::ListAuditEventsRequest>([&] {
         apb::ListAuditEventsRequest r;
         r.mutable_query()->set_patient_id(patient);
         r.mutable_query()->set_actor("staff-1");
         r.mutable_query()->set_outcome("OK");
         r.mutable_query()->mutable_from_time()->set_seconds(std::time(nullptr) - 3600);
         r.mutable_query()->mutable_to_time()->set_seconds(std::time(nullptr) + 60);
         r.set_page_size(20);
         return r;
       })},
      {kAssessment, "ExportAuditEvents", staff_token_, Make<apb::ExportAuditEventsRequest>([&] {
         apb::ExportAuditEventsRequest r;
         r.mutable_query()->set_patient_id(patient);
         r.mutable_query()->mutable_from_time()->set_seconds(std::time(nullptr) - 3600);
         r.set_page_size(20);
         return r;
       })},
      {kAssessment, "SearchFhir", staff_token_, Make<apb::SearchFhirRequest>([&] {
         apb::SearchFhirRequest r;
         r.set_resource_type("Observation");
         r.set_patient_id(patient);
         auto* date = r.add_parameters();
         date->set_name("date");
         date->set_value("ge2020-01-01");
         r.set_count(10);
         return r;
       })},
      {kAssessment, "ExportAssessmentFhir", staff_token_, Make<apb::ExportAssessmentFhirRequest>([&] {
         apb::ExportAssessmentFhirRequest r;
         r.set_assessment_id(assessment_id);
         return r;
       })},
      {kPlanning, "GetActivePlan", staff_token_, Make<ppb::GetActivePlanRequest>([&] {
         ppb::GetActivePlanRequest r;
         r.set_patient_id(patient);
         r.set_locale("en-GB");
         return r;
       })},
      {kPlanning, "GetPlan", staff_token_, Make<ppb::GetPlanRequest>([&] {
         ppb::GetPlanRequest r;
         r.set_plan_id(plan.plan_id());
         r.set_locale("en-GB");
         return r;
       })},
      {kPlanning, "ListPlanRevisions", staff_token_, Make<ppb::ListPlanRevisionsRequest>([&] {
         ppb::ListPlanRevisionsRequest r;
         r.set_plan_id(plan.plan_id());
         r.set_page_size(10);
         return r;
       })},
      {kPlanning, "ListInterventions", staff_token_, Make<ppb::ListInterventionsRequest>([&] {
         ppb::ListInterventionsRequest r;
         r.set_kind(ppb::PLAN_ITEM_KIND_EXERCISE);
         r.set_page_size(10);
         r.set_locale("en-GB");
         return r;
       })},
      {kProgress, "GetProgressSummary", staff_token_, Make<gpb::GetProgressSummaryRequest>([&] {
         gpb::GetProgressSummaryRequest r;
         r.set_patient_id(patient);
         return r;
       })},
      {kProgress, "ListAlerts", staff_token_, Make<gpb::ListAlertsRequest>([&] {
         gpb::ListAlertsRequest r;
         r.set_clinic_id("north");
         r.set_include_acknowledged(true);
         r.set_page_size(10);
         return r;
       })},
      {kProgress, "AcknowledgeAlert", staff_token_, Make<gpb::AcknowledgeAlertRequest>([&] {
         gpb::AcknowledgeAlertRequest r;
         r.set_request_id(Rid());
         r.set_alert_id(open_alert());
         return r;
       })},
  };
  for (const auto& base : bases) Report(base.method, Sweep(base));
}

TEST_F(InputSweep, IntegrationWritesAnswerEveryEdgeValueCleanly) {
  const Caller staff = Staff();
  const std::string patient = patient_id_;
  ApprovedPlanFor(staff, patient);
  const auto subscription = [&] {
    apb::CreateWebhookSubscriptionRequest create;
    create.set_request_id(Rid());
    create.set_url(kHookUrl);
    create.add_event_kinds(cpb::EVENT_KIND_PLAN_APPROVED);
    apb::CreateWebhookSubscriptionResponse created;
    const auto status =
        staff.Call(staff.assessment.get(), &apb::AssessmentService::Stub::CreateWebhookSubscription, create, &created);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return created.subscription().subscription_id();
  };
  // One subscription for the calls that change or read it (a tenant may hold 50).
  const std::string kept = subscription();
  const auto library_version = [&] {
    ppb::GetTenantLibraryRequest get;
    ppb::GetTenantLibraryResponse got;
    const auto status = staff.Call(staff.planning.get(), &ppb::PlanningService::Stub::GetTenantLibrary, get, &got);
    return status.ok() ? got.library().version() : 0;
  };
  const auto bulk_job = [&] {
    apb::StartBulkExportRequest start;
    start.add_types("CarePlan");
    apb::StartBulkExportResponse started;
    EXPECT_TRUE(staff.Call(staff.assessment.get(), &apb::AssessmentService::Stub::StartBulkExport, start, &started).ok());
    return started.job_id();
  };
  const std::string questionnaire_response =
      R"({"resourceType":"QuestionnaireResponse","status":"completed",)"
      R"("questionnaire":"https://physio-backend.org/fhir/Questionnaire/nprs","subject":{"reference":"Patient/)" +
      patient + R"("},"item":[{"linkId":"nprs","answer":[{"valueInteger":4}]}]})";
  const std::vector<Base> bases = {
      {kAssessment, "CreateWebhookSubscription", staff_token_, Make<apb::CreateWebhookSubscriptionRequest>([&] {
         apb::CreateWebhookSubscriptionRequest r;
         r.set_request_id(Rid());
         r.set_url(kHookUrl);
         r.add_event_kinds(cpb::EVENT_KIND_RED_FLAG_RAISED);
         r.set_clinic_id("north");
         r.set_description("EHR sync for the north clinic");
         return r;
       })},
      {kAssessment, "UpdateWebhookSubscription", staff_token_, Make<apb::UpdateWebhookSubscriptionRequest>([&] {
         apb::UpdateWebhookSubscriptionRequest r;
         r.set_subscription_id(kept);
         r.set_url(kHookUrl);
         r.mutable_event_kinds()->add_kinds(cpb::EVENT_KIND_ASSESSMENT_STORED);
         r.set_state(apb::WEBHOOK_STATE_PAUSED);
         r.set_description("paused for the EHR upgrade");
         return r;
       })},
      {kAssessment, "RotateWebhookSecret", staff_token_, Make<apb::RotateWebhookSecretRequest>([&] {
         apb::RotateWebhookSecretRequest r;
         r.set_request_id(Rid());
         r.set_subscription_id(kept);
         r.set_overlap_seconds(300);
         return r;
       })},
      {kAssessment, "DeleteWebhookSubscription", staff_token_, Make<apb::DeleteWebhookSubscriptionRequest>([&] {
         apb::DeleteWebhookSubscriptionRequest r;
         r.set_subscription_id(subscription());
         return r;
       })},
      {kAssessment, "ListWebhookDeliveries", staff_token_, Make<apb::ListWebhookDeliveriesRequest>([&] {
         apb::ListWebhookDeliveriesRequest r;
         r.set_subscription_id(kept);
         r.set_page_size(10);
         return r;
       })},
      {kAssessment, "ReplayWebhookDeliveries", staff_token_, Make<apb::ReplayWebhookDeliveriesRequest>([&] {
         apb::ReplayWebhookDeliveriesRequest r;
         r.set_subscription_id(kept);
         r.mutable_window()->mutable_start_time()->set_seconds(std::time(nullptr) - 3600);
         r.mutable_window()->mutable_end_time()->set_seconds(std::time(nullptr));
         return r;
       })},
      {kAssessment, "CreateFhirResource", staff_token_, Make<apb::CreateFhirResourceRequest>([&] {
         apb::CreateFhirResourceRequest r;
         r.set_resource_type("QuestionnaireResponse");
         r.set_resource_json(questionnaire_response);
         return r;
       })},
      {kAssessment, "StartBulkExport", staff_token_, Make<apb::StartBulkExportRequest>([&] {
         apb::StartBulkExportRequest r;
         r.add_types("CarePlan");
         r.set_since("2026-01-01T00:00:00Z");
         r.set_request_url("https://physio.example.org/fhir/R4/$export?_type=CarePlan");
         return r;
       })},
      {kAssessment, "GetBulkExportStatus", staff_token_, Make<apb::GetBulkExportStatusRequest>([&] {
         apb::GetBulkExportStatusRequest r;
         r.set_job_id(bulk_job());
         return r;
       })},
      {kAssessment, "CancelBulkExport", staff_token_, Make<apb::CancelBulkExportRequest>([&] {
         apb::CancelBulkExportRequest r;
         r.set_job_id(bulk_job());
         return r;
       })},
      {kPlanning, "PublishTenantLibrary", staff_token_, Make<ppb::PublishTenantLibraryRequest>([&] {
         ppb::PublishTenantLibraryRequest r;
         r.set_request_id(Rid());
         r.set_document(kTenantLibrary);
         r.set_expected_version(library_version());
         r.set_reason("our clinics' lifting programme");
         return r;
       })},
  };
  for (const auto& base : bases) Report(base.method, Sweep(base));
  // The manifest echoes the kick-off URL: one absolute http(s) URL or nothing.
  for (const std::string url : {"javascript:alert(1)", "https://physio.example.org/$export\r\nX-Evil: 1",
                                "https://physio.example.org/ $export", "/fhir/R4/$export"}) {
    apb::StartBulkExportRequest start;
    start.set_request_url(url);
    apb::StartBulkExportResponse started;
    const auto status = staff.Call(staff.assessment.get(), &apb::AssessmentService::Stub::StartBulkExport, start, &started);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << url;
    EXPECT_EQ(status.error_message().rfind("request_url: ", 0), 0u) << status.error_message();
  }
  ReadBack(patient);
}

// One WatchEvents stream of `stub` with `mutation` applied to an empty (valid) request: reads until
// the first event or `patience`, then hangs up. `event` says whether one came.
template <typename Request, typename Response, typename Stub>
grpc::Status WatchOnce(Stub& stub, const Caller& caller, const Mutation* mutation, bool* event) {
  Request request;
  if (mutation != nullptr) mutation->set(ParentOf(&request, mutation->path), mutation->path.back());
  auto context = caller.Context(std::chrono::milliseconds(1500));
  auto reader = stub.WatchEvents(context.get(), request);
  Response response;
  *event = reader->Read(&response);
  if (*event) context->TryCancel();  // else the stream has ended, and Finish says how
  return reader->Finish();
}

// The event feed's request of each service: a stream that opens, or a refusal naming the field;
// never a defect, and never an event before the request was accepted.
TEST_F(InputSweep, WatchEventsAnswersEveryEdgeValueCleanly) {
  const Caller staff = Staff();
  ApprovedPlanFor(staff, patient_id_);  // events in the feeds to be read
  using Watch = std::function<grpc::Status(const Mutation*, bool*)>;
  const std::vector<std::tuple<std::string, const Descriptor*, Watch>> feeds = {
      {"assessment", apb::WatchEventsRequest::descriptor(),
       [&](const Mutation* m, bool* e) { return WatchOnce<apb::WatchEventsRequest, apb::WatchEventsResponse>(*staff.assessment, staff, m, e); }},
      {"planning", ppb::WatchEventsRequest::descriptor(),
       [&](const Mutation* m, bool* e) { return WatchOnce<ppb::WatchEventsRequest, ppb::WatchEventsResponse>(*staff.planning, staff, m, e); }},
      {"progress", gpb::WatchEventsRequest::descriptor(),
       [&](const Mutation* m, bool* e) { return WatchOnce<gpb::WatchEventsRequest, gpb::WatchEventsResponse>(*staff.progress, staff, m, e); }},
  };
  for (const auto& [service, descriptor, watch] : feeds) {
    bool event = false;
    const grpc::Status base = watch(nullptr, &event);
    if (service != "progress") {
      EXPECT_TRUE(event) << service << ": the feed from its start has events: " << base.error_message();
    }
    std::map<grpc::StatusCode, int> codes;
    for (const auto& mutation : MutationsOf(descriptor)) {
      const grpc::Status status = watch(&mutation, &event);
      ++codes[status.error_code()];
      const std::string what = service + " WatchEvents with " + mutation.label;
      if (std::getenv("PHYSIO_SWEEP_VERBOSE") != nullptr) {
        std::printf("[sweep] %s -> %d %s (event: %d)\n", what.c_str(), status.error_code(),
                    status.error_message().substr(0, 160).c_str(), event);
      }
      // Hung up by this side (CANCELLED) after an event, or still waiting at the deadline, or refused.
      EXPECT_TRUE(status.error_code() == grpc::StatusCode::CANCELLED ||
                  status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
                  status.error_code() == grpc::StatusCode::INVALID_ARGUMENT)
          << what << ": " << status.error_code() << " " << status.error_message();
      if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
        EXPECT_FALSE(event) << what << ": an event before the refusal";
        EXPECT_NE(status.error_message().find(mutation.path.back()->name()), std::string::npos) << what << ": " << status.error_message();
      }
      if (mutation.value == "a control character" || mutation.value == "an escape sequence" ||
          mutation.value == "a right-to-left override") {
        EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << what;
      }
    }
    Report(service + " WatchEvents", codes);
  }
  // Cursors that are almost numbers: a stream past the head waits (deadline), anything else is refused.
  for (const std::string cursor : {"-1", "+1", "1e3", "0x10", " 1", "1 ", "00", "999999999999999999",
                                   "9999999999999999999", "18446744073709551616"}) {
    apb::WatchEventsRequest request;
    request.set_after_cursor(cursor);
    auto context = staff.Context(std::chrono::milliseconds(1000));
    auto reader = staff.assessment->WatchEvents(context.get(), request);
    apb::WatchEventsResponse response;
    const bool event = reader->Read(&response);
    if (event) context->TryCancel();
    const grpc::Status status = reader->Finish();
    const bool waits = status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED && !event;
    const bool refused = status.error_code() == grpc::StatusCode::INVALID_ARGUMENT && !event &&
                         status.error_message().find("after_cursor") != std::string::npos;
    const bool reads = event && status.error_code() == grpc::StatusCode::CANCELLED && cursor == "00";
    EXPECT_TRUE(waits || refused || reads) << "cursor '" << cursor << "': " << status.error_code() << " "
                                           << status.error_message() << " (event: " << event << ")";
  }
}

// Percent-encoded edge values for a query parameter, as a FHIR client could send them.
const std::vector<std::pair<std::string, std::string>>& QueryEdges() {
  static const std::vector<std::pair<std::string, std::string>> edges = {
      {"a NUL", "%00"}, {"a control character", "%01"}, {"an escape sequence", "%1B%5B2J"},
      {"a right-to-left override", "%E2%80%AEx"}, {"blank text", "%20%20%20"}, {"empty text", ""},
      {"a line break", "a%0Ab"}, {"an emoji", "%F0%9F%98%80"}, {"invalid UTF-8", "%FF%FE"},
      {"an overlong NUL", "%C0%80"}, {"a long value", std::string(3000, 'a')}, {"a list", "a,b,c"},
      {"bars", "%7C%7C%7C"}, {"a bare prefix", "ge"}, {"an unknown prefix", "ap2026"},
      {"year 0", "0000-01-01"}, {"year 1", "eq0001-01-01"}, {"year 9999", "lt9999-12-31T23:59:59Z"},
      {"year 1 in a zone east of UTC", "0001-01-01T00:00:00%2B14:00"},
      {"year 9999 in a zone west of UTC", "9999-12-31T23:59:59-14:00"}, {"year 10000", "gt10000-01-01"}, {"30 February", "2026-02-30"}, {"hour 24", "2026-12-06T24:00:00Z"},
      {"a zone of 99 hours", "2026-12-06T10:00:00%2B99:00"}, {"ten digits of seconds", "2026-12-06T10:00:00.9999999999Z"},
      {"a negative year", "-2026"}, {"past int32", "2147483648"}, {"-1", "-1"}, {"1e309", "1e309"}, {"NaN", "NaN"},
      {"an empty reference", "Patient%2F"}, {"a path in a reference", "Patient%2F..%2F..%2Fx"},
      {"a system and more bars", "http%3A%2F%2Fx%7Cy%7Cz"}};
  return edges;
}

// Whether `text` holds a C0 or C1 control character (a JSON string's, once decoded).
bool HasControlCharacter(const std::string& text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte < 0x20 || byte == 0x7f) return true;
    if (byte == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
        static_cast<unsigned char>(text[i + 1]) <= 0x9f) {
      return true;
    }
  }
  return false;
}

// The HTTP-only surfaces: every search parameter of every FHIR resource type the CapabilityStatement
// lists (and _count, _cursor, patient), each with each edge value, and the Connect headers of a call.
// Every answer is a FHIR Bundle or OperationOutcome (a Connect error on the Connect port), never a
// 5xx; a diagnostic never carries a control character back; a control character is refused naming
// the parameter the client sent, not an internal field; and the ports still answer afterwards.
TEST_F(InputSweep, FhirSearchesAndConnectHeadersAnswerEveryEdgeValueCleanly) {
  const Caller staff = Staff();
  const std::string patient = patient_id_;
  ApprovedPlanFor(staff, patient);
  httplib::Client client("127.0.0.1", cluster_->assessment_http_port());
  client.set_path_encode(false);  // the edge values are sent as encoded here
  client.set_read_timeout(10, 0);
  const httplib::Headers bearer = {{"Authorization", "Bearer " + staff_token_}};
  const auto metadata = client.Get("/fhir/R4/metadata");
  ASSERT_TRUE(metadata);
  ASSERT_EQ(metadata->status, 200);
  const auto capability = nlohmann::json::parse(metadata->body);
  std::map<int, int> statuses;
  int searches = 0;
  for (const auto& resource : capability["rest"][0]["resource"]) {
    const std::string type = resource.value("type", "");
    if (!resource.contains("searchParam")) continue;
    std::vector<std::string> names = {"_count", "_cursor"};
    for (const auto& parameter : resource["searchParam"]) names.push_back(parameter.value("name", ""));
    for (const auto& name : names) {
      for (const auto& [label, value] : QueryEdges()) {
        std::string query = type == "AuditEvent" ? "" : "patient=" + patient;
        if (name == "patient") query.clear();
        query += std::string(query.empty() ? "" : "&") + name + "=" + value;
        const std::string what = type + "?" + name + " = " + label;
        const auto answer = client.Get(("/fhir/R4/" + type + "?" + query).c_str(), bearer);
        ++searches;
        ASSERT_TRUE(answer) << what << ": no answer";
        ++statuses[answer->status];
        if (std::getenv("PHYSIO_SWEEP_VERBOSE") != nullptr) {
          std::printf("[sweep] %s -> %d %s\n", what.c_str(), answer->status, answer->body.substr(0, 200).c_str());
        }
        // 414: the request target is past the port's limit (a long value), which says so.
        EXPECT_TRUE(answer->status == 200 || answer->status == 400 || answer->status == 404 ||
                    (answer->status == 414 && label == "a long value"))
            << what << ": " << answer->status << " " << answer->body.substr(0, 300);
        const auto body = nlohmann::json::parse(answer->body, nullptr, false);
        ASSERT_TRUE(body.is_object()) << what << ": not JSON: " << answer->body.substr(0, 300);
        EXPECT_EQ(body.value("resourceType", ""), answer->status == 200 ? "Bundle" : "OperationOutcome")
            << what << ": " << answer->body.substr(0, 300);
        if (answer->status == 200) continue;
        if (answer->status == 414) {
          EXPECT_EQ(body["issue"][0].value("code", ""), "too-long") << what << ": " << answer->body;
        }
        const std::string diagnostics = body["issue"][0].value("diagnostics", "");
        EXPECT_FALSE(HasControlCharacter(diagnostics)) << what << ": the diagnostic carries a control character";
        // A FHIR client is told about what it sent, not about our gRPC request's fields.
        for (const char* internal : {"parameters[", "query.", "resource_type", "_time:"}) {
          EXPECT_EQ(diagnostics.find(internal), std::string::npos) << what << ": " << diagnostics;
        }
        if (label == "a NUL" || label == "a control character" || label == "an escape sequence" ||
            label == "a line break" || label == "invalid UTF-8" || label == "an overlong NUL" ||
            label == "a right-to-left override") {
          EXPECT_EQ(answer->status, 400) << what << ": " << answer->body;
          EXPECT_NE(diagnostics.find(name), std::string::npos) << what << ": names " << name << "? " << diagnostics;
        }
      }
    }
  }
  std::string line;
  for (const auto& [status, count] : statuses) line += " " + std::to_string(status) + "x" + std::to_string(count);
  std::printf("[sweep] FHIR searches:%s (%d)\n", line.c_str(), searches);
  EXPECT_GT(searches, 500) << "the CapabilityStatement listed too few search parameters to sweep";

  // The bulk export's kick-off parameters: a job (cancelled at once) or a refusal naming the parameter.
  httplib::Headers async = bearer;
  async.emplace("Prefer", "respond-async");
  int kick_offs = 0, started = 0;
  for (const std::string name : {"_since", "_type", "_outputFormat"}) {
    for (const auto& [label, value] : QueryEdges()) {
      const std::string what = "$export?" + name + " = " + label;
      const auto answer = client.Get(("/fhir/R4/$export?" + name + "=" + value).c_str(), async);
      ++kick_offs;
      ASSERT_TRUE(answer) << what << ": no answer";
      if (std::getenv("PHYSIO_SWEEP_VERBOSE") != nullptr) {
        std::printf("[sweep] %s -> %d %s\n", what.c_str(), answer->status, answer->body.substr(0, 200).c_str());
      }
      EXPECT_TRUE(answer->status == 202 || answer->status == 400 || (answer->status == 414 && label == "a long value"))
          << what << ": " << answer->status << " " << answer->body.substr(0, 300);
      if (answer->status == 202) {
        ++started;
        const std::string location = answer->get_header_value("Content-Location");
        const auto path_at = location.find("/fhir/R4/");
        ASSERT_NE(path_at, std::string::npos) << what << ": " << location;
        const auto cancelled = client.Delete(location.substr(path_at).c_str(), bearer);
        ASSERT_TRUE(cancelled) << what;
        EXPECT_EQ(cancelled->status, 202) << what << ": " << cancelled->body;
        continue;
      }
      const auto outcome = nlohmann::json::parse(answer->body, nullptr, false);
      ASSERT_TRUE(outcome.is_object()) << what << ": " << answer->body.substr(0, 300);
      const std::string diagnostics = outcome["issue"][0].value("diagnostics", "");
      EXPECT_FALSE(HasControlCharacter(diagnostics)) << what << ": " << diagnostics;
      if (answer->status == 400) {
        EXPECT_NE(diagnostics.find(name), std::string::npos) << what << ": names " << name << "? " << diagnostics;
      }
    }
  }
  std::printf("[sweep] bulk export kick-offs: %d (%d started and cancelled)\n", kick_offs, started);

  // The Connect headers of one call, each with edge values: a Connect error or the answer, never a 5xx.
  const std::string path = "/physio.planning.v1.PlanningService/GetActivePlan";
  const std::string body = "{\"patientId\":\"" + patient + "\"}";
  const std::vector<std::pair<std::string, std::vector<std::string>>> headers = {
      {"Connect-Timeout-Ms", {"0", "-1", "1", "9999999999", "99999999999", "1e3", "0x10", "+5", "", "%35"}},
      {"Connect-Protocol-Version", {"", "2", "01", "1,1"}},
      {"Content-Type", {"application/json; charset=utf-16", "APPLICATION/JSON", "application/json;", "", "text/plain",
                        "application/proto", "application/json; charset=\"utf-8\"", "application/connect+json"}},
      {"Content-Encoding", {"gzip", "identity, gzip", "IDENTITY", "br", ""}},
      {"X-Request-Id", {std::string(200, 'r'), std::string(9000, 'r'), "../..", "%0d%0a", "caf%C3%A9", ""}},
      {"Traceparent", {"00-" + std::string(32, '0') + "-" + std::string(16, '0') + "-01", "ff-" + std::string(32, 'a') +
                       "-" + std::string(16, 'b') + "-01", "00", "", std::string(600, '0')}},
      {"Authorization", {"Bearer", "bearer " + staff_token_, "Bearer " + staff_token_ + " extra",
                         "Bearer " + staff_token_ + ",Bearer " + staff_token_, "Bearer " + std::string(7000, 'a'),
                         "Bearer a.b.c", "Bearer ..", "Basic Og==", ""}},
      {"Origin", {"null", "http://" + std::string(3000, 'o') + ".example", "file://", ""}},
      {"Prefer", {"handling=strict", "respond-async", std::string(2000, 'p')}},
      {"Accept", {"application/xml", "*/*;q=0", ""}},
  };
  httplib::Client planning("127.0.0.1", cluster_->planning_http_port());
  planning.set_read_timeout(10, 0);
  int connect_calls = 0;
  for (const auto& [name, values] : headers) {
    for (const auto& value : values) {
      httplib::Headers sent = {{"Authorization", "Bearer " + staff_token_}, {"Connect-Protocol-Version", "1"}};
      sent.erase(name);
      sent.emplace(name, value);
      const std::string content_type = name == "Content-Type" ? value : "application/json";
      sent.erase("Content-Type");
      const auto answer = planning.Post(path.c_str(), sent, body, content_type.c_str());
      ++connect_calls;
      const std::string what = name + ": " + value.substr(0, 40);
      if (!answer) {
        // A header past the port's limits may be refused by closing the connection; nothing else may.
        EXPECT_GT(value.size(), 4000u) << what << ": no answer";
        continue;
      }
      if (std::getenv("PHYSIO_SWEEP_VERBOSE") != nullptr) {
        std::printf("[sweep] %s -> %d %s\n", what.c_str(), answer->status, answer->body.substr(0, 200).c_str());
      }
      // Never a server error; but an encoding the port does not read is Connect's `unimplemented`
      // (501), and a deadline of one millisecond may pass (504).
      const bool expected_5xx = (name == "Content-Encoding" && answer->status == 501) ||
                                (name == "Connect-Timeout-Ms" && value == "1" && answer->status == 504);
      EXPECT_TRUE(answer->status < 500 || expected_5xx)
          << what << ": " << answer->status << " " << answer->body.substr(0, 300);
      if (answer->status == 200 || answer->status == 415 || answer->status == 431 || answer->status == 413 ||
          answer->body.empty()) {
        continue;
      }
      const auto error = nlohmann::json::parse(answer->body, nullptr, false);
      EXPECT_TRUE(error.is_object() && error.contains("code")) << what << ": not a Connect error: " << answer->body;
      if (error.is_object()) {
        EXPECT_FALSE(HasControlCharacter(error.value("message", ""))) << what << ": " << answer->body;
      }
    }
  }
  std::printf("[sweep] Connect headers: %d calls\n", connect_calls);
  // Media types and content codings are case-insensitive (RFC 9110 8.3.1, 8.4.1).
  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"Content-Type", "APPLICATION/JSON"}, {"Content-Type", "Application/Json ; charset=utf-8"},
           {"Content-Encoding", "IDENTITY"}}) {
    httplib::Headers sent = {{"Authorization", "Bearer " + staff_token_}};
    if (name != "Content-Type") sent.emplace(name, value);
    const auto answer = planning.Post(path.c_str(), sent, body, name == "Content-Type" ? value.c_str() : "application/json");
    ASSERT_TRUE(answer) << name << ": " << value;
    EXPECT_EQ(answer->status, 200) << name << ": " << value << " -> " << answer->body.substr(0, 200);
  }
  // JSON is UTF-8 (RFC 8259 8.1): a body declared in another charset is refused, not misread.
  const auto utf16 = planning.Post(path.c_str(), {{"Authorization", "Bearer " + staff_token_}}, body,
                                   "application/json; charset=utf-16");
  ASSERT_TRUE(utf16);
  EXPECT_EQ(utf16->status, 415) << utf16->body;
  const auto quoted = planning.Post(path.c_str(), {{"Authorization", "Bearer " + staff_token_}}, body,
                                    "application/json; charset=\"UTF-8\"");
  ASSERT_TRUE(quoted);
  EXPECT_EQ(quoted->status, 200) << quoted->body;
  // Both ports still answer.
  const auto after = planning.Post(path.c_str(), {{"Authorization", "Bearer " + staff_token_}}, body, "application/json");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200) << after->body;
  const auto fhir_after = client.Get(("/fhir/R4/CarePlan?patient=" + patient).c_str(), bearer);
  ASSERT_TRUE(fhir_after);
  EXPECT_EQ(fhir_after->status, 200) << fhir_after->body;
}

grpc::Status InputSweep::SendChecked(const Base& base, const Message& request, const std::string& what,
                                     const std::string& edge, std::map<grpc::StatusCode, int>& codes) {
  const auto before = kUnderAddressSanitizer ? std::map<std::string, std::string>{} : StoredState("");
  const grpc::Status status = Send(base, request);
  ++codes[status.error_code()];
  if (std::getenv("PHYSIO_SWEEP_VERBOSE") != nullptr) {
    std::printf("[sweep] %s -> %d %s\n", what.c_str(), status.error_code(), status.error_message().substr(0, 160).c_str());
  }
  EXPECT_FALSE(IsDefect(status.error_code())) << what << ": " << status.error_code() << " " << status.error_message();
  EXPECT_FALSE(HasControlCharacter(status.error_message())) << what;
  if (edge == "a NUL" || edge == "a control character" || edge == "an escape sequence" ||
      edge == "a right-to-left override") {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << what;
  }
  if (!status.ok() && !kUnderAddressSanitizer) {
    EXPECT_EQ(before, StoredState("")) << what << " was refused but changed what is stored";
  }
  return status;
}

// A JSON document with one node changed: a leaf given an edge value or another type, a member
// removed, an array emptied. `label` says which ("/item/0/linkId = a control character").
struct JsonMutation {
  std::string label;
  std::string value;  // which edge value ("a control character")
  nlohmann::json document;
};

// The values any node of a FHIR body may be given: text at its edges, numbers past what a field
// holds, and every other JSON type.
const std::vector<std::pair<std::string, nlohmann::json>>& JsonEdges() {
  static const std::vector<std::pair<std::string, nlohmann::json>> edges = {
      {"a NUL", std::string("a\0b", 3)}, {"a control character", "checked\x01"}, {"an escape sequence", "\x1b[2Jx"},
      {"a right-to-left override", "\xe2\x80\xae" "x"}, {"blank text", "   "}, {"empty text", ""},
      {"a line break", "a\r\nb"}, {"an emoji", "\xf0\x9f\x98\x80"}, {"a long text", std::string(70000, 'a')},
      {"-1", -1}, {"0", 0}, {"past int32", 2147483648LL}, {"past int64", 9223372036854775808ULL},
      {"the largest unsigned", std::numeric_limits<uint64_t>::max()}, {"a fraction", 1.5}, {"1e308", 1e308},
      {"null", nullptr}, {"true", true}, {"a number as text", "7"}, {"an object", nlohmann::json::object()},
      {"an array", nlohmann::json::array()}, {"an array of null", nlohmann::json::array({nullptr})}};
  return edges;
}

// Every node of `document` (below `under`) with each edge value, each member removed, and each
// array with its first element twice. Arrays are entered at their first element only (the others
// are alike), and a pointer in `opaque` is changed but not entered.
void CollectJsonMutations(const nlohmann::json& document, const nlohmann::json::json_pointer& at,
                          const std::set<std::string>& opaque, std::vector<JsonMutation>& out) {
  const nlohmann::json& node = document.at(at);
  const std::string where = at.to_string().empty() ? "(the body)" : at.to_string();
  for (const auto& [label, value] : JsonEdges()) {
    nlohmann::json changed = document;
    changed[at] = value;
    out.push_back({where + " = " + label, label, std::move(changed)});
  }
  if (!at.empty()) {
    nlohmann::json changed = document;
    nlohmann::json& parent = changed[at.parent_pointer()];
    if (parent.is_object()) {
      parent.erase(at.back());
      out.push_back({where + " removed", "removed", std::move(changed)});
    }
  }
  if (node.is_array() && !node.empty()) {
    nlohmann::json changed = document;
    changed[at].push_back(node[0]);
    out.push_back({where + " with its first element twice", "a repeat", std::move(changed)});
  }
  if (opaque.contains(at.to_string())) return;
  if (node.is_object()) {
    for (const auto& [key, value] : node.items()) CollectJsonMutations(document, at / key, opaque, out);
  } else if (node.is_array() && !node.empty()) {
    CollectJsonMutations(document, at / 0, opaque, out);
  }
}

std::vector<JsonMutation> JsonMutationsOf(const nlohmann::json& document, const std::set<std::string>& opaque = {}) {
  std::vector<JsonMutation> out;
  CollectJsonMutations(document, nlohmann::json::json_pointer(), opaque, out);
  return out;
}

// Whether any text of a JSON document (keys included) holds a control character; with
// `layout_allowed`, tab and line breaks in a value (a note's lines) are text.
bool HoldsControlCharacter(const nlohmann::json& node, bool layout_allowed = false) {
  if (node.is_string()) {
    std::string text = node.get<std::string>();
    if (layout_allowed) std::erase_if(text, [](char c) { return c == '\t' || c == '\r' || c == '\n'; });
    return HasControlCharacter(text);
  }
  if (node.is_object()) {
    for (const auto& [key, value] : node.items()) {
      if (HasControlCharacter(key) || HoldsControlCharacter(value, layout_allowed)) return true;
    }
  }
  if (node.is_array()) {
    for (const auto& element : node) {
      if (HoldsControlCharacter(element, layout_allowed)) return true;
    }
  }
  return false;
}

// The FHIR bodies a chain's system sends: `POST /QuestionnaireResponse` (a PSFS response, with its
// nested activity texts, and an ODI response with an item declined), every node of the body at each
// edge value, removed, or repeated, with its edge headers; and the same import over gRPC with a
// whole Bundle. Every answer is a resource or an OperationOutcome, never a 5xx; a refusal stores
// nothing; what is stored carries no control character; and the patient's records read back.
TEST_F(InputSweep, FhirBodiesAnswerEveryEdgeValueCleanly) {
  const Caller staff = Staff();
  const std::string patient = patient_id_;
  apb::CreateAssessmentRequest create;
  create.set_request_id(Rid());
  create.set_patient_id(patient);
  *create.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 5);
  for (int i = 1; i <= 10; ++i) *create.add_answers() = Answer(cpb::INSTRUMENT_ODI, "odi." + std::to_string(i), 2, i == 4);
  for (int i = 1; i <= 3; ++i) {
    auto activity = Answer(cpb::INSTRUMENT_PSFS, "psfs." + std::to_string(i), 3 + i);
    activity.set_text(i == 1 ? "lifting my daughter" : i == 2 ? "sitting through a film" : "gardening");
    *create.add_answers() = activity;
  }
  create.mutable_red_flag_screen();
  apb::CreateAssessmentResponse created;
  ASSERT_TRUE(staff.Call(staff.assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, create, &created).ok());
  apb::ExportAssessmentFhirRequest export_request;
  export_request.set_assessment_id(created.assessment().assessment_id());
  apb::ExportAssessmentFhirResponse exported;
  ASSERT_TRUE(staff.Call(staff.assessment.get(), &apb::AssessmentService::Stub::ExportAssessmentFhir, export_request,
                         &exported).ok());
  const auto bundle = nlohmann::json::parse(exported.bundle_json());
  std::map<std::string, nlohmann::json> responses;  // questionnaire -> its response, as exported
  for (const auto& entry : bundle["entry"]) {
    const auto& resource = entry["resource"];
    if (resource.value("resourceType", "") == "QuestionnaireResponse") {
      responses[resource.value("questionnaire", "")] = resource;
    }
  }
  nlohmann::json psfs, odi;
  for (const auto& [questionnaire, resource] : responses) {
    if (questionnaire.ends_with("/psfs")) psfs = resource;
    if (questionnaire.find("97908-8") != std::string::npos) odi = resource;
  }
  ASSERT_TRUE(psfs.is_object() && odi.is_object()) << exported.bundle_json().substr(0, 600);

  httplib::Client client("127.0.0.1", cluster_->assessment_http_port());
  client.set_read_timeout(10, 0);
  const httplib::Headers bearer = {{"Authorization", "Bearer " + staff_token_}};
  std::map<int, int> statuses;
  int accepted = 0;
  // One POST; its answer checked, and what a refusal left behind.
  const auto post = [&](const std::string& what, const std::string& body, const httplib::Headers& headers,
                        const std::string& content_type, const std::string& edge) -> int {
    const auto before = kUnderAddressSanitizer ? std::map<std::string, std::string>{} : StoredState("");
    const auto answer = client.Post("/fhir/R4/QuestionnaireResponse", headers, body, content_type.c_str());
    if (!answer) {
      ADD_FAILURE() << what << ": no answer";
      return 0;
    }
    ++statuses[answer->status];
    if (std::getenv("PHYSIO_SWEEP_VERBOSE") != nullptr) {
      std::printf("[sweep] POST %s -> %d %s\n", what.c_str(), answer->status, answer->body.substr(0, 200).c_str());
    }
    EXPECT_TRUE(answer->status == 200 || answer->status == 201 || answer->status == 400 || answer->status == 404 ||
                answer->status == 412 || answer->status == 415)
        << what << ": " << answer->status << " " << answer->body.substr(0, 300);
    const auto resource = nlohmann::json::parse(answer->body, nullptr, false);
    if (!resource.is_object()) {
      ADD_FAILURE() << what << ": not JSON: " << answer->body.substr(0, 300);
      return answer->status;
    }
    if (answer->status == 200 || answer->status == 201) {
      ++accepted;
      EXPECT_EQ(resource.value("resourceType", ""), "QuestionnaireResponse") << what;
      // What is stored is text a clinician can read: no control character came through.
      EXPECT_FALSE(HoldsControlCharacter(resource)) << what << ": stored " << answer->body.substr(0, 300);
      EXPECT_FALSE(answer->get_header_value("Location").empty()) << what;
      return answer->status;
    }
    EXPECT_EQ(resource.value("resourceType", ""), "OperationOutcome") << what << ": " << answer->body.substr(0, 300);
    const std::string diagnostics = resource["issue"][0].value("diagnostics", "");
    EXPECT_FALSE(diagnostics.empty()) << what;
    EXPECT_FALSE(HasControlCharacter(diagnostics)) << what << ": the diagnostic carries a control character";
    for (const char* internal : {"resource_json", "resource_type", "if_none_exist", "parameters["}) {
      EXPECT_EQ(diagnostics.find(internal), std::string::npos) << what << ": " << diagnostics;
    }
    // FHIR's strings hold no control character but tab and line breaks: refused wherever it is,
    // in a member the import reads or one it passes over.
    if (edge == "a NUL" || edge == "a control character" || edge == "an escape sequence" ||
        edge == "a right-to-left override") {
      EXPECT_EQ(answer->status, 400) << what << ": " << answer->body.substr(0, 300);
    }
    if (!kUnderAddressSanitizer) {
      const auto after = StoredState("");
      EXPECT_EQ(before, after) << what << " was refused (" << answer->status << " " << diagnostics
                               << ") but changed what is stored";
    }
    return answer->status;
  };
  int posts = 0;
  for (const auto& [name, resource] : {std::pair<std::string, nlohmann::json>{"PSFS", psfs}, {"ODI", odi}}) {
    for (const auto& mutation : JsonMutationsOf(resource)) {
      ++posts;
      post(name + " " + mutation.label, mutation.document.dump(), bearer, "application/fhir+json", mutation.value);
    }
  }
  // Bodies that are not JSON, or not one document.
  for (const auto& [label, body] : std::vector<std::pair<std::string, std::string>>{
           {"empty", ""}, {"a truncated document", psfs.dump().substr(0, 40)}, {"two documents", psfs.dump() + psfs.dump()},
           {"a lone surrogate", R"({"resourceType":"QuestionnaireResponse","text":"\ud800"})"},
           {"bytes that are not UTF-8", "{\"resourceType\":\"QuestionnaireResponse\",\"status\":\"\xff\xfe\"}"},
           {"a UTF-8 byte order mark", "\xef\xbb\xbf" + psfs.dump()},
           {"nesting 10,000 deep", std::string(10000, '[') + std::string(10000, ']')},
           {"a member nesting 10,000 deep", R"({"resourceType":"QuestionnaireResponse","contained":)" +
                                                std::string(10000, '[') + std::string(10000, ']') + "}"},
           {"a control character in a member's name", R"({"resourceType":"QuestionnaireResponse","a\u0001b":1})"},
           {"a duplicate member", R"({"resourceType":"QuestionnaireResponse","resourceType":"Patient"})"}}) {
    ++posts;
    post("body " + label, body, bearer, "application/fhir+json", label);
  }
  // The create's headers at their edges.
  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"If-None-Exist", ""}, {"If-None-Exist", "identifier=x|" + std::string(600, 'v')},
           {"If-None-Exist", "identifier=\xff\xfe"}, {"If-None-Exist", "%00"},
           {"If-None-Exist", "identifier=https://ehr.example/qr|sweep"},
           {"Content-Type", "application/fhir+json; charset=utf-8"}, {"Content-Type", "APPLICATION/FHIR+JSON"},
           {"Content-Type", "application/fhir+json; charset=utf-16"},
           {"Content-Type", "application/json-patch+json"}, {"Content-Type", "application/fhir+xml"},
           {"Content-Type", "text/plain"}, {"Prefer", "return=minimal"}, {"Prefer", "return=OperationOutcome"},
           {"Prefer", "handling=strict"}}) {
    httplib::Headers headers = bearer;
    if (name != "Content-Type") headers.emplace(name, value);
    ++posts;
    const int status = post(name + ": " + value.substr(0, 40), psfs.dump(), headers,
                            name == "Content-Type" ? value : "application/fhir+json", "");
    // A body in another charset, or of another media type, is refused before it is read.
    if (name == "Content-Type") {
      const bool fhir_json = value.find("fhir+json; charset=utf-8") != std::string::npos || value == "APPLICATION/FHIR+JSON";
      EXPECT_EQ(status, fhir_json ? 201 : 415) << value;
    }
  }
  std::string line;
  for (const auto& [status, count] : statuses) line += " " + std::to_string(status) + "x" + std::to_string(count);
  std::printf("[sweep] FHIR creates:%s (%d, %d stored)\n", line.c_str(), posts, accepted);
  EXPECT_GT(accepted, 0) << "the valid bodies were refused: every change would meet the same refusal";

  // The same import over gRPC, the whole Bundle at once: the Bundle's own nodes and its first entry
  // changed (the resources inside are swept above).
  const Base import{kAssessment, "ImportFhirQuestionnaireResponse", staff_token_, {}};
  std::map<grpc::StatusCode, int> codes;
  for (const auto& mutation : JsonMutationsOf(bundle, {"/entry/0/resource"})) {
    apb::ImportFhirQuestionnaireResponseRequest request;
    request.set_request_id(Rid());
    request.set_patient_id(patient);
    request.set_resource_json(mutation.document.dump());
    request.mutable_red_flag_screen();
    SendChecked(import, request, "Bundle " + mutation.label, mutation.value, codes);
  }
  Report("ImportFhirQuestionnaireResponse (Bundle)", codes);
  ReadBack(patient);
}

// A tenant's library is a JSON document a chain's clinical lead publishes (docs/clinical-rules.md):
// each node of it in turn at the body edge values, removed, or repeated. Every answer is a
// publication or a refusal naming where; a refusal stores nothing; a control character is refused
// wherever it is; and whatever was published, planning still works from it (a plan is generated
// after each accepted version) and reads back without a control character.
TEST_F(InputSweep, TenantLibraryDocumentsAnswerEveryEdgeValueCleanly) {
  const Caller staff = Staff();
  apb::CreateAssessmentRequest create;
  create.set_request_id(Rid());
  create.set_patient_id(patient_id_);
  *create.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 5);
  for (int i = 1; i <= 10; ++i) *create.add_answers() = Answer(cpb::INSTRUMENT_ODI, "odi." + std::to_string(i), 2);
  create.mutable_red_flag_screen();
  apb::CreateAssessmentResponse created;
  ASSERT_TRUE(staff.Call(staff.assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, create, &created).ok());
  const auto current = [&] {
    ppb::GetTenantLibraryRequest get;
    ppb::GetTenantLibraryResponse got;
    const auto status = staff.Call(staff.planning.get(), &ppb::PlanningService::Stub::GetTenantLibrary, get, &got);
    return status.ok() ? got.library() : ppb::TenantLibrary();
  };
  const Base publish{kPlanning, "PublishTenantLibrary", staff_token_, {}};
  std::map<grpc::StatusCode, int> codes;
  int plans = 0;
  for (const auto& mutation : JsonMutationsOf(nlohmann::json::parse(kTenantLibrary))) {
    ppb::PublishTenantLibraryRequest request;
    request.set_request_id(Rid());
    request.set_document(mutation.document.dump());
    request.set_expected_version(current().version());
    request.set_reason("our clinics' lifting programme");
    const std::string what = "library " + mutation.label;
    if (!SendChecked(publish, request, what, mutation.value, codes).ok()) continue;
    // Accepted: it reads back clean, and planning works from it.
    const auto stored = nlohmann::json::parse(current().document(), nullptr, false);
    EXPECT_TRUE(stored.is_object()) << what;
    EXPECT_FALSE(HoldsControlCharacter(stored, /*layout_allowed=*/true)) << what;
    ppb::GeneratePlanRequest generate;
    generate.set_request_id(Rid());
    generate.set_assessment_id(created.assessment().assessment_id());
    ppb::GeneratePlanResponse generated;
    const auto planned = staff.Call(staff.planning.get(), &ppb::PlanningService::Stub::GeneratePlan, generate, &generated);
    EXPECT_TRUE(planned.ok()) << what << ": a plan from the library it published: " << planned.error_message();
    ++plans;
  }
  Report("PublishTenantLibrary (document)", codes);
  std::printf("[sweep] %d plans generated from accepted libraries\n", plans);
  EXPECT_GT(plans, 0) << "the unchanged parts of the library were refused: every change would meet the same refusal";
}

// Requests whose bytes do not parse: protobuf that is cut off, or a string field holding bytes that
// are not UTF-8 (a C++ client sends Latin-1 text as it is). gRPC's callback API would answer them
// with a bare UNIMPLEMENTED before any of our code ran; every unary RPC of the three services, and
// each one's WatchEvents stream, is served from its bytes, so each is refused INVALID_ARGUMENT
// naming the message, after the caller's identity (a caller without a token is UNAUTHENTICATED
// first). (A stream's one request is sent here as a unary call: the refusal is its status.)
TEST_F(InputSweep, RequestsThatDoNotParseAreRefusedNamingTheMessage) {
  int methods = 0, streams = 0;
  for (const std::string service : {kAssessment, kPlanning, kProgress}) {
    const auto* descriptor = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
    ASSERT_NE(descriptor, nullptr) << service;
    for (int m = 0; m < descriptor->method_count(); ++m) {
      const auto* method = descriptor->method(m);
      if (method->client_streaming()) continue;
      ++(method->server_streaming() ? streams : methods);
      const std::string path = "/" + service + "/" + method->name();
      std::vector<std::pair<std::string, std::string>> bodies = {{"cut-off protobuf", std::string("\xff\xff\xff", 3)}};
      const Descriptor* request = method->input_type();
      for (int f = 0; f < request->field_count(); ++f) {
        const FieldDescriptor* field = request->field(f);
        if (field->type() != FieldDescriptor::TYPE_STRING || field->number() > 15) continue;
        // The field's tag (length-delimited), two bytes, and bytes that are not UTF-8.
        bodies.emplace_back(field->name() + " not UTF-8",
                            std::string(1, static_cast<char>(field->number() << 3 | 2)) + std::string("\x02\xff\xfe", 3));
        break;
      }
      for (const auto& [label, bytes] : bodies) {
        grpc::ClientContext context;
        context.AddMetadata("authorization", "Bearer " + staff_token_);
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
        const auto status = CallWithBytes(ChannelOf(service), context, path, bytes);
        EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
            << path << " with " << label << ": " << status.error_code() << " " << status.error_message();
        EXPECT_NE(status.error_message().find("not a valid " + request->name()), std::string::npos)
            << path << " with " << label << ": " << status.error_message();
      }
      grpc::ClientContext anonymous;
      anonymous.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      const auto status = CallWithBytes(ChannelOf(service), anonymous, path, bodies.back().second);
      // ScoreInstrument and ListInterventions touch no patient's data, but a caller is still named.
      EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << path << ": " << status.error_message();
    }
  }
  EXPECT_GT(methods, 60) << "the three services' unary methods";
  EXPECT_EQ(streams, 3) << "the three services' WatchEvents";
  std::printf("[sweep] %d unary methods and %d streams refused requests that do not parse\n", methods, streams);
}

// A FHIR search that another service must answer, while that service is down: the caller is told
// to retry, and nothing of the deployment's topology (addresses, ports) reaches them.
class FhirPeerDown : public ClusterFixture {
 protected:
  static void SetUpTestSuite() {
    StartStoresAndCluster([](const std::string& service, Config& config) {
      static const int nobody = FreePort();  // no service listens there
      if (service == "assessment") {
        config.Set("planning-addr", "127.0.0.1:" + std::to_string(nobody));
        config.Set("progress-addr", "127.0.0.1:" + std::to_string(nobody));
      }
    });
  }
};

TEST_F(FhirPeerDown, ASearchOfADownServiceSaysRetryAndNotWhereTheServiceRuns) {
  const std::string token = MakeToken(*keys_, "t-peer-down", "ehr-1", {"integrator"});
  httplib::Client client("127.0.0.1", cluster_->assessment_http_port());
  const httplib::Headers bearer = {{"Authorization", "Bearer " + token}};
  for (const std::string type : {"CarePlan", "Flag"}) {
    const auto answer = client.Get(("/fhir/R4/" + type + "?patient=pt-down-1").c_str(), bearer);
    ASSERT_TRUE(answer) << type;
    EXPECT_EQ(answer->status, 503) << answer->body;
    EXPECT_NE(answer->body.find("a store or service is unavailable; retry"), std::string::npos) << answer->body;
    EXPECT_EQ(answer->body.find("127.0.0.1"), std::string::npos) << answer->body;
    EXPECT_EQ(answer->body.find("ipv4"), std::string::npos) << answer->body;
  }
  // Observations come from assessment and progress: the search fails whole rather than answer a
  // part as if it were all.
  const auto spanning = client.Get("/fhir/R4/Observation?patient=pt-down-1", bearer);
  ASSERT_TRUE(spanning);
  EXPECT_EQ(spanning->status, 503) << spanning->body;
  // The assessment service's own resources are still served.
  const auto own = client.Get("/fhir/R4/QuestionnaireResponse?patient=pt-down-1", bearer);
  ASSERT_TRUE(own);
  EXPECT_EQ(own->status, 200) << own->body;
}

}  // namespace
}  // namespace physio::testing
