#pragma once
#include <memory>
#include <vector>

#include "physio/common/config.h"
#include "physio/server/service_host.h"

namespace physio::planning {

std::vector<ConfigKey> PlanningConfigKeys();
std::unique_ptr<RunningService> StartPlanningService(const Config& config);

}  // namespace physio::planning
