#pragma once
// In-memory fakes of the store seams (the interfaces the apps keep their
// records behind), for use-case tests of successful paths that run in
// milliseconds. They keep the stores' contracts that the use cases rely on
// (request ids replay their first response and refuse another request, a write
// commits whole or not at all, tenants and patients are kept apart); the
// integration suites hold the real stores to the same contracts.
// Single-threaded: a test drives one call at a time.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "active_plan_cache.h"
#include "assessment_records.h"
#include "intake_sections.h"
#include "intake_store.h"
#include "physio/auth/call_context.h"
#include "physio/common/error.h"
#include "physio/redis/redis_idempotency.h"
#include "plan_records.h"
#include "progress_records.h"
#include "visit_session_store.h"

namespace physio::testing {

// One request id's place among the fakes' stored responses (RedisIdempotency's key, unhashed).
inline std::string IdOf(const IdempotencyKey& key) {
  return key.service_prefix + "|" + key.tenant + "|" + key.principal + "|" + key.method + "|" + key.request_id;
}

// Request ids and their stored responses, as both idempotency stores keep them.
class StoredResponses {
 public:
  // The response stored for `id`, if any; INVALID_ARGUMENT when it was for another request.
  std::optional<std::string> Find(const std::string& id, const std::string& fingerprint) const {
    auto found = responses_.find(id);
    if (found == responses_.end()) return std::nullopt;
    if (found->second.first != fingerprint) {
      throw Error(ErrorCode::kInvalidArgument, kRequestIdReused);
    }
    return found->second.second;
  }
  void Remember(const std::string& id, const std::string& fingerprint, const std::string& response) {
    responses_[id] = {fingerprint, response};
  }
  // A session write once per request, as the stores' once-scripts (OnceScriptBody) make it: a
  // retry gets back the session as the first attempt left it and changes nothing; otherwise
  // `change()` runs, its session is remembered, and `applied` counts it.
  template <typename Session, typename Change>
  Session Once(const SubmissionId& submission, int& applied, Change change) {
    const std::string id = IdOf(submission.key);
    if (auto stored = Find(id, submission.fingerprint)) {
      Session replayed;
      replayed.ParseFromString(*stored);
      return replayed;
    }
    Session changed = change();
    Remember(id, submission.fingerprint, changed.SerializeAsString());
    ++applied;
    return changed;
  }

 private:
  std::map<std::string, std::pair<std::string, std::string>> responses_;
};

class FakeSessionIdempotency final : public SessionIdempotency {
 public:
  std::string Run(const IdempotencyKey& key, const std::string& fingerprint, Clock::time_point,
                  const std::function<std::string()>& mutate) override {
    const std::string id = IdOf(key);
    if (auto stored = responses_.Find(id, fingerprint)) return *stored;
    std::string response = mutate();
    responses_.Remember(id, fingerprint, response);
    ++mutations;
    return response;
  }
  int mutations = 0;  // requests that ran (not replays)

 private:
  StoredResponses responses_;
};

// The write-once half of a fake record store: a write works on a copy of
// `state` (through `Writer`, the fake's writer over that copy) that replaces it
// only when the write returns, as a transaction commits or rolls back.
template <typename Records, typename State, typename Writer>
class FakeIdempotentRecords : public Records {
 public:
  using WriterInterface = typename Writer::Interface;

  std::string WriteOnce(const PgIdempotencyKey& key, const std::string& fingerprint, Clock::time_point,
                        const std::function<std::string(WriterInterface&)>& write,
                        const std::function<void(const std::string&)>& describe) override {
    const std::string id = Id(key);
    if (auto stored = responses_.Find(id, fingerprint)) {
      if (describe) describe(*stored);
      return *stored;
    }
    State staged = state;
    Writer writer(staged);
    std::string response = write(writer);
    if (describe) describe(response);
    state = std::move(staged);
    responses_.Remember(id, fingerprint, response);
    ++committed_writes;
    return response;
  }
  std::optional<std::string> FindReplay(const PgIdempotencyKey& key, const std::string& fingerprint,
                                        Clock::time_point) override {
    ++replay_lookups;
    return responses_.Find(Id(key), fingerprint);
  }

  State state;
  int committed_writes = 0;  // writes that ran and committed (not replays)
  int replay_lookups = 0;

 private:
  static std::string Id(const PgIdempotencyKey& key) {
    return key.schema + "|" + key.tenant + "|" + key.principal + "|" + key.method + "|" + key.request_id;
  }
  StoredResponses responses_;
};

// A feed event as a writer appended it.
struct FakeEvent {
  std::string tenant, kind, patient_id, resource_id;
};

// ---- assessment ----

class FakeIntakeStore final : public assessment::IntakeStore {
 public:
  void Create(const CallContext& ctx, const std::string& session_id, const std::string& patient_id,
              const std::vector<assessment::InstrumentKind>& instruments, Clock::time_point) override {
    assessment::v1::IntakeSession session;
    session.set_session_id(session_id);
    session.set_patient_id(patient_id);
    session.set_status(assessment::v1::INTAKE_STATUS_OPEN);
    for (auto kind : instruments) session.add_instruments(assessment::ProtoOf(kind));
    sessions[{ctx.tenant, session_id}] = session;
  }
  assessment::v1::IntakeSession Read(const CallContext& ctx, const std::string& session_id,
                                     Clock::time_point) override {
    ++reads;
    return Visible(ctx, session_id);
  }
  assessment::v1::IntakeSession Submit(const CallContext& ctx, const std::string& session_id,
                                       const assessment::IntakeChanges& changes,
                                       const SubmissionId& submission, Clock::time_point) override {
    return submissions_.Once<assessment::v1::IntakeSession>(submission, submissions,
                                                            [&] { return Changed(ctx, session_id, changes); });
  }
  void MarkCompleted(const CallContext& ctx, const std::string& session_id, const std::string& assessment_id,
                     Clock::time_point) override {
    auto found = sessions.find({ctx.tenant, session_id});
    if (found == sessions.end() || found->second.status() != assessment::v1::INTAKE_STATUS_OPEN) return;
    found->second.set_status(assessment::v1::INTAKE_STATUS_COMPLETED);
    found->second.set_assessment_id(assessment_id);
  }

  std::map<std::pair<std::string, std::string>, assessment::v1::IntakeSession> sessions;  // by tenant, session id
  int reads = 0;
  int submissions = 0;  // submissions that changed a session (not replays)

 private:
  assessment::v1::IntakeSession Changed(const CallContext& ctx, const std::string& session_id,
                                        const assessment::IntakeChanges& changes) {
    assessment::v1::IntakeSession& session = Visible(ctx, session_id);
    if (session.status() != assessment::v1::INTAKE_STATUS_OPEN) {
      throw Error(ErrorCode::kFailedPrecondition, "intake session is already completed");
    }
    for (size_t i = 0; i < changes.answers.size(); ++i) {
      const auto instrument = assessment::ProtoOf(changes.answers[i].instrument);
      const auto& chosen = session.instruments();
      if (std::find(chosen.begin(), chosen.end(), instrument) == chosen.end()) {
        ThrowInvalidArgument("answers[" + std::to_string(i) + "].instrument", "is not one of this intake's instruments");
      }
    }
    if (changes.history) *session.mutable_history() = *changes.history;
    if (changes.examination) *session.mutable_examination() = *changes.examination;
    if (changes.red_flag_screen) *session.mutable_red_flag_screen() = *changes.red_flag_screen;
    // One answer per item, the latest winning, ordered by instrument and item as the Redis store returns them.
    std::map<std::pair<int, std::string>, common::v1::InstrumentAnswer> answers;
    for (const auto& answer : session.answers()) answers[{answer.instrument(), answer.item_id()}] = answer;
    for (const auto& change : changes.answers) {
      common::v1::InstrumentAnswer answer;
      answer.set_instrument(assessment::ProtoOf(change.instrument));
      answer.set_item_id(change.item_id);
      answer.set_declined(change.declined);
      if (!change.declined) answer.set_value(change.value);
      if (!change.declined) answer.set_text(change.text);
      answers[{answer.instrument(), answer.item_id()}] = answer;
    }
    session.clear_answers();
    for (auto& [item, answer] : answers) *session.add_answers() = answer;
    return session;
  }
  // Another tenant's or another patient's session is not there (staff see their tenant's).
  assessment::v1::IntakeSession& Visible(const CallContext& ctx, const std::string& session_id) {
    auto found = sessions.find({ctx.tenant, session_id});
    if (found == sessions.end() || (!IsStaff(ctx) && ctx.patient_id != found->second.patient_id())) {
      throw Error(ErrorCode::kNotFound, "intake session not found or expired");
    }
    return found->second;
  }

  StoredResponses submissions_;  // each submission's session as it left it, by request id
};

struct FakeAssessmentState {
  // By tenant and assessment id; `order` numbers them as they were stored (newest highest).
  std::map<std::pair<std::string, std::string>, assessment::VersionedAssessment> assessments;
  std::map<std::pair<std::string, std::string>, long> order;
  std::vector<FakeEvent> events;
  // By tenant and patient: clinics now, and every change in order.
  std::map<std::pair<std::string, std::string>, std::set<std::string>> clinics;
  std::map<std::pair<std::string, std::string>, std::vector<assessment::v1::ClinicChange>> clinic_history;
  std::map<std::pair<std::string, std::string>, std::vector<assessment::v1::ConsentRecord>> consents;  // oldest first
  long next_consent = 1;
};

class FakeAssessmentWriter final : public assessment::AssessmentWriter {
 public:
  using Interface = assessment::AssessmentWriter;
  explicit FakeAssessmentWriter(FakeAssessmentState& state) : state_(state) {}
  void Insert(const std::string& tenant, const assessment::v1::Assessment& assessment) override {
    for (const auto& [key, stored] : state_.assessments) {
      if (key.first == tenant && !assessment.intake_session_id().empty() &&
          stored.assessment.intake_session_id() == assessment.intake_session_id()) {
        throw Error(ErrorCode::kFailedPrecondition, "session_id: intake already completed by another request");
      }
    }
    state_.assessments[{tenant, assessment.assessment_id()}] = {assessment, 1};
    state_.order[{tenant, assessment.assessment_id()}] = static_cast<long>(state_.order.size()) + 1;
  }
  std::optional<assessment::VersionedAssessment> FindForUpdate(const std::string& tenant,
                                                               const std::string& assessment_id) override {
    auto found = state_.assessments.find({tenant, assessment_id});
    if (found == state_.assessments.end()) return std::nullopt;
    return found->second;
  }
  void Replace(const std::string& tenant, const assessment::v1::Assessment& assessment, long version) override {
    state_.assessments.at({tenant, assessment.assessment_id()}) = {assessment, version};
  }
  void AppendEvent(const std::string& tenant, const std::string& kind, const std::string& patient_id,
                   const std::string& resource_id) override {
    state_.events.push_back({tenant, kind, patient_id, resource_id});
  }
  std::set<std::string> LockClinics(const std::string& tenant, const std::string& patient_id) override {
    return state_.clinics[{tenant, patient_id}];
  }
  void AddClinic(const std::string& tenant, const std::string& patient_id, const std::string& clinic_id,
                 const std::string& by, const std::string& reason) override {
    state_.clinics[{tenant, patient_id}].insert(clinic_id);
    Record(tenant, patient_id, clinic_id, assessment::v1::CLINIC_CHANGE_KIND_ENROLLED, by, reason);
  }
  void RemoveClinic(const std::string& tenant, const std::string& patient_id, const std::string& clinic_id,
                    const std::string& by, const std::string& reason) override {
    state_.clinics[{tenant, patient_id}].erase(clinic_id);
    Record(tenant, patient_id, clinic_id, assessment::v1::CLINIC_CHANGE_KIND_LEFT, by, reason);
  }
  assessment::v1::ConsentRecord AddConsent(const std::string& tenant, const assessment::v1::ConsentRecord& record) override {
    assessment::v1::ConsentRecord stored = record;
    stored.set_consent_id("consent-" + std::to_string(state_.next_consent++));
    state_.consents[{tenant, record.patient_id()}].push_back(stored);
    return stored;
  }

 private:
  void Record(const std::string& tenant, const std::string& patient_id, const std::string& clinic_id,
              assessment::v1::ClinicChangeKind kind, const std::string& by, const std::string& reason) {
    assessment::v1::ClinicChange change;
    change.set_clinic_id(clinic_id);
    change.set_change(kind);
    change.set_changed_by(by);
    change.set_reason(reason);
    state_.clinic_history[{tenant, patient_id}].push_back(change);
  }
  FakeAssessmentState& state_;
};

class FakeAssessmentRecords final
    : public FakeIdempotentRecords<assessment::AssessmentRecords, FakeAssessmentState, FakeAssessmentWriter> {
 public:
  std::optional<assessment::v1::Assessment> Find(const std::string& tenant, const std::string& assessment_id,
                                                 Clock::time_point) override {
    auto found = state.assessments.find({tenant, assessment_id});
    if (found == state.assessments.end()) return std::nullopt;
    return found->second.assessment;
  }
  // Each ListForPatient's deadline, and what it does first (a test's slow store).
  std::vector<Clock::time_point> list_deadlines;
  std::function<void()> before_list;
  assessment::AssessmentPage ListForPatient(const std::string& tenant, const std::string& patient_id,
                                            const KeysetPosition& after, int page_size,
                                            Clock::time_point deadline) override {
    list_deadlines.push_back(deadline);
    if (before_list) before_list();
    // Newest first; the position's created_at is the fake's store order.
    std::vector<std::pair<long, const assessment::v1::Assessment*>> matching;
    for (const auto& [key, stored] : state.assessments) {
      if (key.first != tenant || stored.assessment.patient_id() != patient_id) continue;
      const long order = state.order.at(key);
      if (after.created_at && order >= std::stol(*after.created_at)) continue;
      matching.push_back({order, &stored.assessment});
    }
    std::sort(matching.begin(), matching.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    assessment::AssessmentPage page;
    for (size_t i = 0; i < matching.size() && static_cast<int>(i) < page_size; ++i) {
      page.assessments.push_back(*matching[i].second);
    }
    if (static_cast<int>(matching.size()) > page_size) {
      page.next = KeysetPosition{std::to_string(matching[page_size - 1].first), page.assessments.back().assessment_id()};
    }
    return page;
  }
  assessment::v1::PatientClinics PatientClinics(const std::string& tenant, const std::string& patient_id,
                                                Clock::time_point) override {
    assessment::v1::PatientClinics out;
    out.set_patient_id(patient_id);
    for (const auto& clinic : state.clinics[{tenant, patient_id}]) out.add_clinic_ids(clinic);
    for (const auto& change : state.clinic_history[{tenant, patient_id}]) *out.add_history() = change;
    return out;
  }
  std::optional<std::string> PatientOfConsent(const std::string& tenant, const std::string& consent_id,
                                              Clock::time_point) override {
    for (const auto& [key, records] : state.consents) {
      if (key.first != tenant) continue;
      for (const auto& record : records) {
        if (record.consent_id() == consent_id) return record.patient_id();
      }
    }
    return std::nullopt;
  }
  std::vector<assessment::v1::ConsentRecord> Consents(const std::string& tenant, const std::string& patient_id,
                                                      Clock::time_point) override {
    return state.consents[{tenant, patient_id}];
  }
};

// ---- planning ----

struct FakePlanState {
  std::map<std::pair<std::string, std::string>, planning::VersionedPlan> plans;  // by tenant, plan id
  std::map<std::pair<std::string, int>, planning::StoredTenantLibrary> tenant_libraries;  // by tenant, version
  std::vector<std::pair<std::string, planning::v1::PlanRevision>> revisions;    // with their tenant, in order
  std::vector<FakeEvent> events;
};

class FakePlanWriter final : public planning::PlanWriter {
 public:
  using Interface = planning::PlanWriter;
  explicit FakePlanWriter(FakePlanState& state) : state_(state) {}
  void Insert(const std::string& tenant, const planning::v1::Plan& plan) override {
    state_.plans[{tenant, plan.plan_id()}] = {plan, 1};
  }
  std::optional<planning::VersionedPlan> FindForUpdate(const std::string& tenant, const std::string& plan_id) override {
    auto found = state_.plans.find({tenant, plan_id});
    if (found == state_.plans.end()) return std::nullopt;
    return found->second;
  }
  std::vector<planning::VersionedPlan> InUseForUpdate(const std::string& tenant,
                                                      const std::string& patient_id) override {
    std::vector<planning::VersionedPlan> in_use;
    for (const auto& [key, stored] : state_.plans) {
      if (key.first == tenant && stored.plan.patient_id() == patient_id && InUse(stored.plan)) in_use.push_back(stored);
    }
    return in_use;
  }
  void Update(const std::string& tenant, const planning::v1::Plan& plan, long version) override {
    for (const auto& [key, stored] : state_.plans) {
      if (key.first == tenant && key.second != plan.plan_id() && stored.plan.patient_id() == plan.patient_id() &&
          InUse(stored.plan) && InUse(plan)) {
        throw Error(ErrorCode::kAborted, "another plan of this patient was approved at the same time; read and retry");
      }
    }
    state_.plans.at({tenant, plan.plan_id()}) = {plan, version};
  }
  void AddRevision(const std::string& tenant, const planning::v1::Plan& plan, const std::string& change,
                   const std::string& reason, const std::string& changed_by) override {
    planning::v1::PlanRevision revision;
    revision.set_revision(plan.revision());
    revision.set_change(change);
    revision.set_reason(reason);
    revision.set_changed_by(changed_by);
    *revision.mutable_plan() = plan;
    state_.revisions.emplace_back(tenant, revision);
  }
  void AppendEvent(const std::string& tenant, const std::string& kind, const std::string& patient_id,
                   const std::string& resource_id) override {
    state_.events.push_back({tenant, kind, patient_id, resource_id});
  }
  // From the plans: an episode none of whose plans ended and one of which is in use (or was
  // superseded: a plan of it carries on), else the one that ended last.
  std::optional<planning::LatestEpisode> LatestEpisodeForUpdate(const std::string& tenant,
                                                                const std::string& patient_id) override {
    std::map<std::string, std::pair<bool, std::int64_t>> episodes;  // id -> live, ended
    for (const auto& [key, stored] : state_.plans) {
      const auto& plan = stored.plan;
      if (key.first != tenant || plan.patient_id() != patient_id || plan.episode_id().empty()) continue;
      auto& episode = episodes[plan.episode_id()];
      episode.first |= InUse(plan) || plan.status() == planning::v1::PLAN_STATUS_SUPERSEDED;
      if (plan.has_end_time()) episode.second = std::max(episode.second, plan.end_time().seconds());
    }
    std::optional<planning::LatestEpisode> latest;
    for (const auto& [id, episode] : episodes) {
      if (episode.first && episode.second == 0) return planning::LatestEpisode{id, true, 0};
      if (episode.second > 0 && (!latest || episode.second > latest->ended_seconds)) {
        latest = planning::LatestEpisode{id, false, episode.second};
      }
    }
    return latest;
  }

  std::optional<planning::StoredTenantLibrary> LatestTenantLibrary(const std::string& tenant) override {
    std::optional<planning::StoredTenantLibrary> latest;
    for (const auto& [key, library] : state_.tenant_libraries) {
      if (key.first == tenant && (!latest || key.second > latest->version)) latest = library;
    }
    return latest;
  }
  void InsertTenantLibrary(const std::string& tenant, const planning::StoredTenantLibrary& library) override {
    if (!state_.tenant_libraries.emplace(std::make_pair(tenant, library.version), library).second) {
      throw Error(ErrorCode::kAborted, "expected_version: published at the same time");
    }
  }

 private:
  static bool InUse(const planning::v1::Plan& plan) {
    return plan.status() == planning::v1::PLAN_STATUS_ACTIVE || plan.status() == planning::v1::PLAN_STATUS_SUSPENDED;
  }
  FakePlanState& state_;
};

class FakePlanRecords final : public FakeIdempotentRecords<planning::PlanRecords, FakePlanState, FakePlanWriter> {
 public:
  int TenantLibraryVersion(const std::string& tenant, Clock::time_point) override {
    int latest = 0;
    for (const auto& [key, library] : state.tenant_libraries) {
      if (key.first == tenant) latest = std::max(latest, key.second);
    }
    return latest;
  }
  std::optional<planning::StoredTenantLibrary> FindTenantLibrary(const std::string& tenant, int version,
                                                                 Clock::time_point deadline) override {
    if (version == 0) version = TenantLibraryVersion(tenant, deadline);
    auto found = state.tenant_libraries.find({tenant, version});
    if (found == state.tenant_libraries.end()) return std::nullopt;
    return found->second;
  }
  std::optional<planning::v1::Plan> Find(const std::string& tenant, const std::string& plan_id,
                                         Clock::time_point) override {
    ++reads;
    auto found = state.plans.find({tenant, plan_id});
    if (found == state.plans.end()) return std::nullopt;
    return found->second.plan;
  }
  std::optional<planning::v1::Plan> FindInUse(const std::string& tenant, const std::string& patient_id,
                                              Clock::time_point) override {
    ++reads;
    FakePlanWriter reader(state);
    auto in_use = reader.InUseForUpdate(tenant, patient_id);
    if (in_use.empty()) return std::nullopt;
    return in_use.front().plan;
  }
  std::vector<planning::v1::Plan> ListForPatient(const std::string& tenant, const std::string& patient_id, int limit,
                                                 Clock::time_point) override {
    ++reads;
    std::vector<planning::v1::Plan> plans;
    for (const auto& [key, stored] : state.plans) {
      if (key.first == tenant && stored.plan.patient_id() == patient_id && static_cast<int>(plans.size()) < limit) {
        plans.push_back(stored.plan);
      }
    }
    return plans;
  }
  planning::RevisionPage ListRevisions(const std::string& tenant, const std::string& plan_id, int after_revision,
                                       int page_size, Clock::time_point) override {
    ++reads;
    planning::RevisionPage page;
    auto plan = state.plans.find({tenant, plan_id});
    if (plan == state.plans.end()) return page;
    page.patient_id = plan->second.plan.patient_id();
    for (const auto& [revision_tenant, revision] : state.revisions) {
      if (revision_tenant != tenant || revision.plan().plan_id() != plan_id || revision.revision() <= after_revision) {
        continue;
      }
      if (static_cast<int>(page.revisions.size()) == page_size) {
        page.more = true;
        break;
      }
      page.revisions.push_back(revision);
    }
    return page;
  }
  int reads = 0;  // reads of PostgreSQL's records (a cache hit makes none)
};

// The active-plan cache's contract: an entry is served only under the
// patient's current generation, and a fill lands only if no write moved it.
class FakeActivePlanCache final : public planning::ActivePlanCache {
 public:
  void BumpGenerationBeforeCommit(const CallContext& ctx, const std::string& patient_id, Clock::time_point) override {
    ++generations[{ctx.tenant, patient_id}];
  }
  void InvalidateAfterCommit(const CallContext& ctx, const std::string& patient_id, Clock::time_point) override {
    ++generations[{ctx.tenant, patient_id}];
    entries.erase({ctx.tenant, patient_id});
  }
  std::optional<Lookup> ReadBytes(const CallContext& ctx, const std::string& patient_id, Clock::time_point,
                                  const TakePlanBytes& take) override {
    const std::pair<std::string, std::string> key{ctx.tenant, patient_id};
    Lookup lookup{std::to_string(generations[key]), false};
    auto entry = entries.find(key);
    if (entry != entries.end() && entry->second.first == lookup.generation) {
      lookup.hit = take(entry->second.second.SerializeAsString());
      if (lookup.hit) ++hits;
    }
    return lookup;
  }
  void Fill(const CallContext& ctx, const std::string& patient_id, const std::string& generation,
            const planning::v1::Plan& plan, Clock::time_point) override {
    const std::pair<std::string, std::string> key{ctx.tenant, patient_id};
    if (std::to_string(generations[key]) == generation) entries[key] = {generation, plan};
  }

  std::map<std::pair<std::string, std::string>, long> generations;  // by tenant, patient
  std::map<std::pair<std::string, std::string>, std::pair<std::string, planning::v1::Plan>> entries;
  int hits = 0;
};

// ---- progress ----

class FakeVisitSessionStore final : public progress::VisitSessionStore {
 public:
  void Create(const CallContext& ctx, const std::string& session_id, const std::string& patient_id,
              progress::v1::VisitKind kind, const std::string& clinic_id, std::int64_t started_at_seconds,
              Clock::time_point) override {
    progress::v1::VisitSession session;
    session.set_session_id(session_id);
    session.set_patient_id(patient_id);
    session.set_kind(kind);
    session.set_clinic_id(clinic_id);
    sessions[{ctx.tenant, session_id}] = {session, started_at_seconds};
  }
  progress::v1::VisitSession Read(const CallContext& ctx, const std::string& session_id, Clock::time_point) override {
    return Stored(ctx, session_id).first;
  }
  progress::v1::VisitSession Update(const CallContext& ctx, const std::string& session_id,
                                    const progress::VisitSessionChanges& changes, const SubmissionId& submission,
                                    Clock::time_point) override {
    return updates_.Once<progress::v1::VisitSession>(submission, updates,
                                                      [&] { return Changed(ctx, session_id, changes); });
  }
  int updates = 0;  // updates that changed a session (not replays)
  std::optional<std::int64_t> StartedAt(const CallContext& ctx, const std::string& session_id,
                                        Clock::time_point) override {
    auto found = sessions.find({ctx.tenant, session_id});
    if (found == sessions.end()) return std::nullopt;
    return found->second.second;
  }
  void MarkCompleted(const CallContext& ctx, const std::string& session_id, const std::string& visit_id,
                     Clock::time_point) override {
    auto& session = Stored(ctx, session_id).first;
    session.set_completed(true);
    session.set_visit_id(visit_id);
  }

  // By tenant and session id: the session and when it started (Unix seconds).
  std::map<std::pair<std::string, std::string>, std::pair<progress::v1::VisitSession, std::int64_t>> sessions;

 private:
  std::pair<progress::v1::VisitSession, std::int64_t>& Stored(const CallContext& ctx, const std::string& session_id) {
    auto found = sessions.find({ctx.tenant, session_id});
    if (found == sessions.end()) throw Error(ErrorCode::kNotFound, "visit session not found or expired");
    return found->second;
  }
  progress::v1::VisitSession Changed(const CallContext& ctx, const std::string& session_id,
                                     const progress::VisitSessionChanges& changes) {
    auto& session = Stored(ctx, session_id).first;
    if (session.completed()) throw Error(ErrorCode::kFailedPrecondition, "visit session is already completed");
    if (changes.pain_before) session.set_pain_before(*changes.pain_before);
    if (changes.pain_after) session.set_pain_after(*changes.pain_after);
    for (const auto& item : changes.delivered_item_ids) {
      const auto& delivered = session.delivered_item_ids();
      if (std::find(delivered.begin(), delivered.end(), item) == delivered.end()) session.add_delivered_item_ids(item);
    }
    if (changes.red_flag_screen) *session.mutable_red_flag_screen() = *changes.red_flag_screen;
    if (changes.session) *session.mutable_session() = *changes.session;
    return session;
  }

  StoredResponses updates_;
};

struct FakeProgressState {
  // Each record with its tenant, in the order written.
  std::vector<std::pair<std::string, progress::v1::Visit>> visits;
  std::vector<std::pair<std::string, progress::v1::HomeExerciseLog>> home_logs;
  std::vector<std::pair<std::string, progress::v1::SymptomReport>> symptom_reports;
  std::vector<std::pair<std::string, progress::v1::OutcomeMeasure>> measures;
  std::vector<std::pair<std::string, progress::v1::Alert>> alerts;
  std::vector<std::pair<std::string, progress::v1::Evaluation>> evaluations;
  std::map<std::pair<std::string, std::string>, std::string> clinic_of_visit;         // by tenant, visit id
  std::map<std::pair<std::string, std::string>, std::string> evaluation_by_adjustment;  // by tenant, key
  std::vector<FakeEvent> events;
  struct EmergencyGrant {
    std::string tenant, grant_id, principal, patient_id, reason;
    std::int64_t expires_unix = 0;
  };
  std::vector<EmergencyGrant> emergency_grants;
};

class FakeProgressWriter final : public progress::ProgressWriter {
 public:
  using Interface = progress::ProgressWriter;
  explicit FakeProgressWriter(FakeProgressState& state) : state_(state) {}
  void InsertVisit(const std::string& tenant, const progress::v1::Visit& visit,
                   const std::optional<std::string>& clinic_id) override {
    state_.visits.emplace_back(tenant, visit);
    if (clinic_id) state_.clinic_of_visit[{tenant, visit.visit_id()}] = *clinic_id;
  }
  void InsertHomeLog(const std::string& tenant, const progress::v1::HomeExerciseLog& log) override {
    state_.home_logs.emplace_back(tenant, log);
  }
  void InsertSymptomReport(const std::string& tenant, const progress::v1::SymptomReport& report) override {
    state_.symptom_reports.emplace_back(tenant, report);
  }
  void InsertOutcome(const std::string& tenant, const progress::v1::OutcomeMeasure& measure) override {
    state_.measures.emplace_back(tenant, measure);
  }
  bool InsertAlertUnlessOpen(const std::string& tenant, const progress::v1::Alert& alert) override {
    for (const auto& [alert_tenant, open] : state_.alerts) {
      if (alert_tenant == tenant && open.patient_id() == alert.patient_id() && open.kind() == alert.kind() &&
          open.status() == progress::v1::ALERT_STATUS_OPEN) {
        return false;
      }
    }
    state_.alerts.emplace_back(tenant, alert);
    return true;
  }
  std::optional<progress::v1::Alert> FindOpenAlertForUpdate(const std::string& tenant, const std::string& patient_id,
                                                            progress::v1::AlertKind kind) override {
    for (const auto& [alert_tenant, open] : state_.alerts) {
      if (alert_tenant == tenant && open.patient_id() == patient_id && open.kind() == kind &&
          open.status() == progress::v1::ALERT_STATUS_OPEN) {
        return open;
      }
    }
    return std::nullopt;
  }
  void UpdateOpenAlert(const std::string& tenant, const progress::v1::Alert& alert) override {
    for (auto& [alert_tenant, stored] : state_.alerts) {
      if (alert_tenant == tenant && stored.alert_id() == alert.alert_id() &&
          stored.status() == progress::v1::ALERT_STATUS_OPEN) {
        stored = alert;
      }
    }
  }
  std::optional<progress::v1::Alert> FindAlertForUpdate(const std::string& tenant,
                                                        const std::string& alert_id) override {
    for (const auto& [alert_tenant, alert] : state_.alerts) {
      if (alert_tenant == tenant && alert.alert_id() == alert_id) return alert;
    }
    return std::nullopt;
  }
  void MarkAlertAcknowledged(const std::string& tenant, const progress::v1::Alert& alert) override {
    for (auto& [alert_tenant, stored] : state_.alerts) {
      if (alert_tenant == tenant && stored.alert_id() == alert.alert_id()) stored = alert;
    }
  }
  std::optional<std::string> LatestClinic(const std::string& tenant, const std::string& patient_id) override {
    std::optional<std::string> latest;
    for (const auto& [visit_tenant, visit] : state_.visits) {
      auto clinic = state_.clinic_of_visit.find({visit_tenant, visit.visit_id()});
      if (visit_tenant == tenant && visit.patient_id() == patient_id && clinic != state_.clinic_of_visit.end()) {
        latest = clinic->second;
      }
    }
    return latest;
  }
  std::optional<std::string> LockEvaluationsAndFindAdjustment(const std::string& tenant, const std::string&,
                                                               const std::string& adjustment_key) override {
    auto found = state_.evaluation_by_adjustment.find({tenant, adjustment_key});
    if (found == state_.evaluation_by_adjustment.end()) return std::nullopt;
    return found->second;
  }
  void InsertEvaluation(const std::string& tenant, const std::string&, const progress::v1::Evaluation& evaluation,
                        const std::optional<std::string>& adjustment_key) override {
    state_.evaluations.emplace_back(tenant, evaluation);
    if (adjustment_key) state_.evaluation_by_adjustment[{tenant, *adjustment_key}] = evaluation.evaluation_id();
  }
  void AppendEvent(const std::string& tenant, const std::string& kind, const std::string& patient_id,
                   const std::string& resource_id) override {
    state_.events.push_back({tenant, kind, patient_id, resource_id});
  }
  void InsertEmergencyAccess(const std::string& tenant, const std::string& grant_id, const std::string& principal,
                             const std::string& patient_id, const std::string& reason, std::int64_t expires_unix) override {
    state_.emergency_grants.push_back({tenant, grant_id, principal, patient_id, reason, expires_unix});
  }

 private:
  FakeProgressState& state_;
};

class FakeProgressRecords final
    : public FakeIdempotentRecords<progress::ProgressRecords, FakeProgressState, FakeProgressWriter> {
 public:
  // The whole history (the fake has no window), oldest first as written.
  progress::PatientRecords ReadPatient(const std::string& tenant, const std::string& patient_id,
                                       const progress::EvaluationPolicy&, Clock::time_point) override {
    progress::PatientRecords records;
    records.visits = Of(state.visits, tenant, patient_id);
    records.home_logs = Of(state.home_logs, tenant, patient_id);
    records.measures = Of(state.measures, tenant, patient_id);
    for (const auto& alert : Of(state.alerts, tenant, patient_id)) {
      if (alert.status() == progress::v1::ALERT_STATUS_OPEN) records.open_alerts.push_back(alert);
    }
    return records;
  }
  progress::ExportedRecords ReadForExport(const std::string& tenant, const std::string& patient_id,
                                          const progress::EvaluationPolicy&, Clock::time_point) override {
    return {Of(state.visits, tenant, patient_id), Of(state.measures, tenant, patient_id),
            Of(state.alerts, tenant, patient_id)};
  }
  std::optional<std::string> PatientOfRecord(const std::string& tenant, const std::string& record_id,
                                             Clock::time_point) override {
    for (const auto& [row_tenant, visit] : state.visits) {
      if (row_tenant == tenant && visit.visit_id() == record_id) return visit.patient_id();
    }
    for (const auto& [row_tenant, measure] : state.measures) {
      if (row_tenant == tenant && measure.measure_id() == record_id) return measure.patient_id();
    }
    for (const auto& [row_tenant, alert] : state.alerts) {
      if (row_tenant == tenant && alert.alert_id() == record_id) return alert.patient_id();
    }
    return std::nullopt;
  }
  // Newest first; the position's created_at is the alert's place in the store.
  progress::AlertPage ListAlerts(const std::string& tenant, const std::string& clinic_id, bool include_acknowledged,
                                 const KeysetPosition& after, int page_size, Clock::time_point) override {
    progress::AlertPage page;
    const long before = after.created_at ? std::stol(*after.created_at) : static_cast<long>(state.alerts.size());
    for (long i = before - 1; i >= 0; --i) {
      const auto& [alert_tenant, alert] = state.alerts[static_cast<size_t>(i)];
      if (alert_tenant != tenant || alert.clinic_id() != clinic_id) continue;
      if (!include_acknowledged && alert.status() != progress::v1::ALERT_STATUS_OPEN) continue;
      if (static_cast<int>(page.alerts.size()) == page_size) {
        page.next = KeysetPosition{std::to_string(i + 1), page.alerts.back().alert_id()};
        break;
      }
      page.alerts.push_back(alert);
    }
    return page;
  }

 private:
  template <typename Record>
  static std::vector<Record> Of(const std::vector<std::pair<std::string, Record>>& rows, const std::string& tenant,
                                const std::string& patient_id) {
    std::vector<Record> records;
    for (const auto& [row_tenant, record] : rows) {
      if (row_tenant == tenant && record.patient_id() == patient_id) records.push_back(record);
    }
    return records;
  }
};

}  // namespace physio::testing
