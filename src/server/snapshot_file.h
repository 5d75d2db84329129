// Snapshot files: the state machine images the WAL's snapshot markers refer to.
//
// <dir>/<16 hex digits of the index>.snap holds `masked crc32c u32 (little-endian)` then the data.
// A file is written as <name>.tmp, fdatasync'd, renamed and the directory fsync'd, so a file with
// a final name is always complete; a bad crc is DataLoss (never silently ignored).
#pragma once

#include <string>

#include "base/status.h"
#include "consensus/types.h"
#include "wal/env.h"

namespace ballot::server {

std::string SnapshotFileName(consensus::Index index);
Status WriteSnapshotFile(wal::Env* env, const std::string& dir, consensus::Index index,
                         const std::string& data);
Result<std::string> ReadSnapshotFile(wal::Env* env, const std::string& dir, consensus::Index index);
// Removes every snapshot file older than `keep_from_index` (and leftover .tmp files).
Status RemoveSnapshotFilesBefore(wal::Env* env, const std::string& dir,
                                 consensus::Index keep_from_index);

}  // namespace ballot::server
