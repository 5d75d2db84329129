// Snapshot files: the state machine images the WAL's snapshot markers refer to.
//
// <dir>/<16 hex digits of the index>.snap holds `masked crc32c u32 (little-endian)` then the data.
// A file is written as <name>.tmp, fdatasync'd, renamed and the directory fsync'd, so a file with
// a final name is always complete; a bad crc is DataLoss (never silently ignored).
//
// A member's own snapshot is streamed: written piece by piece as <name>.part (WriteSnapshotPart,
// no lock needed: only one is built at a time, and RemoveSnapshotFilesBefore leaves .part files
// alone), then renamed (PublishSnapshotPart), so its image is never whole in memory.
#pragma once

#include <functional>
#include <string>

#include "base/status.h"
#include "consensus/types.h"
#include "wal/env.h"

namespace ballot::server {

std::string SnapshotFileName(consensus::Index index);
Status WriteSnapshotFile(wal::Env* env, const std::string& dir, consensus::Index index,
                         const std::string& data);
// Puts the next piece of an image in *chunk and returns true, or returns false at the end.
using SnapshotSource = std::function<Result<bool>(std::string* chunk)>;
// Removes leftover .part files (a crash during a build), then writes <name>.part from `next` and
// fdatasyncs it.
Status WriteSnapshotPart(wal::Env* env, const std::string& dir, consensus::Index index,
                         const SnapshotSource& next);
// Renames <name>.part to <name> and fsyncs the directory.
Status PublishSnapshotPart(wal::Env* env, const std::string& dir, consensus::Index index);
Result<std::string> ReadSnapshotFile(wal::Env* env, const std::string& dir, consensus::Index index);
// Removes every snapshot file older than `keep_from_index` (and leftover .tmp files).
Status RemoveSnapshotFilesBefore(wal::Env* env, const std::string& dir,
                                 consensus::Index keep_from_index);

}  // namespace ballot::server
