// The table of serve's settings: one row per flag, shared by the flag binding, the environment and
// the config file so that the three can never disagree on a name. Internal to src/config/.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/status.h"
#include "config/serve_config.h"

namespace ballot::config::internal {

enum class Origin { kEtcd, kBallot };  // Decides the environment prefix: ETCD_ or BALLOT_.

using Field = std::variant<std::string ServeConfig::*, int64_t ServeConfig::*,
                           uint64_t ServeConfig::*, bool ServeConfig::*>;

struct Setting {
  std::string_view name;  // The flag without "--"; also the YAML key.
  Origin origin;
  Field field;
  std::string_view help;
};

// Every setting except config-file, in the order `ballot serve --help` lists them.
const std::vector<Setting>& Settings();
const Setting* FindSetting(std::string_view name);

// "ETCD_INITIAL_CLUSTER", "BALLOT_LEASE_READS".
std::string EnvironmentName(const Setting& setting);

// Sets `setting` in `config` from text (environment, YAML scalar). Errors say what was expected;
// the caller adds where the text came from.
Status SetFromText(const Setting& setting, std::string_view text, ServeConfig& config);

}  // namespace ballot::config::internal
