// SHA-256 (FIPS 180-4), for the checksum etcdctl expects at the end of a Maintenance.Snapshot
// stream; not used for security.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace ballot::server {

std::array<uint8_t, 32> Sha256(std::string_view data);

}  // namespace ballot::server
