#include "neuro_exam.h"

#include <cstdlib>
#include <algorithm>
#include <map>
#include <set>
#include <utility>

namespace physio::assessment {

namespace {
std::string ExtentName(LegExtent extent) {
  switch (extent) {
    case LegExtent::kNone: return "none";
    case LegExtent::kThigh: return "thigh";
    case LegExtent::kBelowKnee: return "below the knee";
    case LegExtent::kFoot: return "foot";
  }
  return "none";
}
std::string SensationName(SensationLevel level) {
  switch (level) {
    case SensationLevel::kNormal: return "normal";
    case SensationLevel::kAltered: return "altered";
    case SensationLevel::kReduced: return "reduced";
    case SensationLevel::kAbsent: return "absent";
  }
  return "normal";
}
std::string ReflexName(ReflexSite site) { return site == ReflexSite::kKnee ? "knee reflex" : "ankle reflex"; }
std::string ReflexLevelName(ReflexLevel level) {
  switch (level) {
    case ReflexLevel::kNormal: return "normal";
    case ReflexLevel::kReduced: return "reduced";
    case ReflexLevel::kAbsent: return "absent";
    case ReflexLevel::kBrisk: return "brisk";
  }
  return "normal";
}
std::string Grade(int grade) { return std::to_string(grade) + "/5"; }
bool FootDrop(NerveRootLevel root, int grade, const NeuroPolicy& policy) {
  return (root == NerveRootLevel::kL4 || root == NerveRootLevel::kL5) && grade <= policy.severe_motor_grade;
}
// "L5 left 3/5 (foot drop)".
std::string MotorFinding(const NeuroExam::Motor& m, const NeuroPolicy& policy) {
  return RootName(m.root) + " " + SideName(m.side) + " " + Grade(m.grade) +
         (FootDrop(m.root, m.grade, policy) ? " (foot drop)" : "");
}
// The clinician's judgement that a motor deficit is progressing, with the deficits found.
std::optional<std::string> Progressing(const NeuroExam& exam, const NeuroPolicy& policy) {
  if (!exam.motor_deficit_progressing) return std::nullopt;
  std::string list;
  for (const auto& m : exam.motor) {
    if (m.grade < 5) list += (list.empty() ? "" : ", ") + MotorFinding(m, policy);
  }
  return "motor deficit progressing (clinician's judgement" + (list.empty() ? "" : ": " + list) +
         "): urgent spinal surgical opinion";
}
const NeuroExam::Leg* LegOf(const NeuroExam& exam, Side side) {
  for (const auto& leg : exam.legs) {
    if (leg.side == side) return &leg;
  }
  return nullptr;
}
}  // namespace

std::string RootName(NerveRootLevel root) {
  switch (root) {
    case NerveRootLevel::kL2: return "L2";
    case NerveRootLevel::kL3: return "L3";
    case NerveRootLevel::kL4: return "L4";
    case NerveRootLevel::kL5: return "L5";
    case NerveRootLevel::kS1: return "S1";
  }
  return "?";
}

std::string SideName(Side side) { return side == Side::kLeft ? "left" : "right"; }

NeuroFindings AnalyseNeuro(const NeuroExam& exam, const NeuroPolicy& policy) {
  NeuroFindings out;
  bool deficit[2] = {false, false};  // objective deficit by side
  bool root_sign[2] = {false, false};
  auto index = [](Side side) { return side == Side::kLeft ? 0 : 1; };
  for (const auto& m : exam.motor) {
    if (m.grade >= 5) continue;
    const std::string finding = MotorFinding(m, policy);
    out.findings.push_back(finding);
    deficit[index(m.side)] = root_sign[index(m.side)] = true;
    if (m.grade <= policy.severe_motor_grade) {
      const NeuroExam::Leg* leg = LegOf(exam, m.side);
      const std::optional<int> onset = leg ? leg->onset_days : std::nullopt;
      if (!onset || *onset <= policy.new_deficit_days) {
        out.urgent.push_back("new severe motor deficit: " + finding + ", leg symptoms " +
                             (onset ? "for " + std::to_string(*onset) + " days (new: at most " +
                                          std::to_string(policy.new_deficit_days) + ")"
                                    : "of unknown duration, taken as new") +
                             ": urgent spinal surgical opinion");
      }
    }
  }
  if (auto progressing = Progressing(exam, policy)) out.urgent.push_back(*progressing);
  for (const auto& s : exam.sensory) {
    if (s.level == SensationLevel::kNormal) continue;
    out.findings.push_back(RootName(s.root) + " dermatome " + SideName(s.side) + " " + SensationName(s.level));
    root_sign[index(s.side)] = true;
    if (s.level >= SensationLevel::kReduced) deficit[index(s.side)] = true;
  }
  for (const auto& r : exam.reflexes) {
    if (r.level == ReflexLevel::kNormal) continue;
    out.findings.push_back(ReflexName(r.reflex) + " " + SideName(r.side) + " " + ReflexLevelName(r.level));
    if (r.level == ReflexLevel::kBrisk) {
      out.urgent.push_back("brisk " + ReflexName(r.reflex) + " " + SideName(r.side) +
                           ": an upper motor neurone sign (examine for clonus and an extensor plantar response; "
                           "spinal cord compression is to be excluded)");
      continue;
    }
    deficit[index(r.side)] = root_sign[index(r.side)] = true;
  }
  for (const auto& leg : exam.legs) {
    if (leg.slr_positive) {
      out.findings.push_back("straight-leg raise " + SideName(leg.side) + " positive" +
                             (leg.slr_deg ? " at " + std::to_string(*leg.slr_deg) + " degrees" : ""));
    }
    if (leg.slump_positive) out.findings.push_back("slump " + SideName(leg.side) + " positive");
    if (leg.slr_positive || leg.slump_positive) root_sign[index(leg.side)] = true;
  }
  out.radicular = root_sign[0] || root_sign[1];
  out.objective_deficit = deficit[0] || deficit[1];
  out.bilateral_deficit = deficit[0] && deficit[1];
  return out;
}

NeuroChange CompareNeuro(const NeuroExam& before, const NeuroExam& now) {
  NeuroChange change;
  std::map<std::pair<NerveRootLevel, Side>, int> grades;
  for (const auto& m : before.motor) grades[{m.root, m.side}] = m.grade;
  for (const auto& m : now.motor) {
    auto was = grades.find({m.root, m.side});
    if (was == grades.end() || was->second == m.grade) continue;
    const std::string line =
        RootName(m.root) + " " + SideName(m.side) + " " + Grade(was->second) + " -> " + Grade(m.grade);
    (m.grade < was->second ? change.motor_worse : change.better).push_back(line);
  }
  std::map<std::pair<NerveRootLevel, Side>, SensationLevel> sensation;
  for (const auto& s : before.sensory) sensation[{s.root, s.side}] = s.level;
  for (const auto& s : now.sensory) {
    auto was = sensation.find({s.root, s.side});
    if (was == sensation.end() || was->second == s.level) continue;
    const std::string line = RootName(s.root) + " dermatome " + SideName(s.side) + " " + SensationName(was->second) +
                             " -> " + SensationName(s.level);
    (s.level > was->second ? change.other_worse : change.better).push_back(line);
  }
  std::map<std::pair<ReflexSite, Side>, ReflexLevel> reflexes;
  for (const auto& r : before.reflexes) reflexes[{r.reflex, r.side}] = r.level;
  for (const auto& r : now.reflexes) {
    auto was = reflexes.find({r.reflex, r.side});
    if (was == reflexes.end() || was->second == r.level) continue;
    const std::string line = ReflexName(r.reflex) + " " + SideName(r.side) + " " + ReflexLevelName(was->second) +
                             " -> " + ReflexLevelName(r.level);
    // A brisk reflex is worse than any other response; otherwise reduced then absent is worse.
    const bool worse = r.level == ReflexLevel::kBrisk || (was->second != ReflexLevel::kBrisk && r.level > was->second);
    (worse ? change.other_worse : change.better).push_back(line);
  }
  for (const auto& leg : now.legs) {
    const NeuroExam::Leg* was = LegOf(before, leg.side);
    const std::string side = SideName(leg.side);
    if (!was) {
      // Legs examined before, this side not: symptoms there now are on a side that had none.
      if (!before.legs.empty() && leg.extent != LegExtent::kNone) {
        change.other_worse.push_back("leg symptoms now on the " + side + " too (" + ExtentName(leg.extent) + ")");
      }
      continue;
    }
    if (leg.extent != was->extent) {
      const std::string line = side + " leg symptoms " + ExtentName(was->extent) + " -> " + ExtentName(leg.extent);
      (leg.extent > was->extent ? change.other_worse : change.better).push_back(line);
    }
    if (leg.slr_positive != was->slr_positive) {
      (leg.slr_positive ? change.other_worse : change.better)
          .push_back("straight-leg raise " + side + (leg.slr_positive ? " now positive" : " now negative"));
    }
    if (leg.slump_positive != was->slump_positive) {
      (leg.slump_positive ? change.other_worse : change.better)
          .push_back("slump " + side + (leg.slump_positive ? " now positive" : " now negative"));
    }
    if (leg.slr_deg && was->slr_deg && std::abs(*leg.slr_deg - *was->slr_deg) >= 10) {
      const std::string line = "straight-leg raise " + side + " " + std::to_string(*was->slr_deg) + " -> " +
                               std::to_string(*leg.slr_deg) + " degrees";
      (*leg.slr_deg < *was->slr_deg ? change.other_worse : change.better).push_back(line);
    }
  }
  return change;
}

std::vector<std::string> UrgentAtRecheck(const NeuroExam& now, const std::vector<const NeuroExam*>& earlier,
                                         const NeuroPolicy& policy) {
  std::vector<std::string> urgent;
  std::set<std::string> seen;
  auto add = [&](std::string line) {
    if (seen.insert(line).second) urgent.push_back(std::move(line));
  };
  for (const NeuroExam* before : earlier) {
    if (before == nullptr) continue;
    for (const auto& line : CompareNeuro(*before, now).motor_worse) {
      add("motor deficit worse: " + line + ": urgent spinal surgical opinion");
    }
  }
  for (const auto& m : now.motor) {
    if (m.grade > policy.severe_motor_grade) continue;
    const bool tested = std::any_of(earlier.begin(), earlier.end(), [&](const NeuroExam* before) {
      return before != nullptr && std::any_of(before->motor.begin(), before->motor.end(), [&](const NeuroExam::Motor& b) {
               return b.root == m.root && b.side == m.side;
             });
    });
    if (!tested) add("new severe motor deficit: " + MotorFinding(m, policy) + ", not tested before: urgent spinal surgical opinion");
  }
  if (auto progressing = Progressing(now, policy)) add(*progressing);
  for (const auto& r : now.reflexes) {
    if (r.level != ReflexLevel::kBrisk) continue;
    const bool known = std::any_of(earlier.begin(), earlier.end(), [&](const NeuroExam* before) {
      return before != nullptr && std::any_of(before->reflexes.begin(), before->reflexes.end(), [&](const auto& b) {
               return b.reflex == r.reflex && b.side == r.side && b.level == ReflexLevel::kBrisk;
             });
    });
    if (!known) {
      add("brisk " + ReflexName(r.reflex) + " " + SideName(r.side) +
          ", new: an upper motor neurone sign (spinal cord compression is to be excluded)");
    }
  }
  return urgent;
}

}  // namespace physio::assessment
