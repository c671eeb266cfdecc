// Micro-benchmarks of the pure clinical rules (Google Benchmark): how much CPU
// a call spends in scoring, red-flag screening, classification and plan
// generation, and in reading stored records back (an assessment's JSON, a cached
// plan's bytes), next to what the serving path costs (docs/benchmarks.md).
//   build/tests/domain_bench [--benchmark_min_time=0.2]
#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>

#include "domain/classification.h"
#include "domain/instruments.h"
#include "domain/library.h"
#include "domain/plan_rules.h"
#include "domain/red_flags.h"
#include "fhir_export.h"
#include "planning_app.h"
#include "physio/assessment/v1/assessment.pb.h"
#include "physio/common/fhir_search.h"
#include "physio/common/proto_json_parser.h"

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

// The shipped intervention library, and a patient in the movement-control phase, medium risk.
physio::planning::InterventionLibrary ShippedLibrary() {
  std::ifstream in(PHYSIO_SOURCE_DIR "/services/planning/library/interventions.json");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return physio::planning::InterventionLibrary::Parse(buffer.str());
}

physio::planning::PlanInput MediumRiskInput() {
  physio::planning::PlanInput input;
  input.phase = physio::planning::Phase::kMovementControl;
  input.start_back = physio::planning::StartBackRisk::kMedium;
  input.red_flags = physio::planning::RedFlagLevel::kNone;
  input.nprs = 6;
  input.odi_percent = 32;
  return input;
}

void BM_GeneratePlan(benchmark::State& state) {
  const auto library = ShippedLibrary();
  const auto input = MediumRiskInput();
  for (auto _ : state) benchmark::DoNotOptimize(physio::planning::GeneratePlanDraft(input, library));
}
BENCHMARK(BM_GeneratePlan);

// A generated plan as planning caches it (serialised).
std::string CachedPlanBytes() {
  auto plan = physio::planning::PlanFromDraft(physio::planning::GeneratePlanDraft(MediumRiskInput(), ShippedLibrary()));
  plan.set_plan_id("pln_0123456789abcdef0123456789abcdef");
  plan.set_patient_id("pt-bench-1");
  plan.set_assessment_id("asm_0123456789abcdef0123456789abcdef");
  plan.set_status(physio::planning::v1::PLAN_STATUS_ACTIVE);
  plan.mutable_create_time()->set_seconds(1'800'000'000);
  plan.mutable_activate_time()->set_seconds(1'800'000'100);
  return plan.SerializeAsString();
}

// A cached plan parsed, as progress does for a home log, a visit or an evaluation when the plan is
// not parsed in memory already (its BytesMemo missed): what a memo miss costs (docs/benchmarks.md,
// 2026-12-07 (evening)).
void BM_ParseCachedPlan(benchmark::State& state) {
  const std::string bytes = CachedPlanBytes();
  for (auto _ : state) {
    auto plan = std::make_shared<physio::planning::v1::Plan>();
    if (!plan->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) state.SkipWithError("did not parse");
    benchmark::DoNotOptimize(plan);
  }
  state.counters["plan_bytes"] = static_cast<double>(bytes.size());
}
BENCHMARK(BM_ParseCachedPlan);
}  // namespace

// Reading a stored assessment back (GetAssessment's parse): a record as PostgreSQL's jsonb hands
// it back (keys shortest first), a whole intake of NPRS and the Oswestry with scores.
void BM_ParseStoredAssessment(benchmark::State& state) {
  const std::string json =
      R"({"etag": "v1", "scores": [{"mcid": 2, "score": 6, "raw_sum": 6, "instrument": "INSTRUMENT_NPRS", )"
      R"("answered_items": 1}, {"band": "moderate", "mcid": 10, "score": 40, "raw_sum": 20, "instrument": )"
      R"("INSTRUMENT_ODI", "answered_items": 10}], "answers": [{"value": 6, "item_id": "nprs", "instrument": )"
      R"("INSTRUMENT_NPRS"}, {"value": 2, "item_id": "odi.1", "instrument": "INSTRUMENT_ODI"}, {"value": 2, )"
      R"("item_id": "odi.2", "instrument": "INSTRUMENT_ODI"}, {"value": 2, "item_id": "odi.3", "instrument": )"
      R"("INSTRUMENT_ODI"}, {"value": 2, "item_id": "odi.4", "instrument": "INSTRUMENT_ODI"}, {"value": 2, )"
      R"("item_id": "odi.5", "instrument": "INSTRUMENT_ODI"}, {"value": 2, "item_id": "odi.6", "instrument": )"
      R"("INSTRUMENT_ODI"}, {"value": 2, "item_id": "odi.7", "instrument": "INSTRUMENT_ODI"}, {"value": 2, )"
      R"("item_id": "odi.8", "instrument": "INSTRUMENT_ODI"}, {"value": 2, "item_id": "odi.9", "instrument": )"
      R"("INSTRUMENT_ODI"}, {"value": 2, "item_id": "odi.10", "instrument": "INSTRUMENT_ODI"}], "red_flags": )"
      R"({"action": "RED_FLAG_ACTION_NONE"}, "created_by": "clin-bench", "patient_id": "pt-bench-3", )"
      R"("create_time": "2026-12-05T03:58:41Z", "assessment_id": "asm_c803834ba8add923f7da3cad66d47c3f", )"
      R"("classification": {"phase": "PHASE_MOVEMENT_CONTROL", "subgroup": "SUBGROUP_UNCLASSIFIED", )"
      R"("irritability": "IRRITABILITY_UNKNOWN", "pain_pattern": "PAIN_PATTERN_UNKNOWN", "phase_reason": )"
      R"("pain 6, Oswestry 40.0"}, "red_flag_screen": {}})";
  physio::assessment::v1::Assessment assessment;
  for (auto _ : state) {
    if (!physio::ParseProtoJson(json, &assessment)) state.SkipWithError("did not parse");
    benchmark::DoNotOptimize(assessment);
  }
}
BENCHMARK(BM_ParseStoredAssessment);

// The first page (100) of a FHIR search of one patient's Observations (GET /fhir/R4/Observation?
// patient=...), from the patient's `state.range(0)` stored assessments (each the NPRS and the
// Oswestry, screened and classified, as BM_ParseStoredAssessment's): every assessment mapped to its
// REST resources, then filtered, ordered and paged (SearchFhir in fhir_use_cases.cc).
void BM_FhirSearchOfAPatient(benchmark::State& state) {
  namespace apb = physio::assessment::v1;
  std::vector<apb::Assessment> assessments(static_cast<std::size_t>(state.range(0)));
  for (std::size_t i = 0; i < assessments.size(); ++i) {
    auto& a = assessments[i];
    a.set_assessment_id("asm_" + std::to_string(100000 + i));
    a.set_patient_id("pt-bench");
    a.mutable_create_time()->set_seconds(1'796'000'000 + static_cast<std::int64_t>(i) * 60);
    for (const auto& [instrument, score] : {std::pair{physio::common::v1::INSTRUMENT_NPRS, 6.0},
                                            std::pair{physio::common::v1::INSTRUMENT_ODI, 40.0}}) {
      auto* scored = a.add_scores();
      scored->set_instrument(instrument);
      scored->set_score(score);
      scored->set_band(instrument == physio::common::v1::INSTRUMENT_ODI ? "moderate" : "");
    }
    for (const auto& answer : OdiAnswers()) {
      auto* given = a.add_answers();
      given->set_instrument(physio::common::v1::INSTRUMENT_ODI);
      given->set_item_id(answer.item_id);
      given->set_value(answer.value);
    }
    a.mutable_red_flags()->set_action(apb::RED_FLAG_ACTION_NONE);
    a.mutable_classification()->set_phase(physio::common::v1::PHASE_MOVEMENT_CONTROL);
  }
  const auto prepared = physio::PrepareFhirSearch("Observation", {"QuestionnaireResponse", "Observation", "Consent"}, "",
                                                  {}, true, 100);
  for (auto _ : state) {
    std::vector<nlohmann::json> candidates;
    for (const auto& assessment : assessments) {
      for (auto& resource : physio::assessment::AssessmentRestResources(assessment, "urn:bench:patient")) {
        candidates.push_back(std::move(resource));
      }
    }
    auto page = prepared.search.Select(std::move(candidates), prepared.count, "", "bench|pt-bench");
    if (page.resources.size() != 100) state.SkipWithError("not a full page");
    benchmark::DoNotOptimize(page);
  }
}
BENCHMARK(BM_FhirSearchOfAPatient)->Arg(300)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
