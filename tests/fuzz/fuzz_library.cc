// libFuzzer: the intervention-library loader refuses malformed JSON or entries
// with a clear error and never crashes.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "domain/library.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    physio::planning::InterventionLibrary::Parse(std::string(reinterpret_cast<const char*>(data), size));
  } catch (const std::exception&) {
    // Refused with a message (Error or a parse error): fine.
  }
  return 0;
}
