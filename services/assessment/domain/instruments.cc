#include "instruments.h"

#include <cmath>
#include <map>

#include "physio/common/error.h"
#include "physio/common/validation.h"

namespace physio::assessment {

namespace {
InstrumentSpec Numbered(InstrumentKind kind, const std::string& code, int count, int min_value, int max_value) {
  InstrumentSpec spec{kind, code, {}};
  for (int i = 1; i <= count; ++i) spec.items.push_back({code + "." + std::to_string(i), min_value, max_value});
  return spec;
}

InstrumentSpec MakeOdi() {
  auto spec = Numbered(InstrumentKind::kOdi, "odi", 10, 0, 5);
  // Fairbank & Pynsent 2000: any section may be skipped (not only section 8, sex
  // life); the score is then over the sections answered, valid up to the policy's
  // number of skipped sections. A section is skipped when declined or never answered.
  for (auto& item : spec.items) {
    item.may_decline = true;
    item.required = false;
  }
  return spec;
}

InstrumentSpec MakeStartBack() {
  auto spec = Numbered(InstrumentKind::kStartBack, "sbt", 9, 0, 1);  // 0 disagree, 1 agree
  spec.items[8].max_value = 4;  // item 9: 0 not at all, 1 slightly, 2 moderately, 3 very much, 4 extremely
  return spec;
}

InstrumentSpec MakeFabq() {
  auto spec = Numbered(InstrumentKind::kFabq, "fabq", 16, 0, 6);
  // Items 1, 8, 13, 14 and 16 are in neither subscale (Waddell 1993): optional here.
  for (int unscored : {1, 8, 13, 14, 16}) spec.items[unscored - 1].required = false;
  return spec;
}

InstrumentSpec MakePsfs() {
  auto spec = Numbered(InstrumentKind::kPsfs, "psfs", 5, 0, 10);
  for (auto& item : spec.items) item.needs_text = true;
  // 3 to 5 activities: the count rule is checked as a whole, not per item.
  for (auto& item : spec.items) item.required = false;
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

int ValueOf(const std::map<std::string, ItemAnswer>& latest, const std::string& id) {
  auto it = latest.find(id);
  return it == latest.end() || it->second.declined ? 0 : it->second.value;
}

double RoundTo(double value, double unit) { return std::round(value / unit) * unit; }

constexpr int kPsfsMinActivities = 3;

std::string MissingRequired(const InstrumentSpec& spec, const std::map<std::string, ItemAnswer>& latest) {
  std::string missing;
  for (const auto& item : spec.items) {
    if (item.required && !latest.contains(item.id)) missing += (missing.empty() ? "" : ", ") + item.id;
  }
  return missing;
}
}  // namespace

const InstrumentSpec& SpecFor(InstrumentKind kind) {
  static const InstrumentSpec kNprs{InstrumentKind::kNprs, "nprs", {{"nprs", 0, 10}}};
  static const InstrumentSpec kOdi = MakeOdi();
  static const InstrumentSpec kRmdq = Numbered(InstrumentKind::kRmdq, "rmdq", 24, 0, 1);  // 0 no, 1 yes
  static const InstrumentSpec kStartBack = MakeStartBack();
  static const InstrumentSpec kFabq = MakeFabq();
  static const InstrumentSpec kPsfs = MakePsfs();
  switch (kind) {
    case InstrumentKind::kNprs: return kNprs;
    case InstrumentKind::kOdi: return kOdi;
    case InstrumentKind::kRmdq: return kRmdq;
    case InstrumentKind::kStartBack: return kStartBack;
    case InstrumentKind::kFabq: return kFabq;
    case InstrumentKind::kPsfs: return kPsfs;
  }
  return kNprs;
}

const std::vector<InstrumentKind>& AllInstruments() {
  static const std::vector<InstrumentKind> kAll = {InstrumentKind::kNprs,      InstrumentKind::kOdi,
                                                   InstrumentKind::kRmdq,      InstrumentKind::kStartBack,
                                                   InstrumentKind::kFabq,      InstrumentKind::kPsfs};
  return kAll;
}

std::optional<InstrumentKind> KindOfCode(std::string_view code) {
  for (InstrumentKind kind : AllInstruments()) {
    if (SpecFor(kind).code == code) return kind;
  }
  return std::nullopt;
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
    if (item.needs_text && IsBlank(answer.text)) {
      ThrowInvalidArgument(field + ".text", spec.code + " item " + item.id + " needs the activity the patient names");
    }
    if (!item.needs_text && !answer.text.empty()) {
      ThrowInvalidArgument(field + ".text", spec.code + " item " + item.id + " takes no text");
    }
    if (answer.text.size() > kMaxAnswerText) {
      ThrowInvalidArgument(field + ".text", "at most " + std::to_string(kMaxAnswerText) + " characters");
    }
    if (auto why = ControlCharacterRefusal(answer.text, LineBreaks::kOneLine); !why.empty()) {
      ThrowInvalidArgument(field + ".text", why);
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

StartBackRisk StartBackRiskOf(int total, int psychosocial) {
  if (total <= 3) return StartBackRisk::kLow;
  return psychosocial >= 4 ? StartBackRisk::kHigh : StartBackRisk::kMedium;
}

std::string StartBackRiskName(StartBackRisk risk) {
  switch (risk) {
    case StartBackRisk::kLow: return "low";
    case StartBackRisk::kMedium: return "medium";
    case StartBackRisk::kHigh: return "high";
  }
  return "";
}

Completeness CompletenessOf(InstrumentKind kind, const std::vector<ItemAnswer>& answers, const ScoringPolicy& policy) {
  const auto& spec = SpecFor(kind);
  auto latest = LatestAnswers(kind, answers);
  Completeness result;
  result.total_items = static_cast<int>(spec.items.size());
  result.answered_items = static_cast<int>(latest.size());
  int declined = 0;
  for (const auto& [id, answer] : latest) declined += answer.declined ? 1 : 0;
  if (kind == InstrumentKind::kPsfs) {
    result.complete = result.answered_items >= kPsfsMinActivities;
  } else if (kind == InstrumentKind::kOdi) {
    result.complete = result.total_items - (result.answered_items - declined) <= policy.odi_max_unanswered;
  } else {
    result.complete = MissingRequired(spec, latest).empty();
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
  if (kind == InstrumentKind::kPsfs) {
    if (result.answered_items < kPsfsMinActivities) {
      throw Error(ErrorCode::kFailedPrecondition,
                  "psfs: needs 3 to 5 activities, got " + std::to_string(result.answered_items));
    }
    result.score = RoundTo(static_cast<double>(result.raw_sum) / result.answered_items, 0.01);
    result.mcid = 2;  // on the mean; 3 on a single activity (Stratford 1995; reported as MDC)
    return result;
  }
  if (auto missing = MissingRequired(spec, latest); !missing.empty()) {
    throw Error(ErrorCode::kFailedPrecondition, spec.code + ": items not answered: " + missing);
  }
  switch (kind) {
    case InstrumentKind::kNprs:
      result.score = result.raw_sum;
      result.mcid = 2;  // Ostelo 2008; Childs 2005
      break;
    case InstrumentKind::kOdi: {
      const int total = static_cast<int>(spec.items.size());
      if (total - result.answered_items > policy.odi_max_unanswered) {
        std::string skipped;
        for (const auto& item : spec.items) {
          auto it = latest.find(item.id);
          if (it == latest.end() || it->second.declined) skipped += (skipped.empty() ? "" : ", ") + item.id;
        }
        throw Error(ErrorCode::kFailedPrecondition,
                    "odi: " + std::to_string(total - result.answered_items) + " sections declined or not answered (" +
                        skipped + "); at most " + std::to_string(policy.odi_max_unanswered) + " may be skipped");
      }
      // Fairbank & Pynsent 2000: sum / (5 x answered sections) x 100, to one decimal.
      result.score = RoundTo(100.0 * result.raw_sum / (5.0 * result.answered_items), 0.1);
      result.band = OdiBand(result.score);
      result.mcid = 10;  // Ostelo 2008 (or 30%); 6 in physiotherapy settings (Fritz & Irrgang 2001)
      break;
    }
    case InstrumentKind::kRmdq:
      result.score = result.raw_sum;  // count of "yes", 0-24
      result.mcid = 5;                // Ostelo 2008 (or 30%)
      break;
    case InstrumentKind::kStartBack: {
      // Item 9 counts 1 only for "very much" (3) or "extremely" (4) (Hill 2008).
      const int item9 = ValueOf(latest, "sbt.9") >= 3 ? 1 : 0;
      int total = item9;
      int psychosocial = item9;
      for (int i = 1; i <= 8; ++i) {
        const int value = ValueOf(latest, "sbt." + std::to_string(i));
        total += value;
        if (i >= 5) psychosocial += value;
      }
      result.score = total;
      result.raw_sum = total;
      result.subscores = {{"psychosocial", static_cast<double>(psychosocial)}};
      result.band = StartBackRiskName(StartBackRiskOf(total, psychosocial));
      break;
    }
    case InstrumentKind::kFabq: {
      int physical = 0;
      for (int i : {2, 3, 4, 5}) physical += ValueOf(latest, "fabq." + std::to_string(i));
      int work = 0;
      for (int i : {6, 7, 9, 10, 11, 12, 15}) work += ValueOf(latest, "fabq." + std::to_string(i));
      // No published total: the headline score is the work subscale (the one the
      // manipulation rule and the "elevated" cut-offs use); both are in subscores.
      result.score = work;
      result.subscores = {{"physical_activity", static_cast<double>(physical)}, {"work", static_cast<double>(work)}};
      if (work > policy.fabq_work_elevated_above) result.flags.push_back("fabq_work_elevated");
      if (physical > policy.fabq_pa_elevated_above) result.flags.push_back("fabq_physical_activity_elevated");
      break;
    }
    case InstrumentKind::kPsfs:
      break;
  }
  return result;
}

}  // namespace physio::assessment
