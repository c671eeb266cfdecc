// libFuzzer: answers of any shape are validated and scored (or refused with
// INVALID_ARGUMENT) for every instrument, never a crash or a score out of range.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "domain/instruments.h"
#include "physio/common/error.h"

using physio::assessment::InstrumentKind;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& kinds = physio::assessment::AllInstruments();
  if (size < 1) return 0;
  const InstrumentKind kind = kinds[data[0] % kinds.size()];
  const auto& spec = physio::assessment::SpecFor(kind);
  std::vector<physio::assessment::ItemAnswer> answers;
  // Each 3 bytes: which item (or an unknown id), its value, declined/text flags.
  for (size_t i = 1; i + 2 < size; i += 3) {
    physio::assessment::ItemAnswer answer;
    answer.instrument = kind;
    const size_t item = data[i];
    answer.item_id = item < spec.items.size() ? spec.items[item].id : spec.code + ".x" + std::to_string(item);
    answer.value = static_cast<int8_t>(data[i + 1]);
    answer.declined = (data[i + 2] & 1) != 0;
    if ((data[i + 2] & 2) != 0) answer.text = std::string(data[i + 2] >> 2, 'a');
    try {
      physio::assessment::ValidateAnswer("answers", answer);
      answers.push_back(answer);
    } catch (const physio::Error& e) {
      if (e.code() != physio::ErrorCode::kInvalidArgument) __builtin_trap();
    }
  }
  try {
    auto result = physio::assessment::Score(kind, answers, physio::assessment::ScoringPolicy{});
    if (result.score < 0 || result.score > 100) __builtin_trap();
  } catch (const physio::Error& e) {
    if (e.code() != physio::ErrorCode::kInvalidArgument && e.code() != physio::ErrorCode::kFailedPrecondition) {
      __builtin_trap();
    }
  }
  return 0;
}
