#include "discharge_summary.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

namespace physio::progress {

namespace pb = physio::progress::v1;
namespace plan_pb = physio::planning::v1;
namespace cpb = physio::common::v1;
using google::protobuf::util::TimeUtil;

namespace {
std::string Number(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%g", std::round(value * 10.0) / 10.0);
  return text;
}

std::string Day(std::int64_t seconds) { return TimeUtil::ToString(TimeUtil::SecondsToTimestamp(seconds)).substr(0, 10); }

const char* MeasureName(cpb::Instrument instrument) {
  switch (instrument) {
    case cpb::INSTRUMENT_NPRS: return "Pain (NPRS, 0-10, lower is better)";
    case cpb::INSTRUMENT_ODI: return "Oswestry Disability Index (0-100%, lower is better)";
    case cpb::INSTRUMENT_RMDQ: return "Roland-Morris Disability Questionnaire (0-24, lower is better)";
    case cpb::INSTRUMENT_PSFS: return "Patient-Specific Functional Scale (0-10, higher is better)";
    default: return "";
  }
}

const char* ReasonWords(plan_pb::DischargeReason reason) {
  switch (reason) {
    case plan_pb::DISCHARGE_REASON_GOALS_MET: return "the goals of treatment were met";
    case plan_pb::DISCHARGE_REASON_SELF_MANAGING: return "the patient is managing on their own with the home programme";
    case plan_pb::DISCHARGE_REASON_REFERRED: return "referred on";
    case plan_pb::DISCHARGE_REASON_DID_NOT_ATTEND: return "the patient stopped attending";
    case plan_pb::DISCHARGE_REASON_PATIENT_CHOICE: return "the patient chose to stop treatment";
    default: return "not recorded";
  }
}

// Items that are treatment (not advice against, not a referral, not the safety net or flare-up plan).
bool IsTreatment(const plan_pb::PlanItem& item) {
  return item.kind() != plan_pb::PLAN_ITEM_KIND_NOT_RECOMMENDED && item.kind() != plan_pb::PLAN_ITEM_KIND_REFERRAL &&
         item.item_id().rfind("safety.", 0) != 0 && item.item_id() != "selfcare.flare_up_plan";
}
}  // namespace

pb::DischargeSummary BuildDischargeSummary(const std::string& patient_id, const EndedEpisode& episode,
                                           const PatientRecords& records, const pb::ProgressSummary& at_end) {
  const plan_pb::Plan& plan = episode.plan;
  pb::DischargeSummary out;
  out.set_patient_id(patient_id);
  out.set_episode_id(episode.episode_id);
  out.set_plan_id(plan.plan_id());
  *out.mutable_start_time() = TimeUtil::SecondsToTimestamp(episode.start_seconds);
  *out.mutable_end_time() = TimeUtil::SecondsToTimestamp(episode.end_seconds);
  out.set_weeks(static_cast<int>(std::max<std::int64_t>(0, episode.end_seconds - episode.start_seconds) / (7 * 24 * 3600)));
  out.set_outcome(plan.status());
  out.set_discharge_reason(plan.discharge_reason());
  out.set_relapse(plan.relapse());
  int visits = 0;
  for (const auto& visit : records.visits) visits += visit.visit_time().seconds() >= episode.start_seconds ? 1 : 0;
  out.set_visits(visits);

  // Baseline against discharge, with the progress summary's judgement of each change.
  for (const auto& baseline : plan.baseline_scores()) {
    const auto instrument = baseline.instrument();
    if (instrument != cpb::INSTRUMENT_NPRS && instrument != cpb::INSTRUMENT_ODI && instrument != cpb::INSTRUMENT_RMDQ &&
        instrument != cpb::INSTRUMENT_PSFS) {
      continue;
    }
    auto* score = out.add_scores();
    score->set_instrument(instrument);
    score->set_baseline(baseline.score());
    for (const auto& change : at_end.outcome_changes()) {
      if (change.instrument() != instrument) continue;
      score->set_at_discharge(change.latest());
      score->set_improved_meaningfully(change.improved_meaningfully());
      score->set_rule(change.rule());
    }
    if (instrument == cpb::INSTRUMENT_NPRS && !score->has_at_discharge() && at_end.has_latest_pain()) {
      score->set_at_discharge(at_end.latest_pain());
      score->set_rule("2 points");
    }
  }
  int prescribed = 0;
  for (const auto& week : at_end.adherence()) prescribed += week.prescribed_sessions();
  if (prescribed > 0) out.set_adherence_percent(at_end.adherence_percent());

  // What helped: the treatment items used most, at home and at visits.
  std::map<std::string, pb::HelpedItem> used;
  for (const auto& item : plan.items()) {
    if (!IsTreatment(item)) continue;
    pb::HelpedItem helped;
    helped.set_item_id(item.item_id());
    helped.set_title(item.title());
    used[item.item_id()] = helped;
  }
  for (const auto& log : records.home_logs) {
    if (auto found = used.find(log.exercise_id()); found != used.end()) {
      found->second.set_home_sessions(found->second.home_sessions() + 1);
    }
  }
  for (const auto& visit : records.visits) {
    for (const auto& id : visit.delivered_item_ids()) {
      if (auto found = used.find(id); found != used.end()) {
        found->second.set_visits_delivered(found->second.visits_delivered() + 1);
      }
    }
  }
  std::vector<pb::HelpedItem> ranked;
  for (auto& [id, helped] : used) {
    if (helped.home_sessions() + helped.visits_delivered() > 0) ranked.push_back(helped);
  }
  std::stable_sort(ranked.begin(), ranked.end(), [](const pb::HelpedItem& a, const pb::HelpedItem& b) {
    return a.home_sessions() != b.home_sessions() ? a.home_sessions() > b.home_sessions()
                                                  : a.visits_delivered() > b.visits_delivered();
  });
  for (size_t i = 0; i < ranked.size() && i < 5; ++i) *out.add_helped() = ranked[i];

  // The plan's own flare-up plan and safety net, and when to book a review.
  for (const auto& item : plan.items()) {
    if (item.item_id() == "selfcare.flare_up_plan") out.set_flare_up_plan(item.instructions());
    if (item.item_id() == "safety.cauda_equina") out.set_seek_urgent_care_if(item.instructions());
  }
  if (out.seek_urgent_care_if().empty()) {
    out.set_seek_urgent_care_if(
        "Go to an emergency department at once if you notice numbness around the back passage or genitals, new "
        "difficulty passing urine or loss of bladder or bowel control, new sexual dysfunction, or numbness or "
        "weakness in both legs or leg weakness that is getting worse.");
  }
  out.add_come_back_if("your pain stays 2 or more points above your usual for more than 2 days, or a flare-up has not "
                       "settled after a week of your flare-up plan");
  out.add_come_back_if("pain spreads down your leg, or you notice numbness, pins and needles or weakness in a leg");
  out.add_come_back_if("your back stops you from working or from your usual activities again");
  out.add_come_back_if("you would like help to progress your exercises: a return within a few months continues this "
                       "episode of care, with your records and plan");
  out.add_sources("NICE NG59 1.2.1 (self-management), 1.2.2-1.2.3 (exercise programmes)");
  out.add_sources("GIRFT 2023, National Suspected Cauda Equina Syndrome Pathway (safety net)");
  out.add_sources("Outcome changes: the progress summary's rules (docs/clinical-rules.md)");

  // The same, as plain text for the patient and their GP.
  std::string text = "Discharge summary: physiotherapy for low back pain\n";
  text += "Episode of care: " + Day(episode.start_seconds) + " to " + Day(episode.end_seconds) + " (" +
          std::to_string(out.weeks()) + " weeks, " + std::to_string(visits) + " visits)" +
          (plan.relapse() ? "; taken up again after an earlier discharge" : "") + "\n";
  text += "Outcome: " + std::string(plan.status() == plan_pb::PLAN_STATUS_COMPLETED ? "completed" : "discharged") +
          "; reason: " + ReasonWords(plan.discharge_reason()) + "\n";
  if (!plan.last_change_reason().empty()) text += "Clinician's note: " + plan.last_change_reason() + "\n";
  text += "\nScores at the start and at discharge:\n";
  for (const auto& score : out.scores()) {
    text += "- " + std::string(MeasureName(score.instrument())) + ": " + Number(score.baseline()) + " at the start, " +
            (score.has_at_discharge() ? Number(score.at_discharge()) + " at discharge" : "not measured again") +
            (score.has_at_discharge()
                 ? (score.improved_meaningfully() ? " (a meaningful improvement: " : " (less than a meaningful change: ") +
                       score.rule() + ")"
                 : "") +
            "\n";
  }
  if (at_end.has_work()) {
    *out.mutable_work() = at_end.work();
    auto words = [](physio::assessment::v1::WorkStatus status) -> std::string {
      switch (status) {
        case physio::assessment::v1::WORK_STATUS_WORKING: return "at work, usual duties";
        case physio::assessment::v1::WORK_STATUS_MODIFIED_DUTIES: return "at work on modified duties";
        case physio::assessment::v1::WORK_STATUS_OFF_WORK: return "off work";
        case physio::assessment::v1::WORK_STATUS_NOT_EMPLOYED: return "not in paid work";
        case physio::assessment::v1::WORK_STATUS_RETIRED: return "retired";
        default: return "not recorded";
      }
    };
    text += "Work: " + words(at_end.work().at_assessment()) + " at the start; " + words(at_end.work().latest()) +
            (at_end.work().has_latest_hours_per_week()
                 ? " (" + std::to_string(at_end.work().latest_hours_per_week()) + " hours a week)"
                 : std::string()) +
            " at discharge\n";
  }
  if (out.has_adherence_percent()) {
    text += "Home programme: " + Number(out.adherence_percent()) + "% of the prescribed sessions logged\n";
  }
  if (out.helped_size() > 0) {
    text += "\nWhat was used most:\n";
    for (const auto& helped : out.helped()) {
      text += "- " + helped.title() + ": " + std::to_string(helped.home_sessions()) + " home sessions, " +
              std::to_string(helped.visits_delivered()) + " visits\n";
    }
  }
  if (!out.flare_up_plan().empty()) text += "\nIf your back flares up: " + out.flare_up_plan() + "\n";
  text += "\nBook a review if:\n";
  for (const auto& reason : out.come_back_if()) text += "- " + reason + "\n";
  text += "\nUrgent: " + out.seek_urgent_care_if() + "\n";
  out.set_text(text);
  return out;
}

}  // namespace physio::progress
