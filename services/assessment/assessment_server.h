#pragma once
#include <memory>
#include <vector>

#include "physio/common/config.h"
#include "physio/server/service_host.h"

namespace physio::assessment {

std::vector<ConfigKey> AssessmentConfigKeys();
// Migrates, starts serving on config "listen", returns the running service.
std::unique_ptr<RunningService> StartAssessmentService(const Config& config);

}  // namespace physio::assessment
