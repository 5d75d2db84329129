#include "base/logging.h"

#include <string>

namespace ballot::logging {

bool SetLevel(std::string_view name) {
  auto level = spdlog::level::from_str(std::string(name));
  if (level == spdlog::level::off && name != "off") return false;
  spdlog::set_level(level);
  return true;
}

void SetTag(std::string_view tag) {
  std::string escaped;
  for (char c : tag) {
    if (c == '%') escaped += '%';  // spdlog pattern flags start with '%'.
    escaped += c;
  }
  spdlog::set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%^%l%$] [" + escaped + "] %v");
}

}  // namespace ballot::logging
