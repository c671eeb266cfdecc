#pragma once
// Keyset page tokens for lists ordered by (created_at DESC, id DESC): the
// position of the last row returned, bound to the list's scope (a patient, a
// clinic) so a token cannot be replayed against another list. Opaque to callers.
#include <string>

#include "physio/db/pg.h"

namespace physio {

struct KeysetPosition {
  PgParam created_at;  // NULL for the first page
  PgParam id;
};

std::string EncodePageToken(const std::string& scope, const std::string& created_at, const std::string& id);
// Empty token: the first page. Throws Error(kInvalidArgument) naming "page_token" otherwise.
KeysetPosition DecodePageToken(const std::string& token, const std::string& scope);

}  // namespace physio
