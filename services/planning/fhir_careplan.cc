#include "fhir_careplan.h"

#include <google/protobuf/util/time_util.h>

#include <nlohmann/json.hpp>

#include "physio/common/fhir.h"
#include "physio/common/fhir_search.h"

namespace physio::planning {

namespace {
using nlohmann::json;
namespace cpb = physio::common::v1;

std::string CarePlanStatus(v1::PlanStatus status) {
  switch (status) {
    case v1::PLAN_STATUS_DRAFT: return "draft";
    case v1::PLAN_STATUS_ACTIVE: return "active";
    case v1::PLAN_STATUS_SUPERSEDED: return "revoked";
    case v1::PLAN_STATUS_COMPLETED:
    case v1::PLAN_STATUS_DISCHARGED: return "completed";
    default: return "unknown";
  }
}

std::string GoalStatus(v1::PlanStatus status) {
  switch (status) {
    case v1::PLAN_STATUS_DRAFT: return "proposed";
    case v1::PLAN_STATUS_ACTIVE: return "active";
    case v1::PLAN_STATUS_COMPLETED: return "completed";
    default: return "cancelled";
  }
}

json MeasureFor(cpb::Instrument instrument) {
  switch (instrument) {
    case cpb::INSTRUMENT_NPRS: return FhirConcept("http://loinc.org", "72514-3", "Pain severity 0-10");
    case cpb::INSTRUMENT_ODI: return FhirConcept("http://loinc.org", "97909-6", "Oswestry Disability Index score");
    case cpb::INSTRUMENT_RMDQ: return FhirConcept(kPhysioCodeSystem, "rmdq-score", "Roland-Morris Disability Questionnaire score");
    case cpb::INSTRUMENT_PSFS: return FhirConcept(kPhysioCodeSystem, "psfs-activity", "Patient-Specific Functional Scale activity rating");
    // The physical-activity goal has no instrument (WHO 2020 weekly minutes).
    case cpb::INSTRUMENT_UNSPECIFIED:
      return FhirConcept(kPhysioCodeSystem, "weekly-activity-minutes", "Moderate physical activity, minutes a week");
    default: return FhirConcept(kPhysioCodeSystem, "outcome", "outcome");
  }
}
}  // namespace

std::vector<json> PlanRestResources(const v1::Plan& plan) {
  using google::protobuf::util::TimeUtil;
  const auto& changed = plan.has_update_time() ? plan.update_time() : plan.create_time();
  return FhirRestResources(PlanFhirBundle(plan), TimeUtil::ToString(changed));
}

std::string PlanToFhirBundle(const v1::Plan& plan) { return PlanFhirBundle(plan).dump(); }

json PlanFhirBundle(const v1::Plan& plan) {
  using google::protobuf::util::TimeUtil;
  const std::string seed = plan.plan_id() + "/r" + std::to_string(plan.revision());
  const json subject = {{"reference", "Patient/" + plan.patient_id()}};
  json entries = json::array();
  json goal_refs = json::array();
  for (int i = 0; i < plan.goals_size(); ++i) {
    const auto& goal = plan.goals(i);
    const std::string url = FhirUrnUuid(seed + "/goal/" + std::to_string(i));
    goal_refs.push_back({{"reference", url}});
    json target = {{"measure", MeasureFor(goal.instrument())}, {"detailQuantity", {{"value", goal.target_score()}}}};
    if (plan.has_create_time() && plan.expected_duration_weeks() > 0) {
      target["dueDuration"] = {{"value", plan.expected_duration_weeks()}, {"unit", "wk"},
                               {"system", "http://unitsofmeasure.org"}, {"code", "wk"}};
    }
    entries.push_back({{"fullUrl", url},
                       {"resource", {{"resourceType", "Goal"},
                                     {"id", FhirIdOf(plan.plan_id()) + ".goal-" + std::to_string(i)},
                                     {"lifecycleStatus", GoalStatus(plan.status())},
                                     {"description", {{"text", goal.description()}}},
                                     {"subject", subject},
                                     {"target", json::array({target})}}}});
  }

  json activities = json::array();
  for (const auto& item : plan.items()) {
    json detail = {{"status", plan.status() == v1::PLAN_STATUS_ACTIVE ? "in-progress" : "not-started"},
                   {"description", item.title() + (item.instructions().empty() ? "" : ". " + item.instructions()) +
                                       " Source: " + item.source()},
                   {"reasonCode", json::array({{{"text", item.reason()}}})}};
    switch (item.kind()) {
      case v1::PLAN_ITEM_KIND_EXERCISE:
        detail["code"] = FhirConcept("http://snomed.info/sct", "229065009", "Exercise therapy");
        detail["code"]["text"] = item.title();
        if (item.dose().sessions_per_week() > 0) {
          detail["scheduledTiming"] = {
              {"repeat", {{"frequency", item.dose().sessions_per_week()}, {"period", 1}, {"periodUnit", "wk"}}}};
        }
        break;
      case v1::PLAN_ITEM_KIND_NOT_RECOMMENDED:
        detail["code"] = FhirConcept(kPhysioCodeSystem, item.item_id(), item.title());
        detail["doNotPerform"] = true;
        break;
      case v1::PLAN_ITEM_KIND_REFERRAL:
        detail["kind"] = "ServiceRequest";
        detail["code"] = FhirConcept(kPhysioCodeSystem, item.item_id(), item.title());
        break;
      default:
        detail["code"] = FhirConcept(kPhysioCodeSystem, item.item_id(), item.title());
        break;
    }
    if (!goal_refs.empty() && item.kind() != v1::PLAN_ITEM_KIND_NOT_RECOMMENDED) detail["goal"] = goal_refs;
    activities.push_back({{"detail", detail}});
  }

  json careplan = {{"resourceType", "CarePlan"},
                   {"id", FhirIdOf(plan.plan_id())},
                   {"identifier", json::array({{{"system", std::string(kPhysioCodeSystem) + "/plan"}, {"value", plan.plan_id()}}})},
                   {"status", CarePlanStatus(plan.status())},
                   {"intent", "plan"},
                   {"category", json::array({FhirConcept("http://snomed.info/sct", "279039007", "Low back pain")})},
                   {"title", plan.type() == v1::PLAN_TYPE_REFERRAL ? "Referral" : "Physiotherapy plan for low back pain"},
                   {"description", "Revision " + std::to_string(plan.revision()) + "; rules " + plan.rules_version() +
                                       "; library " + plan.library_version()},
                   {"subject", subject},
                   {"activity", activities}};
  if (plan.has_create_time()) careplan["created"] = TimeUtil::ToString(plan.create_time());
  if (!goal_refs.empty()) careplan["goal"] = goal_refs;
  entries.insert(entries.begin(),
                 json::object({{"fullUrl", FhirUrnUuid(seed + "/careplan")}, {"resource", std::move(careplan)}}));

  json bundle = {{"resourceType", "Bundle"}, {"id", plan.plan_id()}, {"type", "collection"}, {"entry", std::move(entries)}};
  if (plan.has_update_time()) bundle["timestamp"] = TimeUtil::ToString(plan.update_time());
  return bundle;
}

}  // namespace physio::planning
