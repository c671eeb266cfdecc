// Micro-benchmarks of the pure clinical rules (Google Benchmark): how much CPU
// a call spends in scoring, red-flag screening, classification and plan
// generation, next to what the serving path costs (docs/benchmarks.md).
//   build/tests/domain_bench [--benchmark_min_time=0.2]
#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>

#include "domain/classification.h"
#include "domain/instruments.h"
#include "domain/library.h"
#include "domain/plan_rules.h"
#include "domain/red_flags.h"

namespace {
using physio::assessment::InstrumentKind;
using physio::assessment::ItemAnswer;

std::vector<ItemAnswer> OdiAnswers() {
  std::vector<ItemAnswer> answers;
  for (int section = 1; section <= 10; ++section) {
    answers.push_back({InstrumentKind::kOdi, "odi." + std::to_string(section), section % 6, false, ""});
  }
  return answers;
}

void BM_ScoreOdi(benchmark::State& state) {
  const auto answers = OdiAnswers();
  const physio::assessment::ScoringPolicy policy;
  for (auto _ : state) benchmark::DoNotOptimize(physio::assessment::Score(InstrumentKind::kOdi, answers, policy));
}
BENCHMARK(BM_ScoreOdi);

void BM_ScreenRedFlags(benchmark::State& state) {
  physio::assessment::RedFlagAnswers answers;
  answers.history_of_cancer = true;
  answers.night_pain = true;
  answers.fever = true;
  answers.minor_trauma = true;
  answers.osteoporosis = true;
  for (auto _ : state) benchmark::DoNotOptimize(physio::assessment::ScreenRedFlags(answers, 72, 30));
}
BENCHMARK(BM_ScreenRedFlags);

void BM_Classify(benchmark::State& state) {
  physio::assessment::ClinicalFindings findings;
  findings.age_years = 38;
  findings.episode_duration_days = 10;
  findings.symptom_extent = physio::assessment::SymptomExtent::kButtock;
  findings.lumbar_hypomobility = true;
  findings.hip_internal_rotation_deg = 40;
  const physio::assessment::ScoringPolicy scoring;
  const std::vector<physio::assessment::InstrumentResult> scores{
      physio::assessment::Score(InstrumentKind::kOdi, OdiAnswers(), scoring)};
  const physio::assessment::ClassificationPolicy policy;
  for (auto _ : state) benchmark::DoNotOptimize(physio::assessment::Classify(findings, scores, policy));
}
BENCHMARK(BM_Classify);

void BM_GeneratePlan(benchmark::State& state) {
  std::ifstream in(PHYSIO_SOURCE_DIR "/services/planning/library/interventions.json");
  std::stringstream buffer;
  buffer << in.rdbuf();
  const auto library = physio::planning::InterventionLibrary::Parse(buffer.str());
  physio::planning::PlanInput input;
  input.phase = physio::planning::Phase::kMovementControl;
  input.start_back = physio::planning::StartBackRisk::kMedium;
  input.red_flags = physio::planning::RedFlagLevel::kNone;
  input.nprs = 6;
  input.odi_percent = 32;
  for (auto _ : state) benchmark::DoNotOptimize(physio::planning::GeneratePlanDraft(input, library));
}
BENCHMARK(BM_GeneratePlan);
}  // namespace

BENCHMARK_MAIN();
