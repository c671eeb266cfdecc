#pragma once
// Event kinds as a request names them (WatchEvents' `kinds`, a webhook subscription's
// `event_kinds`): each a defined kind, none twice, at most `max`; their names as the outbox
// stores them. Throws Error(kInvalidArgument) naming `field` or `field[i]`. No gRPC types.
#include <google/protobuf/repeated_field.h>

#include <limits>
#include <string>
#include <vector>

namespace physio {

std::vector<std::string> EventKindNames(const std::string& field, const google::protobuf::RepeatedField<int>& kinds,
                                        int max = std::numeric_limits<int>::max());

}  // namespace physio
