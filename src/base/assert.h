// Always-on assertions. A failed assertion is a broken invariant: the process stops with the
// invariant's text, file and line. They are never compiled out, in any build type.
#pragma once

#include <string_view>

namespace ballot::internal {
[[noreturn]] void AssertFail(const char* expr, std::string_view message, const char* file,
                             int line);
// A test harness may install a handler that is called before the process stops (the simulator
// throws from it, to report a broken invariant as a failed run with its seed). A handler that
// returns lets the process stop as usual.
using AssertHandler = void (*)(const char* expr, std::string_view message, const char* file,
                               int line);
void SetAssertHandler(AssertHandler handler);
inline std::string_view AssertMessage() { return {}; }
inline std::string_view AssertMessage(std::string_view message) { return message; }
}  // namespace ballot::internal

// BALLOT_ASSERT(cond) or BALLOT_ASSERT(cond, message); the message is evaluated only on failure.
#define BALLOT_ASSERT(cond, ...)                                                            \
  do {                                                                                      \
    if (__builtin_expect(!(cond), 0)) {                                                     \
      ::ballot::internal::AssertFail(#cond, ::ballot::internal::AssertMessage(__VA_ARGS__), \
                                     __FILE__, __LINE__);                                   \
    }                                                                                       \
  } while (0)

#define BALLOT_UNREACHABLE(msg) \
  ::ballot::internal::AssertFail("unreachable", msg, __FILE__, __LINE__)
