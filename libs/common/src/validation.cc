#include "physio/common/validation.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <vector>

#include "physio/common/error.h"

namespace physio {

bool IsOpaqueId(const std::string& value) {
  if (value.empty() || value.size() > 128) return false;
  for (unsigned char c : value) {
    if (!(std::isalnum(c) || c == '.' || c == '_' || c == ':' || c == '-')) return false;
  }
  return true;
}

void ValidateRequestId(std::string_view field, const std::string& value) {
  if (value.empty()) ThrowInvalidArgument(field, "is required (a client-chosen idempotency key)");
  if (value.size() > 128) ThrowInvalidArgument(field, "must be at most 128 characters");
  for (unsigned char c : value) {
    if (c < 0x21 || c > 0x7e) ThrowInvalidArgument(field, "must be printable ASCII without spaces");
  }
}

void ValidateOpaqueId(std::string_view field, const std::string& value) {
  if (value.empty()) ThrowInvalidArgument(field, "is required");
  if (!IsOpaqueId(value)) ThrowInvalidArgument(field, "must be 1-128 characters of [A-Za-z0-9._:-]");
}

void ValidateRange(std::string_view field, long value, long min, long max) {
  if (value < min || value > max) {
    ThrowInvalidArgument(field, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                                    ", got " + std::to_string(value));
  }
}

namespace {
// The control character that starts at text[i], or -1: C0 and DEL as one byte, C1 as the two
// bytes C2 80-9F of UTF-8 (its code is the second byte). With `layout`, tab and line breaks are text.
int ControlCodeAt(std::string_view text, std::size_t i, bool layout) {
  const auto c = static_cast<unsigned char>(text[i]);
  if ((c < 0x20 && !(layout && (c == '\t' || c == '\n' || c == '\r'))) || c == 0x7f) return c;
  if (c == 0xc2 && i + 1 < text.size()) {
    const auto next = static_cast<unsigned char>(text[i + 1]);
    if (next >= 0x80 && next <= 0x9f) return next;
  }
  return -1;
}

// The explicit bidirectional control (UAX #9) whose UTF-8 starts at text[i], or 0: U+202A-U+202E
// (E2 80 AA-AE) and U+2066-U+2069 (E2 81 A6-A9).
int BidiControlAt(std::string_view text, std::size_t i) {
  if (i + 2 >= text.size() || static_cast<unsigned char>(text[i]) != 0xE2) return 0;
  const auto b = static_cast<unsigned char>(text[i + 1]);
  const auto d = static_cast<unsigned char>(text[i + 2]);
  if ((b == 0x80 && d >= 0xAA && d <= 0xAE) || (b == 0x81 && d >= 0xA6 && d <= 0xA9)) {
    return 0x2000 | ((b & 0x3F) << 6) | (d & 0x3F);
  }
  return 0;
}

constexpr int kPdf = 0x202C;
constexpr int kPdi = 0x2069;
bool IsIsolate(int control) { return control >= 0x2066 && control <= 0x2068; }

std::atomic<BidiControls> bidi_policy{BidiControls::kRefuseUnpaired};
}  // namespace

int UnpairedBidiControlIn(std::string_view text) {
  if (text.find('\xE2') == std::string_view::npos) return -1;  // none of them, nor U+2029
  std::vector<int> open;  // embeddings, overrides and isolates still open, innermost last
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    const bool paragraph_end = c == '\n' || c == '\r' ||
                               (c == 0xE2 && i + 2 < text.size() && static_cast<unsigned char>(text[i + 1]) == 0x80 &&
                                static_cast<unsigned char>(text[i + 2]) == 0xA9);
    if (paragraph_end) {
      if (!open.empty()) return open.front();
      continue;
    }
    const int control = BidiControlAt(text, i);
    if (control == 0) continue;
    i += 2;
    if (control == kPdf) {
      if (open.empty() || IsIsolate(open.back())) return control;
      open.pop_back();
    } else if (control == kPdi) {
      const auto isolate = std::find_if(open.rbegin(), open.rend(), IsIsolate);
      if (isolate == open.rend()) return control;
      open.erase(std::prev(isolate.base()), open.end());
    } else {
      open.push_back(control);
    }
  }
  return open.empty() ? -1 : open.front();
}

void SetBidiControlPolicy(BidiControls policy) { bidi_policy.store(policy, std::memory_order_relaxed); }
BidiControls BidiControlPolicy() { return bidi_policy.load(std::memory_order_relaxed); }

int ControlCharacterIn(std::string_view text, LineBreaks line_breaks) {
  const bool layout = line_breaks == LineBreaks::kLayoutAllowed;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (const int control = ControlCodeAt(text, i, layout); control >= 0) return control;
  }
  return -1;
}

std::string CodePointName(int code) {
  char name[16];
  std::snprintf(name, sizeof name, "U+%04X", static_cast<unsigned>(code));
  return name;
}

std::string ControlCharacterRefusal(std::string_view text, LineBreaks line_breaks) {
  const int control = ControlCharacterIn(text, line_breaks);
  if (control == 0) return "must not contain a NUL character (U+0000)";
  if (control > 0) return "must not contain a control character (" + CodePointName(control) + ")";
  if (BidiControlPolicy() == BidiControls::kRefuseUnpaired) {
    if (const int bidi = UnpairedBidiControlIn(text); bidi >= 0) {
      return "must not contain an unpaired bidirectional control (" + CodePointName(bidi) +
             "): close each embedding or override (U+202A, U+202B, U+202D, U+202E) with U+202C and each isolate "
             "(U+2066-U+2068) with U+2069 before the line ends";
    }
  }
  return "";
}

std::string ControlCharactersNamed(std::string_view text) {
  std::string named;
  named.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (const int bidi = BidiControlAt(text, i); bidi != 0) {
      named += "<" + CodePointName(bidi) + ">";
      i += 2;  // three bytes
      continue;
    }
    const int control = ControlCodeAt(text, i, /*layout=*/false);
    if (control < 0) {
      named += text[i];
      continue;
    }
    named += "<" + CodePointName(control) + ">";
    if (control >= 0x80) ++i;  // a C1 character is two bytes
  }
  return named;
}

bool IsValidUtf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t length = 0;
    std::uint32_t code = 0;
    if ((c & 0xe0) == 0xc0) length = 2, code = c & 0x1f;
    else if ((c & 0xf0) == 0xe0) length = 3, code = c & 0x0f;
    else if ((c & 0xf8) == 0xf0) length = 4, code = c & 0x07;
    else return false;
    if (i + length > text.size()) return false;
    for (std::size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xc0) != 0x80) return false;
      code = (code << 6) | (next & 0x3f);
    }
    const std::uint32_t smallest = length == 2 ? 0x80 : length == 3 ? 0x800 : 0x10000;
    if (code < smallest || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return false;
    i += length;
  }
  return true;
}

bool IsBlank(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
      ++i;
      continue;
    }
    // U+00A0 no-break space.
    if (c == 0xC2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) == 0xA0) {
      i += 2;
      continue;
    }
    if (c == 0xE2 && i + 2 < text.size()) {
      const auto b = static_cast<unsigned char>(text[i + 1]);
      const auto d = static_cast<unsigned char>(text[i + 2]);
      // U+2000-U+200D (en quad .. zero-width joiner), U+2028/U+2029, U+202F, U+205F, U+2060.
      const bool space = (b == 0x80 && (d <= 0x8D || d == 0xA8 || d == 0xA9 || d == 0xAF)) ||
                         (b == 0x81 && (d == 0x9F || d == 0xA0));
      if (space) {
        i += 3;
        continue;
      }
    }
    // U+3000 ideographic space, U+FEFF zero-width no-break space.
    if (text.compare(i, 3, "\xE3\x80\x80") == 0 || text.compare(i, 3, "\xEF\xBB\xBF") == 0) {
      i += 3;
      continue;
    }
    return false;
  }
  return true;
}

void ValidateRequiredText(std::string_view field, const std::string& text, std::size_t max) {
  if (text.empty() || text.size() > max) ThrowInvalidArgument(field, "must be 1-" + std::to_string(max) + " characters");
  if (IsBlank(text)) ThrowInvalidArgument(field, "must not be blank (it holds only white space)");
}

std::vector<std::string> DistinctIds(std::string_view field, const std::vector<std::string>& ids, std::size_t max) {
  if (ids.size() > max) ThrowInvalidArgument(field, "at most " + std::to_string(max) + " items");
  std::vector<std::string> distinct;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    ValidateOpaqueId(std::string(field) + "[" + std::to_string(i) + "]", ids[i]);
    if (std::find(distinct.begin(), distinct.end(), ids[i]) == distinct.end()) distinct.push_back(ids[i]);
  }
  return distinct;
}

}  // namespace physio
