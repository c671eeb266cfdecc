#pragma once
// Instrument definitions and scoring, as plain C++ so the clinical rules can be
// tested without a server. Sources: docs/clinical-rules.md and
// ../shared/design/clinical-reference.md. Item ids and answer codes only.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace physio::assessment {

enum class InstrumentKind { kNprs, kOdi, kRmdq, kStartBack, kFabq, kPsfs };

struct ItemSpec {
  std::string id;
  int min_value;
  int max_value;
  bool may_decline = false;
  bool required = true;    // must be answered (or declined) before scoring
  bool needs_text = false; // PSFS: the activity the patient names
};

struct InstrumentSpec {
  InstrumentKind kind;
  std::string code;  // "nprs", "odi", "rmdq", "sbt", "fabq", "psfs": used in item ids and messages
  std::vector<ItemSpec> items;
};

const InstrumentSpec& SpecFor(InstrumentKind kind);
const std::vector<InstrumentKind>& AllInstruments();
std::optional<InstrumentKind> KindOfCode(std::string_view code);

struct ItemAnswer {
  InstrumentKind instrument;
  std::string item_id;
  int value = 0;
  bool declined = false;
  std::string text;  // PSFS activity name
};

inline constexpr size_t kMaxAnswerText = 100;

// Throws Error(kInvalidArgument) naming `field`, the instrument, the item and the rule.
void ValidateAnswer(const std::string& field, const ItemAnswer& answer);

struct ScoringPolicy {
  // ODI: most sections that may be declined for the score to be valid.
  // UNVERIFIED in the literature; the common practice is 2.
  int odi_max_unanswered = 2;
  // FABQ work subscale above which beliefs are "elevated" (29 or 34 in the literature).
  int fabq_work_elevated_above = 29;
  // FABQ physical-activity subscale above which beliefs are "elevated".
  int fabq_pa_elevated_above = 14;
};

struct Subscore {
  std::string name;
  double value;
};

struct InstrumentResult {
  InstrumentKind instrument;
  double score = 0;      // see docs/clinical-rules.md for what the headline score is per instrument
  int raw_sum = 0;
  int answered_items = 0;
  int declined_items = 0;
  std::string band;      // ODI band; STarT Back risk group
  double mcid = 0;       // in score units; 0 when not published
  std::vector<Subscore> subscores;
  std::vector<std::string> flags;  // e.g. "fabq_work_elevated"
};

struct Completeness {
  int answered_items = 0;  // answered or declined
  int total_items = 0;
  bool complete = false;   // enough to score under the policy
};

// `answers` may hold answers to any instrument; only `kind`'s are used, the
// latest answer per item wins.
Completeness CompletenessOf(InstrumentKind kind, const std::vector<ItemAnswer>& answers, const ScoringPolicy& policy);
// Throws Error(kFailedPrecondition) naming what is missing when it cannot be scored.
InstrumentResult Score(InstrumentKind kind, const std::vector<ItemAnswer>& answers, const ScoringPolicy& policy);

// ODI band for a percent score; a boundary belongs to the lower band and a
// non-integer score above a boundary to the upper one (20 minimal, 20.5 moderate).
std::string OdiBand(double percent);

enum class StartBackRisk { kLow, kMedium, kHigh };
// Hill 2008: total 0-3 low; total >= 4 with psychosocial subscore <= 3 medium; subscore >= 4 high.
StartBackRisk StartBackRiskOf(int total, int psychosocial);
std::string StartBackRiskName(StartBackRisk risk);

}  // namespace physio::assessment
