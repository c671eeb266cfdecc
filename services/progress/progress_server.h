#pragma once
#include <memory>
#include <vector>

#include "physio/common/config.h"
#include "physio/server/service_host.h"

namespace physio::progress {

std::vector<ConfigKey> ProgressConfigKeys();
std::unique_ptr<RunningService> StartProgressService(const Config& config);

}  // namespace physio::progress
