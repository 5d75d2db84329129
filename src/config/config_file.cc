// --config-file: etcd's YAML configuration file (etcd's embed.configYAML), read into a ServeConfig.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "config/serve_config.h"
#include "config/settings.h"

namespace ballot::config {
namespace {

constexpr size_t kConfigFileBytesMax = 1 << 20;

// etcd keys that Ballot does not implement; named separately so the error says so instead of
// "unknown key".
constexpr std::string_view kUnsupportedEtcdKeys[] = {
    "wal-dir",
    "max-snapshots",
    "max-wals",
    "discovery",
    "discovery-fallback",
    "discovery-proxy",
    "discovery-srv",
    "strict-reconfig-check",
    "enable-v2",
    "enable-pprof",
    "proxy",
    "proxy-failure-wait",
    "proxy-refresh-interval",
    "proxy-dial-timeout",
    "proxy-write-timeout",
    "proxy-read-timeout",
    "client-transport-security",
    "peer-transport-security",
    "debug",
    "logger",
    "log-outputs",
    "force-new-cluster",
    "auto-tls",
    "peer-auto-tls",
    "cors",
    "host-whitelist",
    "enable-grpc-gateway",
    "metrics",
    "experimental-initial-corrupt-check",
    "max-txn-ops",
    "grpc-keepalive-min-time",
    "grpc-keepalive-interval",
    "grpc-keepalive-timeout",
    "cipher-suites",
    "listen-metrics-urls-tls",
};

Status KeyError(std::string_view source, std::string_view key, const std::string& message) {
  return Status::InvalidArgument(std::string(source) + ": key \"" + std::string(key) +
                                 "\": " + message);
}

}  // namespace

Result<ServeConfig> ParseConfigYaml(std::string_view yaml, std::string_view source_name) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(std::string(source_name) + ": not valid YAML: " + e.what());
  }
  ServeConfig config;
  if (root.IsNull()) return config;  // An empty file: all defaults, as etcd.
  if (!root.IsMap()) {
    return Status::InvalidArgument(std::string(source_name) +
                                   ": expected a mapping of etcd setting names to values");
  }
  try {
    for (const auto& entry : root) {
      if (!entry.first.IsScalar()) {
        return Status::InvalidArgument(std::string(source_name) + ": a key is not a plain name");
      }
      const std::string key = entry.first.Scalar();
      const internal::Setting* setting = internal::FindSetting(key);
      if (setting == nullptr) {
        const bool etcd_key =
            std::find(std::begin(kUnsupportedEtcdKeys), std::end(kUnsupportedEtcdKeys), key) !=
            std::end(kUnsupportedEtcdKeys);
        return KeyError(
            source_name, key,
            etcd_key ? "etcd setting not supported by Ballot (remove it)" : "unknown key");
      }
      if (config.explicitly_set.count(key) != 0) {
        return KeyError(source_name, key, "given twice");
      }
      const YAML::Node& value = entry.second;
      std::string text;
      if (value.IsScalar()) {
        text = value.Scalar();
      } else if (!value.IsNull()) {
        return KeyError(source_name, key,
                        "expected a single value (lists of URLs are one comma-separated string)");
      }
      Status status = internal::SetFromText(*setting, text, config);
      if (!status.ok()) return KeyError(source_name, key, status.message());
      config.explicitly_set.insert(key);
    }
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(std::string(source_name) + ": " + e.what());
  }
  return config;
}

Result<ServeConfig> LoadConfigFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file.is_open()) {
    return Status::NotFound("--config-file " + path + ": cannot open: " + std::strerror(errno));
  }
  std::string text;
  text.resize(kConfigFileBytesMax + 1);
  file.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(file.gcount()));
  if (file.bad()) return Status::Internal("--config-file " + path + ": read error");
  if (text.size() > kConfigFileBytesMax) {
    return Status::InvalidArgument("--config-file " + path + ": larger than 1 MiB");
  }
  return ParseConfigYaml(text, "--config-file " + path);
}

}  // namespace ballot::config
