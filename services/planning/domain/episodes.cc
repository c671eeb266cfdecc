#include "episodes.h"

namespace physio::planning {

EpisodeChoice EpisodeForPlan(const std::optional<LatestEpisode>& latest, const std::string& plan_id,
                             std::int64_t now_seconds, int relapse_window_days) {
  if (latest && latest->open) return {latest->episode_id, false};
  if (latest && relapse_window_days > 0 &&
      now_seconds - latest->ended_seconds <= std::int64_t{relapse_window_days} * 24 * 3600) {
    return {latest->episode_id, true};
  }
  return {plan_id, false};
}

}  // namespace physio::planning
