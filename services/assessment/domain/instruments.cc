#include "instruments.h"

#include <cmath>
#include <map>

#include "physio/common/error.h"

namespace physio::assessment {

namespace {
InstrumentSpec MakeOdi() {
  InstrumentSpec spec{InstrumentKind::kOdi, "odi", {}};
  for (int section = 1; section <= 10; ++section) {
    // Section 8 (sex life) is the one the form itself lets patients skip; any
    // section may still go unanswered, which the validity policy bounds.
    spec.items.push_back({"odi." + std::to_string(section), 0, 5, section == 8});
  }
  return spec;
}

// The latest answer per item of one instrument.
std::map<std::string, ItemAnswer> LatestAnswers(InstrumentKind kind, const std::vector<ItemAnswer>& answers) {
  std::map<std::string, ItemAnswer> latest;
  for (const auto& answer : answers) {
    if (answer.instrument == kind) latest[answer.item_id] = answer;
  }
  return latest;
}
}  // namespace

const InstrumentSpec& SpecFor(InstrumentKind kind) {
  static const InstrumentSpec kNprs{InstrumentKind::kNprs, "nprs", {{"nprs", 0, 10, false}}};
  static const InstrumentSpec kOdi = MakeOdi();
  return kind == InstrumentKind::kNprs ? kNprs : kOdi;
}

const std::vector<InstrumentKind>& IntakeInstruments() {
  static const std::vector<InstrumentKind> kIntake = {InstrumentKind::kNprs, InstrumentKind::kOdi};
  return kIntake;
}

void ValidateAnswer(const std::string& field, const ItemAnswer& answer) {
  const auto& spec = SpecFor(answer.instrument);
  for (const auto& item : spec.items) {
    if (item.id != answer.item_id) continue;
    if (answer.declined) {
      if (!item.may_decline) ThrowInvalidArgument(field + ".declined", spec.code + " item " + item.id + " may not be declined");
      return;
    }
    if (answer.value < item.min_value || answer.value > item.max_value) {
      ThrowInvalidArgument(field + ".value", spec.code + " item " + item.id + " must be " +
                                                 std::to_string(item.min_value) + "-" + std::to_string(item.max_value) +
                                                 ", got " + std::to_string(answer.value));
    }
    return;
  }
  ThrowInvalidArgument(field + ".item_id", "'" + answer.item_id + "' is not an item of " + spec.code);
}

std::string OdiBand(double percent) {
  if (percent <= 20) return "minimal";
  if (percent <= 40) return "moderate";
  if (percent <= 60) return "severe";
  if (percent <= 80) return "crippled";
  return "bed-bound";
}

Completeness CompletenessOf(InstrumentKind kind, const std::vector<ItemAnswer>& answers, const ScoringPolicy& policy) {
  const auto& spec = SpecFor(kind);
  auto latest = LatestAnswers(kind, answers);
  Completeness result;
  result.total_items = static_cast<int>(spec.items.size());
  int scored = 0;
  for (const auto& [id, answer] : latest) {
    ++result.answered_items;
    if (!answer.declined) ++scored;
  }
  if (kind == InstrumentKind::kNprs) {
    result.complete = scored == 1;
  } else {
    // Every section must be seen (answered or declined) so a half-filled screen is
    // not scored by accident; declined ones count against the validity policy.
    result.complete = result.answered_items == result.total_items &&
                      result.total_items - scored <= policy.odi_max_unanswered;
  }
  return result;
}

InstrumentResult Score(InstrumentKind kind, const std::vector<ItemAnswer>& answers, const ScoringPolicy& policy) {
  const auto& spec = SpecFor(kind);
  auto latest = LatestAnswers(kind, answers);
  InstrumentResult result{kind};
  for (const auto& [id, answer] : latest) {
    if (answer.declined) {
      ++result.declined_items;
    } else {
      ++result.answered_items;
      result.raw_sum += answer.value;
    }
  }
  if (kind == InstrumentKind::kNprs) {
    if (result.answered_items != 1) throw Error(ErrorCode::kFailedPrecondition, "nprs: the pain score is not answered");
    result.score = result.raw_sum;
    result.mcid = 2;  // Ostelo 2008; Childs 2005
    return result;
  }
  const int total = static_cast<int>(spec.items.size());
  const int seen = static_cast<int>(latest.size());
  if (seen < total) {
    std::string missing;
    for (const auto& item : spec.items) {
      if (!latest.contains(item.id)) missing += (missing.empty() ? "" : ", ") + item.id;
    }
    throw Error(ErrorCode::kFailedPrecondition, "odi: sections not answered or declined: " + missing);
  }
  if (total - result.answered_items > policy.odi_max_unanswered) {
    throw Error(ErrorCode::kFailedPrecondition, "odi: " + std::to_string(total - result.answered_items) +
                                                    " sections declined; at most " +
                                                    std::to_string(policy.odi_max_unanswered) + " may be");
  }
  // Fairbank & Pynsent 2000: sum / (5 x answered sections) x 100, to one decimal.
  const double percent = 100.0 * result.raw_sum / (5.0 * result.answered_items);
  result.score = std::round(percent * 10.0) / 10.0;
  result.band = OdiBand(result.score);
  result.mcid = 10;  // Ostelo 2008 (or 30%); 6 in physiotherapy settings (Fritz & Irrgang 2001)
  return result;
}

}  // namespace physio::assessment
