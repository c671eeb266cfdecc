// libFuzzer: the FHIR import reads untrusted JSON from integration engines; it
// refuses what it cannot use with INVALID_ARGUMENT naming the place, and never
// crashes, hangs or reads out of bounds.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fhir_import.h"
#include "physio/common/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    physio::assessment::AnswersFromFhir(std::string(reinterpret_cast<const char*>(data), size), "pt-1",
                                        "https://physio-backend.org/fhir/patient-id");
  } catch (const physio::Error&) {
    // Refused with a message: fine. Anything else escaping is a finding.
  }
  return 0;
}
