// Names the calling thread, as top, perf and gdb show it.
#pragma once

#include <pthread.h>

#include <string>
#include <string_view>

namespace ballot {

// Linux keeps 15 bytes of a thread's name; longer names are cut, not refused.
inline void SetThreadName(std::string_view name) {
  std::string cut(name.substr(0, 15));
  pthread_setname_np(pthread_self(), cut.c_str());
}

}  // namespace ballot
