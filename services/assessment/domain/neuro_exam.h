#pragma once
// The neurological examination of the lower limbs (sciatica and nerve-root pathway, issue 32
// item 1): what one examination shows (radicular signs, deficits, a foot drop, an urgent motor
// finding) and what changed between two. Plain C++; the rules and their sources are in
// docs/clinical-rules.md, "Sciatica and nerve-root pathway".
#include <optional>
#include <string>
#include <vector>

namespace physio::assessment {

enum class Side { kLeft, kRight };
enum class NerveRootLevel { kL2, kL3, kL4, kL5, kS1 };
// Ordered by severity.
enum class SensationLevel { kNormal = 0, kAltered = 1, kReduced = 2, kAbsent = 3 };
enum class ReflexLevel { kNormal = 0, kReduced = 1, kAbsent = 2, kBrisk = 3 };
enum class ReflexSite { kKnee, kAnkle };
enum class LegExtent { kNone = 0, kThigh = 1, kBelowKnee = 2, kFoot = 3 };

struct NeuroExam {
  struct Motor {
    NerveRootLevel root;
    Side side;
    int grade;  // MRC 0-5
  };
  struct Sensory {
    NerveRootLevel root;
    Side side;
    SensationLevel level;
  };
  struct ReflexFinding {
    ReflexSite reflex;
    Side side;
    ReflexLevel level;
  };
  struct Leg {
    Side side;
    LegExtent extent = LegExtent::kNone;
    std::optional<int> onset_days;  // since the leg symptoms on this side began
    std::optional<int> slr_deg;     // straight-leg raise angle, when tested
    bool slr_positive = false;
    bool slump_positive = false;
  };
  std::vector<Motor> motor;
  std::vector<Sensory> sensory;
  std::vector<ReflexFinding> reflexes;
  std::vector<Leg> legs;
  bool motor_deficit_progressing = false;  // the clinician's judgement
  bool empty() const { return motor.empty() && sensory.empty() && reflexes.empty() && legs.empty() && !motor_deficit_progressing; }
};

// Settings where the sources leave a range (docs/clinical-rules.md).
struct NeuroPolicy {
  // An MRC grade at or below this is a severe motor deficit (3: cannot move against resistance);
  // at L4 (ankle dorsiflexion) or L5 (great toe extension) it is a foot drop.
  int severe_motor_grade = 3;
  // A severe deficit on a side whose leg symptoms began at most this many days ago (or at an
  // unknown time) is new: an urgent spinal surgical opinion. Older and not progressing: monitored.
  int new_deficit_days = 84;
};

struct NeuroFindings {
  // Nerve-root signs: a positive straight-leg raise or slump, or a root's motor, sensory (altered
  // included) or reflex (reduced or absent) finding.
  bool radicular = false;
  // Any objective deficit: a grade below 5, sensation reduced or absent, a reflex reduced or absent.
  bool objective_deficit = false;
  // Objective deficits on both sides (a feature of suspected cauda equina, GIRFT 2023).
  bool bilateral_deficit = false;
  // Urgent: a new severe motor deficit (e.g. a foot drop), a motor deficit the clinician judges
  // to be progressing, or an upper motor neurone sign (a brisk reflex). Each is a reason.
  std::vector<std::string> urgent;
  // Each abnormal finding, e.g. "L5 left 3/5 (foot drop)", "ankle reflex right absent".
  std::vector<std::string> findings;
};

NeuroFindings AnalyseNeuro(const NeuroExam& exam, const NeuroPolicy& policy = {});

struct NeuroChange {
  // A grade lower than before, or a motor deficit where the same root and side tested normal:
  // an urgent red flag.
  std::vector<std::string> motor_worse;
  // Sensation or a reflex worse, a newly positive straight-leg raise or slump, its angle down by
  // 10 degrees or more, symptoms further down the leg or on a side that had none.
  std::vector<std::string> other_worse;
  std::vector<std::string> better;
};

// What changed from `before` to `now`, comparing only what both examinations tested.
NeuroChange CompareNeuro(const NeuroExam& before, const NeuroExam& now);

// A re-examination (at a visit) against the earlier ones of the episode (the assessment's, the
// last visit's): what is urgent now that was not before. A motor grade lower than in any earlier
// examination; a severe motor deficit of a root and side none of them tested; the clinician's
// judgement that a deficit is progressing; a brisk reflex not brisk before. A finding the earlier
// examinations already showed (and the plan answered) is not raised again.
std::vector<std::string> UrgentAtRecheck(const NeuroExam& now, const std::vector<const NeuroExam*>& earlier,
                                         const NeuroPolicy& policy = {});

std::string RootName(NerveRootLevel root);
std::string SideName(Side side);

}  // namespace physio::assessment
