#pragma once
// FHIR R4 search over the resources a service maps its records to (docs/fhir.md): which
// search parameters each resource type takes, their matching (token, date, _id,
// _lastUpdated), the order of a searchset (meta.lastUpdated newest first, then id) and its
// keyset cursor. Pure: the services hand it the resources of one patient (or of one record,
// for a read) and it filters and pages them. The HTTP side (URLs, Bundles, OperationOutcome)
// is libs/server's FhirRest; this is what each service's SearchFhir use case runs.
#include <nlohmann/json.hpp>

#include "physio/common/error.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace physio {

// One search parameter as the client sent it: name (with any ":modifier") and raw value.
struct FhirSearchParameter {
  std::string name;
  std::string value;
};

// A record id as a FHIR id ([A-Za-z0-9-.]{1,64}): "asm_3f2a..." becomes "asm-3f2a...".
std::string FhirIdOf(const std::string& record_id);
// The record a FHIR id of ours was made from: the part before the first '.', with the '-'
// after its prefix turned back into '_' (ids of the form "consent-<n>" stay as they are).
// Empty when `fhir_id` is not a well-formed id of ours.
std::string RecordIdOfFhirId(const std::string& fhir_id);
// Whether `id` is a well-formed FHIR id.
bool IsFhirId(const std::string& id);

// The resources of a collection Bundle (our exports) in their REST form: each keeps the id its
// mapper gave it, gets meta.lastUpdated = `last_updated` (an RFC 3339 instant) unless it has one,
// and every reference to another entry's fullUrl (urn:uuid:...) becomes "<Type>/<id>".
std::vector<nlohmann::json> FhirRestResources(nlohmann::json collection_bundle, const std::string& last_updated);

// A point or range of time as FHIR writes dates (YYYY, YYYY-MM, YYYY-MM-DD, or a dateTime with
// a zone): [begin, end) in microseconds since the epoch, UTC. nullopt when malformed.
struct FhirTimeRange {
  std::int64_t begin;
  std::int64_t end;
};
std::optional<FhirTimeRange> ParseFhirDate(const std::string& text);

// One validated search: the resource type, its parameters (unknown ones are refused with
// `strict`, else ignored and listed), and matching. Throws Error(kInvalidArgument) naming the
// parameter for a malformed value, an unsupported modifier or prefix, or (strict) an unknown name.
class FhirSearch {
 public:
  FhirSearch(std::string resource_type, const std::vector<FhirSearchParameter>& parameters, bool strict);

  const std::string& resource_type() const { return resource_type_; }
  // Parameter names that were not understood and not applied (lenient handling).
  const std::vector<std::string>& ignored() const { return ignored_; }
  // Whether the resource is of the type and satisfies every parameter.
  bool Matches(const nlohmann::json& resource) const;

  struct Page {
    std::vector<nlohmann::json> resources;
    std::string next_cursor;  // empty on the last page
  };
  // The matching `candidates`, newest first (meta.lastUpdated, then id), `count` of them after
  // `cursor` (empty: from the start). A cursor is bound to `scope` (the tenant, patient and
  // search): one from another search is INVALID_ARGUMENT naming "_cursor".
  Page Select(std::vector<nlohmann::json> candidates, int count, const std::string& cursor,
              const std::string& scope) const;

  // The search parameters a resource type supports (beyond patient, _count and _cursor), for the
  // CapabilityStatement; empty for a type that is not searchable here.
  struct ParameterInfo {
    std::string name;
    std::string type;  // "token", "date", "uri"
    std::string documentation;
  };
  static std::vector<ParameterInfo> SupportedParameters(const std::string& resource_type);

 private:
  struct Criterion;
  std::string resource_type_;
  std::vector<std::shared_ptr<const Criterion>> criteria_;
  std::vector<std::string> ignored_;
};

// A SearchFhir request (any service's: they share one shape) checked and turned into a search:
// the type must be one of `types`, count 0-100 (0: 20), a read's id one of ours; a read is a
// search with _id. Throws Error(kInvalidArgument) naming the field; an id that is not ours is
// NOT_FOUND (as a read of a record that does not exist).
struct PreparedFhirSearch {
  FhirSearch search;
  int count;
  std::string record_id;  // a read: the record behind the id; empty for a search
  std::string scope;      // what the cursor is bound to, with the tenant and patient added by the caller
};
PreparedFhirSearch PrepareFhirSearch(const std::string& resource_type, const std::vector<std::string>& types,
                                     const std::string& id, std::vector<FhirSearchParameter> parameters, bool strict,
                                     int count);
template <typename Request>
PreparedFhirSearch PrepareFhirSearch(const Request& request, const std::vector<std::string>& types) {
  std::vector<FhirSearchParameter> parameters;
  for (const auto& parameter : request.parameters()) parameters.push_back({parameter.name(), parameter.value()});
  return PrepareFhirSearch(request.resource_type(), types, request.id(), std::move(parameters), request.strict(),
                           request.count());
}

// A SearchFhir response (any service's) for the page of `candidates` the prepared search selects;
// `bound_to` (the tenant and patient) binds its cursor. A read that finds nothing is NOT_FOUND.
template <typename Response, typename Request>
Response AnswerFhirSearch(const PreparedFhirSearch& prepared, const Request& request,
                          std::vector<nlohmann::json> candidates, const std::string& bound_to) {
  auto page = prepared.search.Select(std::move(candidates), prepared.count, request.cursor(), bound_to + "|" + prepared.scope);
  if (!prepared.record_id.empty() && page.resources.empty()) {
    ThrowNotFound(request.resource_type() + "/" + request.id());
  }
  Response response;
  for (const auto& resource : page.resources) response.add_resources_json(resource.dump());
  response.set_next_cursor(page.next_cursor);
  for (const auto& name : prepared.search.ignored()) response.add_ignored_parameters(name);
  return response;
}

}  // namespace physio
