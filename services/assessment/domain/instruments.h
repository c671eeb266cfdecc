#pragma once
// Instrument definitions and scoring, as plain C++ so the clinical rules can be
// tested without a server. Sources: docs/clinical-rules.md and
// ../shared/design/clinical-reference.md. Item ids and answer codes only.
#include <optional>
#include <string>
#include <vector>

namespace physio::assessment {

enum class InstrumentKind { kNprs, kOdi };

struct ItemSpec {
  std::string id;
  int min_value;
  int max_value;
  bool may_decline;
};

struct InstrumentSpec {
  InstrumentKind kind;
  std::string code;  // "nprs", "odi": used in field paths and messages
  std::vector<ItemSpec> items;
};

const InstrumentSpec& SpecFor(InstrumentKind kind);
const std::vector<InstrumentKind>& IntakeInstruments();

struct ItemAnswer {
  InstrumentKind instrument;
  std::string item_id;
  int value = 0;
  bool declined = false;
};

// Throws Error(kInvalidArgument) naming `field`, the instrument, the item and the rule.
void ValidateAnswer(const std::string& field, const ItemAnswer& answer);

struct ScoringPolicy {
  // ODI: most sections that may be left unanswered (declined or missing) for the
  // score to be valid. UNVERIFIED in the literature; the common practice is 2.
  int odi_max_unanswered = 2;
};

struct InstrumentResult {
  InstrumentKind instrument;
  double score = 0;      // NPRS value; ODI percent
  int raw_sum = 0;
  int answered_items = 0;
  int declined_items = 0;
  std::string band;      // ODI band
  double mcid = 0;
};

struct Completeness {
  int answered_items = 0;  // answered or declined
  int total_items = 0;
  bool complete = false;   // enough to score under the policy
};

// `answers` may hold answers to any instrument; only `kind`'s are used.
Completeness CompletenessOf(InstrumentKind kind, const std::vector<ItemAnswer>& answers, const ScoringPolicy& policy);
// Throws Error(kFailedPrecondition) naming what is missing when it cannot be scored.
InstrumentResult Score(InstrumentKind kind, const std::vector<ItemAnswer>& answers, const ScoringPolicy& policy);

// ODI band for a percent score; boundaries belong to the lower band and a
// non-integer score above a boundary to the upper one (20 minimal, 20.5 moderate).
std::string OdiBand(double percent);

}  // namespace physio::assessment
