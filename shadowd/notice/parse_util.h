// Helpers shared by the metadata parsers (internal to vs_notice; not for users of the library).
//
// Everything a metadata service or device sends is untrusted: it is quoted through Printable
// before it goes into an error message or a Notice's detail, so that a hostile or broken peer
// cannot make those unbounded or smuggle control characters into logs.
// Ownership and thread-safety: pure functions of values. Failure modes: see UnexpectedHttpStatus; ParseJsonObject
// returns InvalidArgument naming `what` and the JSON error (with its byte offset).
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/status.h"
#include "shadowd/notice/http_client.h"

namespace vs::notice {

// At most `max_chars` characters of `text`, each non-printable one replaced by '?', with "..."
// appended when cut.
std::string Printable(std::string_view text, size_t max_chars = 256);

// The error for a metadata answer whose HTTP status is not the one expected, quoting the start of
// the body: Unavailable for 5xx and 429 (the service may answer later), FailedPrecondition for the
// rest (a 403 or 400 will not change by itself: the endpoint or the host's setup is wrong).
// `what` names the request, e.g. "GET http://169.254.169.254/...".
Status UnexpectedHttpStatus(std::string_view what, const HttpResponse& response);

// `body` parsed as JSON that must be an object. `what` names the document in errors, e.g.
// "AWS spot instance-action".
StatusOr<nlohmann::json> ParseJsonObject(std::string_view body, std::string_view what);

}  // namespace vs::notice
