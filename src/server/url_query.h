// Request targets: "/path?name=value&..." split into path and query, and query
// parameters looked up with percent-decoding (application/x-www-form-urlencoded: '+'
// is a space). Malformed escapes are errors, not guesses.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "util/result.h"

namespace gm::server {

struct Target {
  std::string_view path;   // before '?', never empty ("/" if the target was empty)
  std::string_view query;  // after '?', without it; empty if none
};

Target split_target(std::string_view target);

Result<std::string> percent_decode(std::string_view s);

// The first `name=value` in `query`, decoded; nullopt if absent. An error if the
// value has a malformed %-escape.
Result<std::optional<std::string>> query_param(std::string_view query, std::string_view name);

}  // namespace gm::server
