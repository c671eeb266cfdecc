#include "fhir_audit.h"

#include <google/protobuf/util/time_util.h>

#include "physio/common/fhir.h"

namespace physio::assessment {

namespace {
using nlohmann::json;

json Coding(const std::string& system, const std::string& code, const std::string& display) {
  return {{"system", system}, {"code", code}, {"display", display}};
}

enum class Interaction { kRead, kQuery, kCreate, kUpdate };

// What the RPC resembles among FHIR's RESTful interactions, by its verb.
Interaction InteractionOf(const std::string& action) {
  auto starts = [&](const char* prefix) { return action.rfind(prefix, 0) == 0; };
  if (starts("List") || starts("Watch") || starts("Search")) return Interaction::kQuery;
  if (starts("Get") || starts("Export") || starts("Score")) return Interaction::kRead;
  if (starts("Create") || starts("Start") || starts("Record") || starts("Import") || starts("Enrol") ||
      starts("Report") || starts("Log") || starts("BreakGlass") || starts("Propose")) {
    return Interaction::kCreate;
  }
  return Interaction::kUpdate;
}

// FHIR's AuditEvent.outcome: 0 success, 4 minor failure (the request was refused or failed as the
// caller's), 8 serious failure (the service could not serve it).
std::string OutcomeCode(const std::string& outcome) {
  if (outcome == "OK") return "0";
  if (outcome == "INTERNAL" || outcome == "UNAVAILABLE" || outcome == "DATA_LOSS" || outcome == "UNKNOWN") return "8";
  return "4";
}
}  // namespace

json AuditEventResource(const v1::AuditRecord& record, const std::string& patient_system) {
  const Interaction interaction = InteractionOf(record.action());
  const bool has_patient = !record.patient_id().empty();
  json event = {{"resourceType", "AuditEvent"}, {"id", record.service() + "-" + std::to_string(record.event_id())}};
  if (record.outcome() == "OK") {
    static const char* kProfiles[2][4] = {{"Read", "Query", "Create", "Update"},
                                          {"PatientRead", "PatientQuery", "PatientCreate", "PatientUpdate"}};
    event["meta"] = {{"profile", json::array({std::string("https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.") +
                                              kProfiles[has_patient ? 1 : 0][static_cast<int>(interaction)]})}};
  }
  event["type"] = Coding("http://terminology.hl7.org/CodeSystem/audit-event-type", "rest", "Restful Operation");
  static const char* kSubtypes[4] = {"read", "search-type", "create", "update"};
  event["subtype"] = json::array(
      {Coding("http://hl7.org/fhir/restful-interaction", kSubtypes[static_cast<int>(interaction)],
              kSubtypes[static_cast<int>(interaction)]),
       Coding("https://physio-backend.org/fhir/CodeSystem/rpc", record.action(), record.action())});
  static const char* kActions[4] = {"R", "E", "C", "U"};
  event["action"] = kActions[static_cast<int>(interaction)];
  event["recorded"] = google::protobuf::util::TimeUtil::ToString(record.occurred_time());
  event["outcome"] = OutcomeCode(record.outcome());
  if (record.outcome() != "OK") event["outcomeDesc"] = record.outcome();

  json agents = json::array();
  // The user (the token's subject), who asked.
  const bool reads = interaction == Interaction::kRead || interaction == Interaction::kQuery;
  agents.push_back({{"type", {{"coding", json::array({reads ? Coding("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP", "information recipient")
                                                           : Coding("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "AUT", "author (originator)")})}}},
                    {"who", {{"identifier", {{"system", "https://physio-backend.org/fhir/principal"}, {"value", record.actor()}}}}},
                    {"role", json::array({{{"text", record.actor_roles()}}})},
                    {"requestor", true}});
  // The client (Source Role ID) at its network address, and our service (Destination Role ID).
  json client = {{"type", {{"coding", json::array({Coding("http://dicom.nema.org/resources/ontology/DCM", "110153", "Source Role ID")})}}},
                 {"who", {{"display", "client"}}},
                 {"requestor", false}};
  if (!record.peer().empty()) client["network"] = {{"address", record.peer()}, {"type", "2"}};
  agents.push_back(client);
  agents.push_back({{"type", {{"coding", json::array({Coding("http://dicom.nema.org/resources/ontology/DCM", "110152", "Destination Role ID")})}}},
                    {"who", {{"display", "physio-" + record.service()}}},
                    {"requestor", false}});
  event["agent"] = agents;
  event["source"] = {{"observer", {{"display", "physio-" + record.service()}}},
                     {"type", json::array({Coding("http://terminology.hl7.org/CodeSystem/security-source-type", "4", "Application Server")})}};

  json entities = json::array();
  entities.push_back({{"what", {{"identifier", {{"type", {{"coding", json::array({Coding("https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType", "XrequestId", "X-Request-Id")})}}},
                                                {"value", record.request_id()}}}}},
                      {"type", Coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "4", "Other")}});
  if (has_patient) {
    entities.push_back({{"what", {{"reference", "Patient/" + record.patient_id()},
                                  {"identifier", {{"system", patient_system}, {"value", record.patient_id()}}}}},
                        {"type", Coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "1", "Person")},
                        {"role", Coding("http://terminology.hl7.org/CodeSystem/object-role", "1", "Patient")}});
  }
  if (!record.resource_id().empty()) {
    entities.push_back({{"what", {{"identifier", {{"system", "https://physio-backend.org/fhir/record-id"}, {"value", record.resource_id()}}}}},
                        {"type", Coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "2", "System Object")}});
  }
  if (!record.claimed_patient_id().empty()) {
    // What a refused request named: not an access to that patient, so no Patient role.
    entities.push_back({{"what", {{"identifier", {{"system", patient_system}, {"value", record.claimed_patient_id()}}}}},
                        {"type", Coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "4", "Other")},
                        {"description", "patient named by a refused request"}});
  }
  if (record.repeats() > 1) {
    entities.push_back({{"what", {{"display", "aggregated refusals"}}},
                        {"type", Coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "4", "Other")},
                        {"detail", json::array({{{"type", "repeats"}, {"valueString", std::to_string(record.repeats())}}})}});
  }
  event["entity"] = entities;
  return event;
}

std::string AuditEventBundle(const std::vector<v1::AuditRecord>& records, const std::string& patient_system) {
  json entries = json::array();
  for (const auto& record : records) {
    const json resource = AuditEventResource(record, patient_system);
    entries.push_back({{"fullUrl", FhirUrnUuid("audit:" + resource["id"].get<std::string>())}, {"resource", resource}});
  }
  json bundle = {{"resourceType", "Bundle"}, {"type", "collection"}, {"entry", entries}};
  return bundle.dump();
}

}  // namespace physio::assessment
