#include "base/assert.h"

#include <cstdio>
#include <cstdlib>

namespace ballot::internal {
namespace {
AssertHandler g_handler = nullptr;
}  // namespace

void SetAssertHandler(AssertHandler handler) { g_handler = handler; }

void AssertFail(const char* expr, std::string_view message, const char* file, int line) {
  if (g_handler != nullptr) g_handler(expr, message, file, line);
  std::fprintf(stderr, "ballot: invariant broken at %s:%d: %s%s%.*s\n", file, line, expr,
               message.empty() ? "" : ": ", static_cast<int>(message.size()), message.data());
  std::fflush(stderr);
  std::abort();
}

}  // namespace ballot::internal
