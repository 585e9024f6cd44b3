// Wall-clock time as graft writes it into patches and the in-target registry.
#pragma once
#include <string>

namespace graft {

std::string utc_timestamp();  // ISO 8601, e.g. "2026-11-22T02:49:04Z"

}  // namespace graft
