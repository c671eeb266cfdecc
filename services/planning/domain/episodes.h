#pragma once
// Episodes of care (issue 32 part 4): which episode a plan taking effect belongs to. An episode
// goes on through the plans that supersede one in use; once ended, a plan taking effect within
// the relapse window of the end is a relapse of the same episode, later a new episode. Pure
// rules: the use cases (planning_app.cc) read the patient's latest episode and store the answer.
#include <cstdint>
#include <optional>
#include <string>

namespace physio::planning {

// The patient's latest episode, as stored.
struct LatestEpisode {
  std::string episode_id;
  bool open = false;               // a plan of it is in use (active or suspended)
  std::int64_t ended_seconds = 0;  // when it ended (Unix time), when not open
};

struct EpisodeChoice {
  std::string episode_id;
  bool relapse = false;  // an ended episode taken up again
};

// The episode of a plan taking effect at `now_seconds`: the open one; an ended one whose end is at
// most `relapse_window_days` before (a relapse; 0 turns relapses off); else a new one named after
// the plan.
EpisodeChoice EpisodeForPlan(const std::optional<LatestEpisode>& latest, const std::string& plan_id,
                             std::int64_t now_seconds, int relapse_window_days);

}  // namespace physio::planning
