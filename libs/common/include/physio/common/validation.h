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
// The first explicit bidirectional control of UTF-8 `text` left unpaired, as its code point, or -1.
// Embeddings and overrides (U+202A LRE, U+202B RLE, U+202D LRO, U+202E RLO) are closed by U+202C
// (PDF), isolates (U+2066 LRI, U+2067 RLI, U+2068 FSI) by U+2069 (PDI, which also closes what was
// opened inside the isolate), within their paragraph (up to a line feed, a carriage return or
// U+2029), as in Unicode's UAX #9. One left open reorders whatever a screen shows after the text (the
// next column of a clinician's list, the next line of an export: "Trojan Source", CVE-2021-42574);
// a closer with nothing to close ends the caller's own embedding around it. Paired, they are how
// bidirectional text is marked, and are kept; so are the marks (U+200E, U+200F, U+061C).
int UnpairedBidiControlIn(std::string_view text);
// Whether ControlCharacterRefusal refuses unpaired bidirectional controls: set once, at startup,
// from the setting `bidi-controls` (refuse-unpaired, the default; accept).
enum class BidiControls { kRefuseUnpaired, kAccept };
void SetBidiControlPolicy(BidiControls policy);
BidiControls BidiControlPolicy();
// Why `text` may not be stored, for an error message ("must not contain a control character
// (U+001B)", "must not contain an unpaired bidirectional control (U+202E)..."), or "" when it may.
std::string ControlCharacterRefusal(std::string_view text, LineBreaks line_breaks = LineBreaks::kLayoutAllowed);
// `text` for an error message: each control character (a line break included) and each explicit
// bidirectional control written as its code point name ("U+000A", "U+202E"), so a value echoed in
// a refusal cannot break a log line, drive a terminal or reorder what a screen shows after it.
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
