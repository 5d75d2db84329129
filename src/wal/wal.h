// Wal: the write-ahead log of one member, a directory of preallocated segment files.
//
// It holds entries, hard states and snapshot markers (the snapshot data itself is the caller's),
// recovers them on Open, and makes them durable with group commit. docs/wal-format.md describes the
// files, the recovery rules and the guarantees.
//
// Thread-safety: every method may be called from any thread. Writes are serialized; Sync() from
// many threads shares fdatasync calls.
//
// Errors: after any failed write or fdatasync the Wal refuses every further write and Sync with
// that error (DESIGN.md: never continue after EIO; the member must stop and recover from disk).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/status.h"
#include "consensus/types.h"
#include "wal/env.h"
#include "wal/log_state.h"
#include "wal/record.h"

namespace ballot::wal {

struct WalOptions {
  // Each segment is preallocated to this size, and a new one starts when a record would not fit.
  uint64_t segment_bytes = 64ull << 20;
  // Called after every fdatasync of a segment's records (group commit or roll), successful or
  // not, with its duration (the host's fsync-latency metric; the Wal knows nothing of metrics).
  // Called with or without the Wal's mutex held: it must be quick and must not call the Wal.
  std::function<void(std::chrono::nanoseconds)> on_sync = nullptr;
};
constexpr uint64_t kSegmentBytesMin = 512;

// What recovery found at the end of the log, for the host to log.
struct RecoveryReport {
  bool truncated = false;  // A torn last record was cut off.
  std::string file;        // Where, when truncated.
  uint64_t offset = 0;
  std::string problem;
};

class Wal {
 public:
  // Opens the log in `dir`, creating the directory and a first segment for a new member.
  // FailedPrecondition if the directory belongs to another identity; DataLoss (naming file and byte
  // offset) for any damage other than a torn last record; I/O errors as the Env reports them.
  // `env` must outlive the Wal.
  static Result<std::unique_ptr<Wal>> Open(Env* env, std::string dir, const WalOptions& options,
                                           const Identity& expected);
  ~Wal();
  Wal(const Wal&) = delete;
  Wal& operator=(const Wal&) = delete;

  // Writes `entries` (contiguous; the first may overwrite a suffix, as Raft's conflict rule does),
  // then `hs` if not null; with `sync`, returns once they are durable. Entries that overwrite a
  // suffix are written as one record, so a crash keeps all of them or none (up to
  // kRecordBytesMax in all; a larger overwrite is written entry by entry). FailedPrecondition for a
  // gap or an index the snapshot covers; InvalidArgument for an entry over kRecordBytesMax.
  Status Save(const consensus::HardState* hs, const std::vector<consensus::Entry>& entries,
              bool sync);
  // Records that a snapshot (stored by the caller) covers the log up to meta.index; the entries
  // it covers are dropped from the in-memory copy. Durable after the next Sync.
  Status SaveSnapshot(const consensus::SnapshotMeta& meta);
  // Makes everything written so far durable. Concurrent callers share one fdatasync: a caller
  // waits at most for the fdatasync in flight and the one after it.
  Status Sync();
  // Syncs, then removes whole segments whose entries are all at or below `index`.
  // FailedPrecondition if `index` is past the latest snapshot. Never removes the segment being
  // written.
  Status Compact(consensus::Index index);

  // The log as recovered plus what was written since.
  consensus::HardState hard_state() const;
  consensus::SnapshotMeta snapshot() const;
  consensus::Index first_index() const;
  consensus::Index last_index() const;
  Result<consensus::Term> TermAt(consensus::Index index) const;
  Result<std::vector<consensus::Entry>> Entries(consensus::Index lo, consensus::Index hi,
                                                uint64_t max_bytes) const;
  // File names of the segments, oldest first.
  std::vector<std::string> SegmentNames() const;
  const RecoveryReport& recovery() const { return recovery_; }

  // "0000000000000001.wal" for first index 1.
  static std::string SegmentName(consensus::Index first_index);

 private:
  struct Segment {
    consensus::Index first_index = 0;
    std::string path;
  };

  Wal(Env* env, std::string dir, const WalOptions& options, Identity identity);
  Status Recover(std::vector<Segment> segments);
  Status RecoverSegment(const Segment& segment, bool last);
  Status OpenTail(const Segment& segment, uint64_t valid_end_bytes, bool truncate);

  // All *Locked methods require mu_.
  Status CreateSegmentLocked(consensus::Index first_index);
  bool OverwritesLocked(const std::vector<consensus::Entry>& entries) const;
  Status AddRecordLocked(RecordType type, const std::string& payload, std::string* batch);
  Status FlushLocked(std::string* batch);
  Status RollLocked();
  // file->Sync(), timed for options_.on_sync.
  Status TimedSync(File* file);
  // Stores `s` as the error every later write returns, and returns it.
  Status PoisonLocked(Status s);

  Env* const env_;
  const std::string dir_;
  const WalOptions options_;
  const Identity identity_;
  RecoveryReport recovery_;  // Set by Open, then read-only.

  mutable std::mutex mu_;
  std::condition_variable sync_done_;
  LogState state_;                 // Guarded by mu_.
  std::vector<Segment> segments_;  // Guarded by mu_. Oldest first; the last is active_.
  std::unique_ptr<File> active_;   // Guarded by mu_.
  uint64_t active_offset_ = 0;     // Guarded by mu_. Where the next record goes in active_.
  uint64_t header_end_ = 0;        // Guarded by mu_. End of active_'s header records.
  uint64_t written_seq_ = 0;       // Guarded by mu_. Writes issued.
  uint64_t synced_seq_ = 0;        // Guarded by mu_. Writes known durable.
  bool sync_in_progress_ = false;  // Guarded by mu_. A Sync() leader is in fdatasync, unlocked.
  // Segments rolled away from while a leader may still be syncing them; freed when it is done.
  std::vector<std::unique_ptr<File>> retired_;  // Guarded by mu_.
  Status error_;                                // Guarded by mu_.
};

}  // namespace ballot::wal
