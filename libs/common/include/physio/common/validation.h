#pragma once
// Checks shared by every service's request validation. Each throws
// Error(kInvalidArgument) naming the field.
#include <string>
#include <string_view>
#include <vector>

namespace physio {

// request_id: 1-128 printable ASCII characters.
void ValidateRequestId(std::string_view field, const std::string& value);
// Opaque ids (patient, assessment, plan ...): 1-128 of [A-Za-z0-9._:-].
void ValidateOpaqueId(std::string_view field, const std::string& value);
void ValidateRange(std::string_view field, long value, long min, long max);
// True when `text` holds nothing but white space (ASCII, no-break and other Unicode spaces, the
// zero-width ones too), or nothing at all: a required free text of only spaces says nothing.
bool IsBlank(std::string_view text);
// Whether control characters that lay text out count as text: tab, line feed and carriage return
// in a note (kLayoutAllowed), or not at all in a one-line value such as a search parameter (kOneLine).
enum class LineBreaks { kLayoutAllowed, kOneLine };
// The first control character in UTF-8 `text` (C0 but, unless kOneLine, tab, line feed and
// carriage return; DEL; C1), as its code point, or -1 when there is none. Stored, such a character
// would reach a clinician's screen, an exported CSV or a terminal as an escape sequence (ESC [ 2 J
// clears a screen), and PostgreSQL holds no NUL at all.
int ControlCharacterIn(std::string_view text, LineBreaks line_breaks = LineBreaks::kLayoutAllowed);
// "U+001B": how an error names a code point.
std::string CodePointName(int code);
// Why `text` may not be stored, for an error message ("must not contain a control character
// (U+001B)"), or "" when it holds no control character.
std::string ControlCharacterRefusal(std::string_view text, LineBreaks line_breaks = LineBreaks::kLayoutAllowed);
// `text` for an error message: each control character (a line break included) written as its code
// point name ("U+000A"), so a value echoed in a refusal cannot break a log line or drive a terminal.
std::string ControlCharactersNamed(std::string_view text);
// Structurally valid UTF-8: no stray continuation bytes, overlong forms, surrogates or code points
// past U+10FFFF. Protobuf refuses to send a string field that is not, so text from HTTP (a query,
// a header) is checked with this before it goes into a request.
bool IsValidUtf8(std::string_view text);
// A required free text (a reason, a rationale): 1-`max` bytes, not only white space.
void ValidateRequiredText(std::string_view field, const std::string& text, std::size_t max);
bool IsOpaqueId(const std::string& value);
// A list of opaque ids: at most `max`, each valid; repeats dropped (first kept, order kept).
std::vector<std::string> DistinctIds(std::string_view field, const std::vector<std::string>& ids, std::size_t max);

}  // namespace physio
