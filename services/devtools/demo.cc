// A demo patient episode against running services: intake over several screens,
// a generated and approved plan, a visit, two home-exercise logs and the summary.
#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include <iomanip>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "physio/assessment/v1/assessment.grpc.pb.h"
#include "physio/auth/token_minter.h"
#include "physio/auth/token_verifier.h"
#include "physio/common/config.h"
#include "physio/common/ids.h"
#include "physio/planning/v1/planning.grpc.pb.h"
#include "physio/progress/v1/progress.grpc.pb.h"
#include "physio/server/grpc_context.h"

namespace apb = physio::assessment::v1;
namespace ppb = physio::planning::v1;
namespace gpb = physio::progress::v1;
namespace cpb = physio::common::v1;

namespace {
std::string g_run_id;

class Caller {
 public:
  explicit Caller(std::string token) : token_(std::move(token)) {}
  template <typename Stub, typename Req, typename Resp>
  void Call(const char* what, Stub* stub,
            grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*), const Req& request, Resp* response) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + token_);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto status = (stub->*method)(&context, request, response);
    if (!status.ok()) {
      throw std::runtime_error(std::string(what) + " failed: code " + std::to_string(status.error_code()) + ": " +
                               status.error_message());
    }
  }
  // The kinds of `patient`'s events in one service's feed (WatchEvents from the first retained
  // event), read for `patience`: the stream stays open for new events, so the demo stops listening.
  template <typename Request, typename Response, typename Stub>
  std::vector<std::string> EventsOf(Stub* stub, const std::string& patient, std::chrono::milliseconds patience) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + token_);
    context.set_deadline(std::chrono::system_clock::now() + patience);
    Request request;
    auto reader = stub->WatchEvents(&context, request);
    std::vector<std::string> kinds;
    Response response;
    while (reader->Read(&response)) {
      if (response.event().patient_id() == patient) kinds.push_back(cpb::EventKind_Name(response.event().kind()));
    }
    const auto status = reader->Finish();
    if (status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
      throw std::runtime_error("WatchEvents failed: code " + std::to_string(status.error_code()) + ": " +
                               status.error_message());
    }
    return kinds;
  }

 private:
  std::string token_;
};

std::string Rid(const std::string& step) { return "demo-" + g_run_id + "-" + step; }

cpb::InstrumentAnswer Answer(cpb::Instrument instrument, const std::string& item, int value, bool declined = false) {
  cpb::InstrumentAnswer answer;
  answer.set_instrument(instrument);
  answer.set_item_id(item);
  answer.set_value(value);
  answer.set_declined(declined);
  return answer;
}

void PrintProgress(const apb::IntakeSession& session) {
  for (const auto& progress : session.progress()) {
    std::cout << "      " << std::left << std::setw(16) << cpb::Instrument_Name(progress.instrument()) << " "
              << progress.answered_items() << "/" << progress.total_items()
              << (progress.complete() ? "  complete" : "") << "\n";
  }
}
}  // namespace

int main(int argc, char** argv) {
  try {
    physio::Config config({{"assessment-addr", "127.0.0.1:50051", "assessment service"},
                           {"planning-addr", "127.0.0.1:50052", "planning service"},
                           {"progress-addr", "127.0.0.1:50053", "progress service"},
                           {"key", "", "PEM private key that the services' public key verifies"},
                           {"issuer", "physio-dev", "iss claim"},
                           {"audience", "physio-backend", "aud claim"},
                           {"tenant", "demo-clinic", "tenant of the demo"},
                           {"ca-file", "", "PEM CA to verify the services by (empty: plaintext gRPC)"},
                           {"cert-file", "", "PEM client certificate for mutual TLS (e.g. deploy/certs/physio-client.pem)"},
                           {"key-file", "", "PEM key of cert-file"},
                           {"fhir-base", "", "the FHIR REST API's base URL (http://127.0.0.1:51051/fhir/R4); empty: that step is skipped"}},
                          argc, argv);
    if (config.help_requested()) {
      std::cout << config.Usage(argv[0]);
      return 0;
    }
    g_run_id = physio::NewId("r").substr(2, 12);
    const std::string patient_id = "pt-" + g_run_id;
    const std::string key = physio::ReadFileOrThrow(config.Get("key"));
    auto token = [&](const std::string& sub, const std::string& role, const std::string& patient) {
      physio::TokenRequest request{config.Get("issuer"), config.Get("audience"), config.Get("tenant"), sub, {role},
                                   patient};
      // The demo clinician works at one clinic; the patient is enrolled there at the first assessment.
      if (role == "clinician") request.clinics = {"clinic-demo-north"};
      return physio::MintToken(key, request);
    };
    Caller patient(token(patient_id, "patient", patient_id));
    Caller clinician(token("clin-demo-1", "clinician", ""));

    // Plaintext, or (TLS, e.g. against docker-compose) verified by ca-file with a client certificate.
    const physio::PeerTls tls{config.Get("ca-file"), config.Get("cert-file"), config.Get("key-file"), ""};
    auto assessment = apb::AssessmentService::NewStub(physio::MakePeerChannel(config.Get("assessment-addr"), tls));
    auto planning = ppb::PlanningService::NewStub(physio::MakePeerChannel(config.Get("planning-addr"), tls));
    auto progress = gpb::ProgressService::NewStub(physio::MakePeerChannel(config.Get("progress-addr"), tls));

    std::cout << "\n== Demo patient episode (tenant " << config.Get("tenant") << ", patient " << patient_id << ")\n";
    std::cout << "\n1. The patient starts an intake on the telehealth app\n";
    apb::StartIntakeRequest start;
    start.set_request_id(Rid("start"));
    start.set_patient_id(patient_id);
    start.add_instruments(cpb::INSTRUMENT_NPRS);
    start.add_instruments(cpb::INSTRUMENT_ODI);
    start.add_instruments(cpb::INSTRUMENT_START_BACK);
    apb::StartIntakeResponse started;
    patient.Call("StartIntake", assessment.get(), &apb::AssessmentService::Stub::StartIntake, start, &started);
    const std::string session_id = started.session().session_id();
    std::cout << "   session " << session_id << "\n";
    // Clinic scoping: the clinic's staff reach the patient once enrolled there (staff of other clinics do not).
    apb::EnrolPatientRequest enrol;
    enrol.set_request_id(Rid("enrol"));
    enrol.set_patient_id(patient_id);
    enrol.set_clinic_id("clinic-demo-north");
    apb::EnrolPatientResponse enrolled;
    clinician.Call("EnrolPatient", assessment.get(), &apb::AssessmentService::Stub::EnrolPatient, enrol, &enrolled);
    std::cout << "   enrolled at clinic " << enrolled.clinics().clinic_ids(0) << " (its clinicians see the patient)\n";
    apb::RecordConsentRequest consent;
    consent.set_request_id(Rid("consent"));
    consent.set_patient_id(patient_id);
    consent.set_kind(apb::CONSENT_KIND_TREATMENT);
    consent.set_decision(apb::CONSENT_DECISION_GRANTED);
    consent.set_note("consent form signed in the app");
    apb::RecordConsentResponse consented;
    clinician.Call("RecordConsent", assessment.get(), &apb::AssessmentService::Stub::RecordConsent, consent, &consented);
    std::cout << "   consent to treatment recorded by " << consented.consent().recorded_by() << " ("
              << consented.consent().consent_id() << ")\n";

    std::vector<std::vector<cpb::InstrumentAnswer>> screens = {
        {Answer(cpb::INSTRUMENT_NPRS, "nprs", 6)},
        {Answer(cpb::INSTRUMENT_ODI, "odi.1", 2), Answer(cpb::INSTRUMENT_ODI, "odi.2", 1),
         Answer(cpb::INSTRUMENT_ODI, "odi.3", 3), Answer(cpb::INSTRUMENT_ODI, "odi.4", 1),
         Answer(cpb::INSTRUMENT_ODI, "odi.5", 2)},
        {Answer(cpb::INSTRUMENT_ODI, "odi.6", 2), Answer(cpb::INSTRUMENT_ODI, "odi.7", 1),
         Answer(cpb::INSTRUMENT_ODI, "odi.8", 0, true), Answer(cpb::INSTRUMENT_ODI, "odi.9", 2),
         Answer(cpb::INSTRUMENT_ODI, "odi.10", 2)},
        {Answer(cpb::INSTRUMENT_START_BACK, "sbt.1", 1), Answer(cpb::INSTRUMENT_START_BACK, "sbt.2", 0),
         Answer(cpb::INSTRUMENT_START_BACK, "sbt.3", 1), Answer(cpb::INSTRUMENT_START_BACK, "sbt.4", 1),
         Answer(cpb::INSTRUMENT_START_BACK, "sbt.5", 0), Answer(cpb::INSTRUMENT_START_BACK, "sbt.6", 1),
         Answer(cpb::INSTRUMENT_START_BACK, "sbt.7", 0), Answer(cpb::INSTRUMENT_START_BACK, "sbt.8", 0),
         Answer(cpb::INSTRUMENT_START_BACK, "sbt.9", 2)}};
    for (size_t i = 0; i < screens.size(); ++i) {
      apb::SubmitIntakeAnswersRequest submit;
      submit.set_request_id(Rid("screen" + std::to_string(i + 1)));
      submit.set_session_id(session_id);
      for (const auto& answer : screens[i]) *submit.add_answers() = answer;
      apb::SubmitIntakeAnswersResponse submitted;
      patient.Call("SubmitIntakeAnswers", assessment.get(), &apb::AssessmentService::Stub::SubmitIntakeAnswers, submit,
                   &submitted);
      std::cout << "   screen " << i + 1 << " submitted:\n";
      PrintProgress(submitted.session());
    }
    {
      // History and the red-flag questions on the patient's last screen.
      apb::SubmitIntakeAnswersRequest details;
      details.set_request_id(Rid("history"));
      details.set_session_id(session_id);
      auto* history = details.mutable_history();
      history->set_age_years(38);
      history->set_episode_duration_days(10);
      history->set_symptom_extent(apb::SYMPTOM_EXTENT_BUTTOCK);
      history->set_occupation_demand(apb::OCCUPATION_DEMAND_SEDENTARY);
      history->add_goals("Sit through a working day");
      // The nature of the pain and the person: irritability sets the starting dose and
      // progression rate, activity the walking dose, BMI the weight-management item.
      history->set_provocation(apb::PROVOCATION_MODERATE);
      history->set_settle_minutes(20);
      history->set_morning_stiffness_minutes(10);
      history->add_aggravating_factors(apb::AGGRAVATING_FACTOR_SITTING);
      history->add_easing_factors(apb::EASING_FACTOR_WALKING);
      history->add_pain_regions(apb::BODY_REGION_LUMBAR);
      history->add_pain_regions(apb::BODY_REGION_BUTTOCK_LEFT);
      // Paracetamol on its own: the plan adds a medicines review with the GP (NICE NG59).
      history->add_analgesics(apb::ANALGESIC_PARACETAMOL);
      history->set_activity_level(apb::ACTIVITY_LEVEL_LOW);
      history->set_previous_episodes(1);
      history->set_height_cm(172);
      history->set_weight_kg(92);
      history->set_recovery_expectation(apb::RECOVERY_EXPECTATION_SOME_IMPROVEMENT);
      details.mutable_red_flag_screen()->set_night_pain(true);
      apb::SubmitIntakeAnswersResponse submitted;
      patient.Call("SubmitIntakeAnswers", assessment.get(), &apb::AssessmentService::Stub::SubmitIntakeAnswers,
                   details, &submitted);
      std::cout << "   history and red-flag screen submitted\n";
      // The clinician adds the examination in the video consultation.
      apb::SubmitIntakeAnswersRequest exam;
      exam.set_request_id(Rid("exam"));
      exam.set_session_id(session_id);
      exam.mutable_examination()->set_lumbar_hypomobility(true);
      exam.mutable_examination()->set_hip_internal_rotation_deg(38);
      clinician.Call("SubmitIntakeAnswers", assessment.get(), &apb::AssessmentService::Stub::SubmitIntakeAnswers,
                     exam, &submitted);
      std::cout << "   examination added by the clinician\n";
    }
    apb::CompleteIntakeRequest complete;
    complete.set_request_id(Rid("complete"));
    complete.set_session_id(session_id);
    apb::CompleteIntakeResponse completed;
    patient.Call("CompleteIntake", assessment.get(), &apb::AssessmentService::Stub::CompleteIntake, complete, &completed);
    std::cout << "   assessment " << completed.assessment().assessment_id() << " stored:\n";
    for (const auto& score : completed.assessment().scores()) {
      std::cout << "      " << std::left << std::setw(16) << cpb::Instrument_Name(score.instrument()) << " score "
                << score.score() << (score.band().empty() ? "" : " (" + score.band() + ")")
                << "  raw " << score.raw_sum() << ", answered " << score.answered_items() << ", declined "
                << score.declined_items() << "\n";
    }

    const auto& stored = completed.assessment();
    std::cout << "   red flags: " << apb::RedFlagAction_Name(stored.red_flags().action()) << "\n";
    const auto& c = stored.classification();
    std::cout << "   classification: STarT " << apb::StartBackRisk_Name(c.start_back_risk()) << ", "
              << cpb::Phase_Name(c.phase()) << " (" << c.phase_reason() << "), " << apb::Subgroup_Name(c.subgroup())
              << " (" << c.manipulation_criteria_met() << " of 5 manipulation criteria";
    for (const auto& criterion : c.criteria_met()) std::cout << "; " << criterion;
    std::cout << ")\n";
    std::cout << "   pain nature: " << apb::Irritability_Name(c.irritability()) << ", "
              << apb::PainPattern_Name(c.pain_pattern()) << ", BMI " << c.bmi() << "\n";

    std::cout << "\n2. The clinician generates and approves the plan\n";
    ppb::GeneratePlanRequest generate;
    generate.set_request_id(Rid("plan"));
    generate.set_assessment_id(completed.assessment().assessment_id());
    ppb::GeneratePlanResponse generated;
    clinician.Call("GeneratePlan", planning.get(), &ppb::PlanningService::Stub::GeneratePlan, generate, &generated);
    const auto& draft = generated.plan();
    std::cout << "   plan " << draft.plan_id() << " (" << cpb::Phase_Name(draft.phase()) << ", "
              << ppb::Intensity_Name(draft.intensity()) << ", about " << draft.expected_duration_weeks()
              << " weeks, home programme " << draft.home_sessions_per_week() << "x/week; rules "
              << draft.rules_version() << ", library " << draft.library_version() << ")\n";
    std::cout << "   a dose is held " << draft.progression_interval_days() << " days before progressing; activity target "
              << draft.weekly_activity_target_minutes() << " min/week\n";
    for (const auto& item : draft.items()) {
      std::cout << "    - " << item.title();
      if (item.kind() == ppb::PLAN_ITEM_KIND_EXERCISE && item.dose().duration_minutes() > 0) {
        std::cout << " [" << item.dose().duration_minutes() << " min, " << item.dose().sessions_per_week() << "/week]";
      } else if (item.kind() == ppb::PLAN_ITEM_KIND_EXERCISE) {
        std::cout << " [" << item.dose().sets() << "x" << item.dose().reps()
                  << (item.dose().hold_seconds() ? ", hold " + std::to_string(item.dose().hold_seconds()) + "s" : "")
                  << ", " << item.dose().sessions_per_week() << "/week]";
      }
      std::cout << "\n        why: " << item.reason() << "\n        source: " << item.source() << "\n";
    }
    for (const auto& goal : draft.goals()) {
      std::cout << "    goal: " << goal.description() << " (target " << goal.target_score() << ")\n";
    }
    for (const auto& review : draft.review_points()) {
      std::cout << "    review at week " << review.week() << ": " << review.purpose() << "\n";
    }
    ppb::ApprovePlanRequest approve;
    approve.set_request_id(Rid("approve"));
    approve.set_plan_id(draft.plan_id());
    approve.set_etag(draft.etag());
    for (const auto& item : draft.items()) {
      if (item.item_id() == "manual.thrust_manipulation") {
        // Shared decision: the clinician explains manipulation and records the patient's consent.
        approve.set_manipulation_consent(true);
        std::cout << "   the patient gives informed consent to spinal manipulation (recorded at approval)\n";
      }
    }
    ppb::ApprovePlanResponse approved;
    clinician.Call("ApprovePlan", planning.get(), &ppb::PlanningService::Stub::ApprovePlan, approve, &approved);
    std::cout << "   approved: status " << ppb::PlanStatus_Name(approved.plan().status()) << ", etag "
              << approved.plan().etag() << "\n";

    std::string exercise_id;
    for (const auto& item : approved.plan().items()) {
      if (item.kind() == ppb::PLAN_ITEM_KIND_EXERCISE && exercise_id.empty()) exercise_id = item.item_id();
    }
    // The patient's app reads the plan in its user's language (Spanish here), English where the
    // library has no translation.
    ppb::GetActivePlanRequest in_spanish;
    in_spanish.set_patient_id(patient_id);
    in_spanish.set_locale("es");
    ppb::GetActivePlanResponse spanish;
    patient.Call("GetActivePlan", planning.get(), &ppb::PlanningService::Stub::GetActivePlan, in_spanish, &spanish);
    int translated = 0;
    for (const auto& item : spanish.plan().items()) translated += item.locale() == "es" ? 1 : 0;
    std::cout << "   the patient app reads it in Spanish: " << translated << " of " << spanish.plan().items_size()
              << " items translated, the rest in English";
    for (const auto& item : spanish.plan().items()) {
      if (item.locale() == "es") {
        std::cout << ", e.g. \"" << item.title() << "\"";
        break;
      }
    }
    std::cout << "\n";

    std::cout << "\n3. A telehealth visit and two home-exercise sessions\n";
    gpb::RecordVisitRequest visit;
    visit.set_request_id(Rid("visit"));
    visit.set_patient_id(patient_id);
    visit.set_kind(gpb::VISIT_KIND_TELEHEALTH);
    visit.set_pain_before(5);
    visit.set_pain_after(4);
    visit.add_delivered_item_ids(exercise_id);
    gpb::RecordVisitResponse visited;
    clinician.Call("RecordVisit", progress.get(), &gpb::ProgressService::Stub::RecordVisit, visit, &visited);
    std::cout << "   visit " << visited.visit().visit_id() << " recorded (pain 5 -> 4)\n";
    for (int day = 1; day <= 2; ++day) {
      gpb::LogHomeExerciseRequest log;
      log.set_request_id(Rid("log" + std::to_string(day)));
      log.set_patient_id(patient_id);
      log.set_exercise_id(exercise_id);
      log.set_sets_done(2);
      log.set_reps_done(10);
      log.set_pain_during(day == 1 ? 4 : 3);
      log.set_pain_after(day == 1 ? 4 : 3);
      log.set_usual_pain(day == 1 ? 5 : 4);  // the day's usual pain, asked with its first log
      log.mutable_safety_net();  // the safety-net questions, all answered "no"
      gpb::LogHomeExerciseResponse logged;
      patient.Call("LogHomeExercise", progress.get(), &gpb::ProgressService::Stub::LogHomeExercise, log, &logged);
      std::cout << "   home log " << logged.log().log_id() << ": " << exercise_id << " 2x10, pain after "
                << log.pain_after() << ", usual pain today " << log.usual_pain() << "\n";
    }

    std::cout << "\n4. Progress summary (read by the patient app)\n";
    gpb::GetProgressSummaryRequest summary_request;
    summary_request.set_patient_id(patient_id);
    gpb::GetProgressSummaryResponse summary;
    patient.Call("GetProgressSummary", progress.get(), &gpb::ProgressService::Stub::GetProgressSummary,
                 summary_request, &summary);
    const auto& s = summary.summary();
    std::cout << "   active plan " << s.active_plan().plan_id() << ", visits " << s.visit_count() << ", home logs "
              << s.home_log_count() << "\n   pain trend:";
    for (const auto& point : s.pain_trend()) std::cout << " " << point.pain() << " (" << point.source() << ")";
    std::cout << "\n   baseline " << s.baseline_pain() << " -> latest " << s.latest_pain() << ": change "
              << s.pain_change() << (s.pain_change_meaningful() ? " (meaningful: >= 2 points)" : " (below the 2-point MCID)")
              << "\n   home-programme adherence "
              << (s.adherence().empty() ? std::string("not due yet (first days of the plan)")
                                        : std::to_string(static_cast<int>(s.adherence_percent())) + "%")
              << ", " << gpb::ResponderStatus_Name(s.responder_status()) << "\n";
    std::cout << "   expected course (" << gpb::CourseStatus_Name(s.expected_course().status()) << ", "
              << gpb::CourseBasis_Name(s.expected_course().basis()) << "): " << s.expected_course().summary();
    for (const auto& milestone : s.expected_course().milestones()) {
      std::cout << "\n   week " << milestone.week() << ": " << milestone.expectation();
    }
    std::cout << "\n   where you are: " << s.expected_course().where_now() << "\n";

    std::cout << "\n5. Oswestry re-measure and the clinician's progress evaluation\n";
    gpb::RecordOutcomeRequest outcome;
    outcome.set_request_id(Rid("odi-2"));
    outcome.set_patient_id(patient_id);
    outcome.set_instrument(cpb::INSTRUMENT_ODI);
    const int odi_now[] = {1, 0, 2, 1, 1, 1, 1, 0, 1, 1};
    for (int i = 0; i < 10; ++i) *outcome.add_answers() = Answer(cpb::INSTRUMENT_ODI, "odi." + std::to_string(i + 1), odi_now[i], i == 7);
    gpb::RecordOutcomeResponse recorded;
    patient.Call("RecordOutcome", progress.get(), &gpb::ProgressService::Stub::RecordOutcome, outcome, &recorded);
    std::cout << "   Oswestry now " << recorded.measure().score().score() << "% ("
              << recorded.measure().score().band() << ")\n";
    gpb::EvaluateProgressRequest evaluate;
    evaluate.set_request_id(Rid("evaluate"));
    evaluate.set_patient_id(patient_id);
    gpb::EvaluateProgressResponse evaluated;
    clinician.Call("EvaluateProgress", progress.get(), &gpb::ProgressService::Stub::EvaluateProgress, evaluate, &evaluated);
    const auto& e = evaluated.evaluation();
    std::cout << "   decision: " << gpb::Decision_Name(e.decision()) << " (" << gpb::ResponderStatus_Name(e.responder_status())
              << ", " << gpb::EarlyResponse_Name(e.early_response()) << (e.recovered() ? ", recovered" : "") << ")\n";
    for (const auto& reason : e.reasons()) std::cout << "     - " << reason << "\n";
    std::cout << "   plan " << (e.plan_adjusted() ? "adjusted to revision " : "unchanged at revision ") << e.plan().revision()
              << "\n";

    std::cout << "\n6. The patient reports symptoms between sessions (any time, with or without an exercise)\n";
    gpb::ReportSymptomsRequest symptoms;
    symptoms.set_request_id(Rid("symptoms"));
    symptoms.set_patient_id(patient_id);
    symptoms.mutable_safety_net();  // the safety-net questions, all answered "no"
    gpb::ReportSymptomsResponse reported;
    patient.Call("ReportSymptoms", progress.get(), &gpb::ProgressService::Stub::ReportSymptoms, symptoms, &reported);
    std::cout << "   symptom report " << reported.report().report_id() << ": "
              << apb::RedFlagAction_Name(reported.report().red_flags().action()) << "\n   advice: "
              << reported.report().advice() << "\n";

    std::cout << "\n7. The chain's data protection officer asks who touched the patient's record\n";
    Caller auditor(token("dpo-demo-1", "auditor", ""));
    std::map<std::string, int> per_service;
    std::set<std::string> actors;
    std::string page_token;
    do {
      apb::ListAuditEventsRequest audit;
      audit.mutable_query()->set_patient_id(patient_id);
      audit.set_page_size(500);
      audit.set_page_token(page_token);
      apb::ListAuditEventsResponse trail;
      auditor.Call("ListAuditEvents", assessment.get(), &apb::AssessmentService::Stub::ListAuditEvents, audit, &trail);
      for (const auto& event : trail.events()) {
        ++per_service[event.service()];
        actors.insert(event.actor());
      }
      page_token = trail.next_page_token();
    } while (!page_token.empty());
    std::cout << "   audit records:";
    for (const auto& [service, count] : per_service) std::cout << " " << service << " " << count;
    std::cout << "\n   by:";
    for (const auto& actor : actors) std::cout << " " << actor;
    std::cout << "\n\n8. What an integration watching the event feeds saw of this episode (ids only)\n";
    const auto patience = std::chrono::milliseconds(1500);
    const std::vector<std::pair<const char*, std::vector<std::string>>> feeds = {
        {"assessment", clinician.EventsOf<apb::WatchEventsRequest, apb::WatchEventsResponse>(assessment.get(), patient_id, patience)},
        {"planning", clinician.EventsOf<ppb::WatchEventsRequest, ppb::WatchEventsResponse>(planning.get(), patient_id, patience)},
        {"progress", clinician.EventsOf<gpb::WatchEventsRequest, gpb::WatchEventsResponse>(progress.get(), patient_id, patience)}};
    for (const auto& [service, kinds] : feeds) {
      std::cout << "   " << service << ":";
      for (const auto& kind : kinds) std::cout << " " << kind.substr(std::string("EVENT_KIND_").size());
      std::cout << "\n";
    }
    if (const std::string base = config.Get("fhir-base"); !base.empty()) {
      std::cout << "\n9. The chain's EHR reads the episode over FHIR REST (" << base << ")\n";
      const auto scheme_end = base.find("://");
      const auto path_start = base.find('/', scheme_end == std::string::npos ? 0 : scheme_end + 3);
      httplib::Client http(base.substr(0, path_start));
      http.set_read_timeout(10, 0);
      const std::string prefix = path_start == std::string::npos ? "" : base.substr(path_start);
      const httplib::Headers auth = {{"Authorization", "Bearer " + token("ehr-demo-1", "integrator", "")}};
      for (const char* type : {"CarePlan", "Observation", "Encounter"}) {
        auto result = http.Get(prefix + "/" + type + "?patient=" + patient_id + "&_count=100", auth);
        if (!result || result->status != 200) {
          throw std::runtime_error(std::string("FHIR search of ") + type + " failed: " +
                                   (result ? std::to_string(result->status) + " " + result->body : "no answer"));
        }
        const auto bundle = nlohmann::json::parse(result->body);
        std::cout << "   GET " << type << "?patient=" << patient_id << ": " << bundle["entry"].size() << " resources";
        if (!bundle["entry"].empty()) {
          const auto& first = bundle["entry"][0]["resource"];
          std::cout << " (newest " << type << "/" << first.value("id", "") << ")";
        }
        std::cout << "\n";
      }
    }
    std::cout << "\n10. The clinician discharges the patient (goals met); the discharge summary for the patient and "
                 "their GP\n";
    ppb::GetActivePlanRequest in_use;
    in_use.set_patient_id(patient_id);
    in_use.set_include_suspended(true);
    ppb::GetActivePlanResponse current;
    clinician.Call("GetActivePlan", planning.get(), &ppb::PlanningService::Stub::GetActivePlan, in_use, &current);
    if (current.plan().status() == ppb::PLAN_STATUS_ACTIVE) {
      ppb::CompletePlanRequest complete;
      complete.set_request_id(Rid("discharge"));
      complete.set_plan_id(current.plan().plan_id());
      complete.set_etag(current.plan().etag());
      complete.set_outcome(ppb::PLAN_STATUS_COMPLETED);
      complete.set_discharge_reason(ppb::DISCHARGE_REASON_GOALS_MET);
      complete.set_reason("goals met at the demo's end");
      ppb::CompletePlanResponse completed;
      clinician.Call("CompletePlan", planning.get(), &ppb::PlanningService::Stub::CompletePlan, complete, &completed);
      gpb::GetDischargeSummaryRequest discharge;
      discharge.set_patient_id(patient_id);
      gpb::GetDischargeSummaryResponse summary;
      patient.Call("GetDischargeSummary", progress.get(), &gpb::ProgressService::Stub::GetDischargeSummary, discharge,
                   &summary);
      std::istringstream lines(summary.summary().text());
      std::string line;
      for (int shown = 0; shown < 8 && std::getline(lines, line); ++shown) std::cout << "   " << line << "\n";
      std::cout << "   ... (" << summary.summary().text().size() << " characters: what was used most, the flare-up "
                << "plan, when to come back, the safety net)\n";
    } else {
      std::cout << "   the plan is " << ppb::PlanStatus_Name(current.plan().status()) << ": not discharged\n";
    }

    std::cout << "\n11. The chain's analyst reads the clinic's outcomes this year (aggregates only)\n";
    Caller analyst(token("analyst-demo-1", "analyst", ""));
    gpb::GetOutcomeReportRequest report_request;
    const auto now_seconds =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    report_request.mutable_start_time()->set_seconds(now_seconds - 365LL * 24 * 3600);
    report_request.mutable_end_time()->set_seconds(now_seconds + 3600);
    report_request.set_group_by(gpb::REPORT_GROUPING_CLINIC);
    gpb::GetOutcomeReportResponse report;
    analyst.Call("GetOutcomeReport", progress.get(), &gpb::ProgressService::Stub::GetOutcomeReport, report_request,
                 &report);
    for (const auto& group : report.groups()) {
      std::cout << "   " << group.key() << ": ";
      if (group.suppressed()) {
        std::cout << "suppressed (fewer than " << report.min_group_size() << " episodes)\n";
      } else {
        std::cout << group.episodes_started() << " episodes, " << group.episodes_completed() << " completed, latest pain median ";
        if (group.latest_pain().has_median()) {
          std::cout << group.latest_pain().median() << "\n";
        } else {
          std::cout << "withheld\n";
        }
      }
    }
    std::cout << "\n12. A second patient with sciatica: the neurological examination by side, the sciatica plan, "
                 "and a foot drop progressing at the next visit\n";
    {
      const std::string sciatica_id = patient_id + "-sci";
      apb::EnrolPatientRequest enrol_second;
      enrol_second.set_request_id(Rid("enrol-sci"));
      enrol_second.set_patient_id(sciatica_id);
      enrol_second.set_clinic_id("clinic-demo-north");
      apb::EnrolPatientResponse enrolled_second;
      clinician.Call("EnrolPatient", assessment.get(), &apb::AssessmentService::Stub::EnrolPatient, enrol_second,
                     &enrolled_second);
      auto exam_with_l5 = [](int grade) {
        apb::NeurologicalExamination exam;
        auto* motor = exam.add_myotomes();
        motor->set_root(apb::NERVE_ROOT_L5);
        motor->set_side(apb::BODY_SIDE_LEFT);
        motor->set_grade(grade);
        auto* leg = exam.add_legs();
        leg->set_side(apb::BODY_SIDE_LEFT);
        leg->set_extent(apb::LEG_SYMPTOM_EXTENT_FOOT);
        leg->set_leg_symptoms_onset_days(21);
        leg->set_straight_leg_raise_deg(40);
        leg->set_straight_leg_raise_positive(true);
        return exam;
      };
      apb::CreateAssessmentRequest create;
      create.set_request_id(Rid("assess-sci"));
      create.set_patient_id(sciatica_id);
      *create.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 7);
      for (int i = 1; i <= 10; ++i) *create.add_answers() = Answer(cpb::INSTRUMENT_ODI, "odi." + std::to_string(i), 2);
      create.mutable_red_flag_screen();
      *create.mutable_examination()->mutable_neurological() = exam_with_l5(4);
      apb::CreateAssessmentResponse assessed;
      clinician.Call("CreateAssessment", assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, create,
                     &assessed);
      std::cout << "   assessment: L5 left 4/5, straight-leg raise positive at 40 degrees, leg pain into the foot; "
                << "red flags " << apb::RedFlagAction_Name(assessed.assessment().red_flags().action()) << "\n";
      ppb::GeneratePlanRequest generate_second;
      generate_second.set_request_id(Rid("plan-sci"));
      generate_second.set_assessment_id(assessed.assessment().assessment_id());
      ppb::GeneratePlanResponse generated_second;
      clinician.Call("GeneratePlan", planning.get(), &ppb::PlanningService::Stub::GeneratePlan, generate_second,
                     &generated_second);
      for (const auto& item : generated_second.plan().items()) {
        if (item.item_id() == "edu.sciatica" || item.item_id() == "ex.neural.sciatic_slider") {
          std::cout << "   plan item " << item.item_id() << ": " << item.title() << "\n        source: " << item.source()
                    << "\n";
        }
      }
      ppb::ApprovePlanRequest approve_second;
      approve_second.set_request_id(Rid("approve-sci"));
      approve_second.set_plan_id(generated_second.plan().plan_id());
      approve_second.set_etag(generated_second.plan().etag());
      ppb::ApprovePlanResponse approved_second;
      clinician.Call("ApprovePlan", planning.get(), &ppb::PlanningService::Stub::ApprovePlan, approve_second,
                     &approved_second);
      gpb::RecordVisitRequest recheck;
      recheck.set_request_id(Rid("visit-sci"));
      recheck.set_patient_id(sciatica_id);
      recheck.set_kind(gpb::VISIT_KIND_CLINIC);
      recheck.set_clinic_id("clinic-demo-north");
      *recheck.mutable_neurological() = exam_with_l5(2);
      gpb::RecordVisitResponse rechecked;
      clinician.Call("RecordVisit", progress.get(), &gpb::ProgressService::Stub::RecordVisit, recheck, &rechecked);
      for (const auto& line : rechecked.visit().neurological_changes()) std::cout << "   visit: " << line << "\n";
      std::cout << "   red flags at the visit: " << apb::RedFlagAction_Name(rechecked.visit().red_flags().action());
      for (const auto& concern : rechecked.visit().red_flags().concerns()) {
        for (const auto& reason : concern.reasons()) std::cout << "\n     " << reason;
      }
      ppb::GetActivePlanRequest second_in_use;
      second_in_use.set_patient_id(sciatica_id);
      second_in_use.set_include_suspended(true);
      ppb::GetActivePlanResponse second_plan;
      clinician.Call("GetActivePlan", planning.get(), &ppb::PlanningService::Stub::GetActivePlan, second_in_use,
                     &second_plan);
      std::cout << "\n   the plan is now " << ppb::PlanStatus_Name(second_plan.plan().status())
                << " (the clinic has a red-flag alert)\n";
    }
    std::cout << "\n13. A third patient: a documented session where repeated flexion centralises, a "
                 "re-assessment, and the revised plan the clinician approves\n";
    {
      const std::string third_id = patient_id + "-mdt";
      apb::EnrolPatientRequest enrol_third;
      enrol_third.set_request_id(Rid("enrol-mdt"));
      enrol_third.set_patient_id(third_id);
      enrol_third.set_clinic_id("clinic-demo-north");
      apb::EnrolPatientResponse enrolled_third;
      clinician.Call("EnrolPatient", assessment.get(), &apb::AssessmentService::Stub::EnrolPatient, enrol_third,
                     &enrolled_third);
      apb::CreateAssessmentRequest create;
      create.set_request_id(Rid("assess-mdt"));
      create.set_patient_id(third_id);
      *create.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 6);
      for (int i = 1; i <= 10; ++i) *create.add_answers() = Answer(cpb::INSTRUMENT_ODI, "odi." + std::to_string(i), 1);
      create.mutable_red_flag_screen();
      create.mutable_examination()->set_directional_preference(apb::DIRECTIONAL_PREFERENCE_EXTENSION);
      create.mutable_examination()->set_centralisation(true);
      apb::CreateAssessmentResponse assessed;
      clinician.Call("CreateAssessment", assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, create,
                     &assessed);
      ppb::GeneratePlanRequest generate_third;
      generate_third.set_request_id(Rid("plan-mdt"));
      generate_third.set_assessment_id(assessed.assessment().assessment_id());
      ppb::GeneratePlanResponse generated_third;
      clinician.Call("GeneratePlan", planning.get(), &ppb::PlanningService::Stub::GeneratePlan, generate_third,
                     &generated_third);
      ppb::ApprovePlanRequest approve_third;
      approve_third.set_request_id(Rid("approve-mdt"));
      approve_third.set_plan_id(generated_third.plan().plan_id());
      approve_third.set_etag(generated_third.plan().etag());
      ppb::ApprovePlanResponse approved_third;
      clinician.Call("ApprovePlan", planning.get(), &ppb::PlanningService::Stub::ApprovePlan, approve_third,
                     &approved_third);
      std::cout << "   plan approved, direction " << approved_third.plan().direction() << "\n";
      gpb::RecordVisitRequest session_visit;
      session_visit.set_request_id(Rid("visit-mdt"));
      session_visit.set_patient_id(third_id);
      session_visit.set_kind(gpb::VISIT_KIND_CLINIC);
      session_visit.set_clinic_id("clinic-demo-north");
      auto* delivered = session_visit.mutable_session()->add_interventions();
      delivered->set_item_id(approved_third.plan().items(0).item_id());
      delivered->set_sets(2);
      delivered->set_reps(10);
      delivered->set_response(gpb::SYMPTOM_RESPONSE_NO_EFFECT);
      auto* test = session_visit.mutable_session()->add_movement_tests();
      test->set_test(gpb::MOVEMENT_TEST_FLEXION_LYING);
      test->set_repetitions(10);
      test->set_response(gpb::SYMPTOM_RESPONSE_CENTRALISING);
      auto* range = session_visit.mutable_session()->add_range_of_movement();
      range->set_movement(gpb::LUMBAR_MOVEMENT_FLEXION);
      range->set_loss(gpb::MOVEMENT_LOSS_MODERATE);
      session_visit.mutable_session()->add_notes(gpb::SESSION_NOTE_TECHNIQUE_CORRECTED);
      gpb::RecordVisitResponse session_recorded;
      clinician.Call("RecordVisit", progress.get(), &gpb::ProgressService::Stub::RecordVisit, session_visit,
                     &session_recorded);
      for (const auto& line : session_recorded.visit().session_findings()) std::cout << "   visit: " << line << "\n";
      apb::ReassessPatientRequest reassess;
      reassess.set_request_id(Rid("reassess-mdt"));
      reassess.set_previous_assessment_id(assessed.assessment().assessment_id());
      reassess.mutable_examination()->set_directional_preference(apb::DIRECTIONAL_PREFERENCE_FLEXION);
      reassess.mutable_examination()->set_centralisation(true);
      reassess.set_reason("centralised with repeated flexion in lying at visit " + session_recorded.visit().visit_id());
      apb::ReassessPatientResponse reassessed;
      clinician.Call("ReassessPatient", assessment.get(), &apb::AssessmentService::Stub::ReassessPatient, reassess,
                     &reassessed);
      for (const auto& change : reassessed.changes()) {
        std::cout << "   re-assessment: " << change.field() << " " << change.before() << " -> " << change.after() << "\n";
      }
      ppb::GeneratePlanRequest revise;
      revise.set_request_id(Rid("plan-mdt-2"));
      revise.set_assessment_id(reassessed.assessment().assessment_id());
      ppb::GeneratePlanResponse revised;
      clinician.Call("GeneratePlan", planning.get(), &ppb::PlanningService::Stub::GeneratePlan, revise, &revised);
      for (const auto& change : revised.plan().proposed_changes()) {
        if (change.kind() == ppb::PROPOSED_CHANGE_KIND_CLASSIFICATION) {
          std::cout << "   proposed: " << change.before() << " -> " << change.after() << "\n";
        } else if (change.kind() == ppb::PROPOSED_CHANGE_KIND_ADDED || change.kind() == ppb::PROPOSED_CHANGE_KIND_REMOVED) {
          std::cout << "   proposed: " << (change.kind() == ppb::PROPOSED_CHANGE_KIND_ADDED ? "add " : "remove ")
                    << change.item_id() << "\n";
        }
      }
      ppb::ApprovePlanRequest approve_revised;
      approve_revised.set_request_id(Rid("approve-mdt-2"));
      approve_revised.set_plan_id(revised.plan().plan_id());
      approve_revised.set_etag(revised.plan().etag());
      ppb::ApprovePlanResponse approved_revised;
      clinician.Call("ApprovePlan", planning.get(), &ppb::PlanningService::Stub::ApprovePlan, approve_revised,
                     &approved_revised);
      std::cout << "   revised plan approved: direction " << approved_revised.plan().direction() << ", replaces "
                << revised.plan().replaces_plan_id() << "\n";
    }
    std::cout << "\n14. The chain's own library: its integration publishes an exercise and a template; a "
                 "clinician starts a draft from the template\n";
    {
      Caller integrator(token("ehr-demo-1", "integrator", ""));
      ppb::ListPlanTemplatesResponse current;
      clinician.Call("ListPlanTemplates", planning.get(), &ppb::PlanningService::Stub::ListPlanTemplates,
                     ppb::ListPlanTemplatesRequest(), &current);
      ppb::PublishTenantLibraryRequest publish;
      publish.set_request_id(Rid("tenant-library"));
      publish.set_expected_version(current.version());
      publish.set_reason("the demo chain's lifting programme");
      publish.set_document(R"({"entries": [{"id": "tenant.ex.hip_hinge_band", "kind": "exercise",
        "category": "functional", "title": "Banded hip hinge",
        "instructions": "Stand tall, band around the hips; hinge forward from the hips with a straight back, then stand up.",
        "reason": "The demo chain's lifting programme", "source": "Demo clinic protocol 2026",
        "dose": {"sets": 2, "reps": 10, "hold_seconds": 0, "sessions_per_week": 3, "duration_minutes": 0},
        "phases": ["movement_control", "function_optimisation"],
        "contraindications": ["loading_contraindicated", "flexion_loading"]}],
       "templates": [{"id": "tenant.tpl.back_to_lifting", "name": "Back to lifting",
        "description": "The chain's start for manual workers",
        "items": [{"intervention_id": "tenant.ex.hip_hinge_band"}, {"intervention_id": "ex.motor.bird_dog"},
                  {"intervention_id": "edu.self_management"}]}]})");
      ppb::PublishTenantLibraryResponse published;
      integrator.Call("PublishTenantLibrary", planning.get(), &ppb::PlanningService::Stub::PublishTenantLibrary, publish,
                      &published);
      std::cout << "   tenant library version " << published.library().version() << ": "
                << published.library().entry_count() << " entry, " << published.library().template_count()
                << " template, published by " << published.library().published_by() << "\n";
      apb::CreateAssessmentRequest create;
      create.set_request_id(Rid("assess-tpl"));
      create.set_patient_id(patient_id + "-tpl");
      create.set_clinic_id("clinic-demo-north");
      *create.add_answers() = Answer(cpb::INSTRUMENT_NPRS, "nprs", 4);
      create.mutable_red_flag_screen();
      apb::CreateAssessmentResponse assessed;
      clinician.Call("CreateAssessment", assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, create,
                     &assessed);
      ppb::GeneratePlanRequest from_template;
      from_template.set_request_id(Rid("plan-tpl"));
      from_template.set_assessment_id(assessed.assessment().assessment_id());
      from_template.set_template_id("tenant.tpl.back_to_lifting");
      ppb::GeneratePlanResponse drafted;
      clinician.Call("GeneratePlan", planning.get(), &ppb::PlanningService::Stub::GeneratePlan, from_template, &drafted);
      std::cout << "   draft from template " << drafted.plan().template_id() << " (tenant library v"
                << drafted.plan().tenant_library_version() << "):";
      for (const auto& item : drafted.plan().items()) std::cout << " " << item.item_id();
      std::cout << "\n";
    }
    std::cout << "\nDemo episode complete.\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "demo: " << e.what() << "\n";
    return 1;
  }
}
