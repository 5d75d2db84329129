#include "base/assert.h"

#include <cstdio>
#include <cstdlib>

namespace ballot::internal {

void AssertFail(const char* expr, std::string_view message, const char* file, int line) {
  std::fprintf(stderr, "ballot: invariant broken at %s:%d: %s%s%.*s\n", file, line, expr,
               message.empty() ? "" : ": ", static_cast<int>(message.size()), message.data());
  std::fflush(stderr);
  std::abort();
}

}  // namespace ballot::internal
