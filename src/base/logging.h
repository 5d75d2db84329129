// Process logging. Ballot logs through spdlog; this header names the one logger every module uses
// and lets a program set the level once. The engines do not log: they are pure.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace ballot::logging {

// Sets the global level from a name: trace, debug, info, warn, error, off. Returns false for an
// unknown name and leaves the level unchanged.
bool SetLevel(std::string_view name);

// Tags every later log line of the process with `tag` (the member name in `ballot serve`):
// "[2026-11-27 12:00:00.000] [info] [infra1] message".
void SetTag(std::string_view tag);

}  // namespace ballot::logging

#define BLOG_DEBUG(...) ::spdlog::debug(__VA_ARGS__)
#define BLOG_INFO(...) ::spdlog::info(__VA_ARGS__)
#define BLOG_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define BLOG_ERROR(...) ::spdlog::error(__VA_ARGS__)
