#pragma once
// Outcome reports' storage (docs/reports.md): the episodes (planning.episodes, written by the
// planning service with every plan change), each episode's progress figures
// (progress.episode_progress) and the patients whose records changed since
// (progress.episode_changes, written with each record). The report is one aggregate query over
// the first two; the refresher keeps the figures up to date off the request path.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "outcome_report.h"
#include "physio/db/pg.h"
#include "physio/planning/v1/planning.pb.h"
#include "progress_records.h"

namespace physio::progress {

// What a report covers: episodes of the tenant that started in [start, end), at `clinics` (all
// of the tenant's when `all_clinics`), grouped by `group_by`.
struct OutcomeReportQuery {
  std::int64_t start_seconds = 0;
  std::int64_t end_seconds = 0;
  std::vector<std::string> clinics;
  bool all_clinics = false;
  v1::ReportGrouping group_by = v1::REPORT_GROUPING_NONE;
};

// A patient's latest episode and the plan its figures are computed against.
struct EpisodeOfPatient {
  std::string episode_id;
  std::string plan_id;
  planning::v1::Plan plan;
  std::int64_t started_seconds = 0;
  std::optional<std::int64_t> ended_seconds;
};

class OutcomeReportStore {
 public:
  virtual ~OutcomeReportStore() = default;
  // The groups with every figure (before suppression), by key. Throws Error(kUnavailable).
  virtual std::vector<v1::OutcomeReportGroup> Groups(const std::string& tenant, const OutcomeReportQuery& query,
                                                     Clock::time_point deadline) = 0;
  // The patient's latest episode (the open one, else the one that ended last); nullopt when none.
  virtual std::optional<EpisodeOfPatient> EpisodeOf(const std::string& tenant, const std::string& patient_id,
                                                    Clock::time_point deadline) = 0;
};

// The statement EpisodeOf runs ($1 tenant, $2 patient): planning's episodes_by_patient serves it.
const char* EpisodeOfPatientSql();
// The figures due for their daily recompute ($1 seconds of age, $2 rows), oldest first: those of
// open episodes only (episode_progress_open_due).
const char* StaleFiguresSql();

// A patient to refresh, and the last of their change rows taken (empty: not from a change row).
struct PatientToRefresh {
  std::string tenant;
  std::string patient_id;
  std::string last_change;
};

class PgOutcomeReports final : public OutcomeReportStore {
 public:
  explicit PgOutcomeReports(PgPool& pool) : pool_(pool) {}
  std::vector<v1::OutcomeReportGroup> Groups(const std::string& tenant, const OutcomeReportQuery& query,
                                             Clock::time_point deadline) override;

  // Patients whose records changed, oldest change first.
  std::vector<PatientToRefresh> Changed(int limit, Clock::time_point deadline);
  // Patients whose episode changed in the planning service (a plan approved, superseded, ended)
  // within the last `look_back` (at most an hour) after its figures were computed.
  std::vector<PatientToRefresh> ChangedByPlanning(std::chrono::seconds look_back, int limit,
                                                  Clock::time_point deadline);
  // Patients with an open episode whose figures are older than `age` (adherence and the expected
  // course move with time), oldest first; with `never_computed`, also (up to `limit` more) those
  // whose open episode has no figures of its plan. Marks the due figures of episodes no longer open
  // as that plan first (episode_open), so the walk costs what is due, not what is open.
  std::vector<PatientToRefresh> StaleOpen(std::chrono::seconds age, int limit, bool never_computed,
                                          Clock::time_point deadline);
  std::optional<EpisodeOfPatient> EpisodeOf(const std::string& tenant, const std::string& patient_id,
                                            Clock::time_point deadline) override;
  // In one commit: the figures of the episode's plan (with the red-flag alerts raised during the
  // episode), when there is an episode, and the patient's change rows up to `last_change` done with
  // (later ones stay for the next pass).
  void Refreshed(const PatientToRefresh& patient, const EpisodeOfPatient* episode, const EpisodeFigures* figures,
                 Clock::time_point deadline);

 private:
  PgPool& pool_;
};

struct EpisodeRefresherSettings {
  std::chrono::milliseconds interval{1000};  // between passes
  std::chrono::seconds stale_after{24 * 3600};  // open episodes' figures are recomputed this often
  int batch = 200;
  int stale_every_passes = 60;  // the stale episodes are looked for on every this many passes
  // ... and the open episodes never computed on every this many of those (the first included):
  // that look walks every open episode.
  int never_computed_every = 60;
};

// Keeps every episode's figures up to date, on a thread of its own: each pass refreshes the
// patients whose records or plans changed, and some open episodes whose figures are a day old.
// Replicas may refresh the same patient at once: the figures are the same, and a change recorded
// meanwhile leaves its row for the next pass.
class EpisodeRefresher {
 public:
  EpisodeRefresher(PgOutcomeReports& store, ProgressRecords& records, EvaluationPolicy policy,
                   EpisodeRefresherSettings settings);
  ~EpisodeRefresher();
  EpisodeRefresher(const EpisodeRefresher&) = delete;
  EpisodeRefresher& operator=(const EpisodeRefresher&) = delete;

  // One pass; the patients refreshed.
  int Pass();
  // When it last caught up: a pass that ended with nothing left to refresh (fewer patients found
  // than a batch, each refreshed). Shared, so that /metrics can read it (as
  // physio_outcome_figures_behind_seconds: now minus this) after the refresher is gone.
  using CaughtUp = std::shared_ptr<const std::atomic<Clock::rep>>;
  CaughtUp caught_up() const { return caught_up_; }

 private:
  void Refresh(const PatientToRefresh& patient, Clock::time_point deadline);

  PgOutcomeReports& store_;
  ProgressRecords& records_;
  EvaluationPolicy policy_;
  EpisodeRefresherSettings settings_;
  long passes_ = 0;
  PlanningChangeWindow planning_window_;
  // Since construction until the first pass catches up.
  std::shared_ptr<std::atomic<Clock::rep>> caught_up_ =
      std::make_shared<std::atomic<Clock::rep>>(Clock::now().time_since_epoch().count());
  bool failing_ = false;
  Clock::time_point last_warning_{};
  std::mutex mutex_;
  std::condition_variable_any wake_;
  std::jthread thread_;
};

}  // namespace physio::progress
