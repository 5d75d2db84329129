#include "wal/wal.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

namespace ballot::wal {

using consensus::Entry;
using consensus::HardState;
using consensus::Index;
using consensus::SnapshotMeta;
using consensus::Term;

namespace {

constexpr std::string_view kSegmentSuffix = ".wal";
constexpr std::string_view kTempSuffix = ".tmp";
constexpr size_t kSegmentNameDigits = 16;

// The first index a segment file name encodes, or 0 if it is not a segment's name.
Index ParseSegmentName(const std::string& name) {
  if (name.size() != kSegmentNameDigits + kSegmentSuffix.size() ||
      !name.ends_with(kSegmentSuffix)) {
    return 0;
  }
  Index index = 0;
  for (size_t i = 0; i < kSegmentNameDigits; ++i) {
    const char c = name[i];
    int digit = -1;
    if (c >= '0' && c <= '9') digit = c - '0';
    if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
    if (digit < 0) return 0;
    index = index * 16 + static_cast<Index>(digit);
  }
  return index;
}

Status DamageAt(const std::string& path, uint64_t offset, std::string_view problem) {
  return Status::DataLoss(path + " at byte " + std::to_string(offset) + ": " +
                          std::string(problem));
}

}  // namespace

std::string Wal::SegmentName(Index first_index) {
  char name[32];
  std::snprintf(name, sizeof(name), "%016" PRIx64 ".wal", first_index);
  return name;
}

Wal::Wal(Env* env, std::string dir, const WalOptions& options, Identity identity)
    : env_(env), dir_(std::move(dir)), options_(options), identity_(std::move(identity)) {}

Wal::~Wal() {
  std::unique_lock lock(mu_);
  sync_done_.wait(lock, [&] { return !sync_in_progress_; });
}

Result<std::unique_ptr<Wal>> Wal::Open(Env* env, std::string dir, const WalOptions& options,
                                       const Identity& expected) {
  if (options.segment_bytes < kSegmentBytesMin) {
    return Status::InvalidArgument("segment_bytes " + std::to_string(options.segment_bytes) +
                                   " is below " + std::to_string(kSegmentBytesMin));
  }
  if (expected.engine.size() > kEngineNameBytesMax) {
    return Status::InvalidArgument("engine name longer than " +
                                   std::to_string(kEngineNameBytesMax) + " bytes");
  }
  RETURN_IF_ERROR(env->CreateDir(dir));
  ASSIGN_OR_RETURN(std::vector<std::string> names, env->ListDir(dir));
  std::vector<Segment> segments;
  for (const std::string& name : names) {
    // A segment still named .tmp was never renamed into place: it holds nothing acknowledged.
    if (name.ends_with(kTempSuffix)) {
      RETURN_IF_ERROR(env->Remove(dir + "/" + name));
      continue;
    }
    const Index first = ParseSegmentName(name);
    if (first != 0) segments.push_back(Segment{first, dir + "/" + name});
  }
  std::sort(segments.begin(), segments.end(),
            [](const Segment& a, const Segment& b) { return a.first_index < b.first_index; });

  std::unique_ptr<Wal> wal(new Wal(env, std::move(dir), options, expected));
  if (segments.empty()) {
    std::lock_guard lock(wal->mu_);
    RETURN_IF_ERROR(wal->CreateSegmentLocked(1));
  } else {
    RETURN_IF_ERROR(wal->Recover(std::move(segments)));
  }
  return wal;
}

Status Wal::Recover(std::vector<Segment> segments) {
  std::lock_guard lock(mu_);
  state_ = LogState(segments.front().first_index - 1);
  for (size_t i = 0; i < segments.size(); ++i) {
    if (i > 0 && state_.last_index() + 1 != segments[i].first_index) {
      return DamageAt(segments[i].path, 0,
                      "segment starts at index " + std::to_string(segments[i].first_index) +
                          " but the log before it ends at " + std::to_string(state_.last_index()) +
                          " (a segment is missing or out of order)");
    }
    RETURN_IF_ERROR(RecoverSegment(segments[i], i + 1 == segments.size()));
  }
  if (!state_.Complete()) {
    return Status::DataLoss(segments.front().path + ": the log starts after index " +
                            std::to_string(state_.first_index() - 1) +
                            " but the latest snapshot covers only up to " +
                            std::to_string(state_.snapshot().index));
  }
  segments_ = std::move(segments);
  return Status::Ok();
}

// Requires mu_ (called from Recover).
Status Wal::RecoverSegment(const Segment& segment, bool last) {
  ASSIGN_OR_RETURN(std::string data, env_->ReadFile(segment.path));
  RecordReader reader(data);
  RecordReader::Item item = reader.Next();
  if (item.outcome != RecordReader::Outcome::kRecord || item.type != RecordType::kSegmentHeader) {
    return DamageAt(segment.path, 0,
                    "no segment header" + (item.problem.empty() ? "" : " (" + item.problem + ")"));
  }
  Result<SegmentHeader> header = DecodeSegmentHeader(item.payload);
  if (!header.ok()) return DamageAt(segment.path, 0, header.status().message());
  if (header->identity != identity_) {
    return Status::FailedPrecondition("data directory " + dir_ + " belongs to " +
                                      header->identity.ToString() + ", not to " +
                                      identity_.ToString() + " (" + segment.path + ")");
  }
  if (header->first_index != segment.first_index) {
    return DamageAt(segment.path, 0,
                    "header says first index " + std::to_string(header->first_index) +
                        " but the file name says " + std::to_string(segment.first_index));
  }
  for (;;) {
    item = reader.Next();
    switch (item.outcome) {
      case RecordReader::Outcome::kEnd:
        return last ? OpenTail(segment, item.offset, /*truncate=*/false) : Status::Ok();
      case RecordReader::Outcome::kTorn:
        if (!last)
          return DamageAt(segment.path, item.offset, item.problem + " (not the last segment)");
        recovery_ = RecoveryReport{true, segment.path, item.offset, item.problem};
        return OpenTail(segment, item.offset, /*truncate=*/true);
      case RecordReader::Outcome::kCorrupt:
        return DamageAt(segment.path, item.offset, item.problem);
      case RecordReader::Outcome::kRecord:
        break;
    }
    Status applied;
    switch (item.type) {
      case RecordType::kEntry: {
        Result<Entry> entry = DecodeEntry(item.payload);
        applied = entry.ok() ? state_.CheckAppend(entry->index) : entry.status();
        if (applied.ok()) state_.Append(std::move(entry).value());
        break;
      }
      case RecordType::kEntryBatch: {
        Result<std::vector<Entry>> entries = DecodeEntryBatch(item.payload);
        applied = entries.ok() ? state_.CheckAppend(entries->front().index) : entries.status();
        if (applied.ok()) {
          for (Entry& entry : *entries) state_.Append(std::move(entry));
        }
        break;
      }
      case RecordType::kHardState: {
        Result<HardState> hs = DecodeHardState(item.payload);
        applied = hs.status();
        if (hs.ok()) state_.SetHardState(*hs);
        break;
      }
      case RecordType::kSnapshot: {
        Result<SnapshotMeta> meta = DecodeSnapshotMeta(item.payload);
        applied = meta.ok() ? state_.CheckSnapshot(*meta) : meta.status();
        if (applied.ok()) state_.ApplySnapshot(*meta);
        break;
      }
      case RecordType::kSegmentHeader:
        applied = Status::DataLoss("a second segment header");
        break;
    }
    if (!applied.ok()) return DamageAt(segment.path, item.offset, applied.message());
  }
}

// Requires mu_. Opens the last segment for writing at `valid_end_bytes`, zeroing a torn tail.
Status Wal::OpenTail(const Segment& segment, uint64_t valid_end_bytes, bool truncate) {
  ASSIGN_OR_RETURN(std::unique_ptr<File> file, env_->Open(segment.path, /*create=*/false));
  if (truncate) {
    RETURN_IF_ERROR(file->Truncate(valid_end_bytes));
    RETURN_IF_ERROR(file->Preallocate(options_.segment_bytes));
    RETURN_IF_ERROR(file->Sync());
  }
  active_ = std::move(file);
  active_offset_ = valid_end_bytes;
  header_end_ = valid_end_bytes;
  return Status::Ok();
}

Status Wal::CreateSegmentLocked(Index first_index) {
  const std::string path = dir_ + "/" + SegmentName(first_index);
  const std::string temp = path + std::string(kTempSuffix);
  std::string records;
  AppendRecord(&records, RecordType::kSegmentHeader,
               EncodeSegmentHeader(SegmentHeader{identity_, first_index}));
  // Every segment repeats the latest snapshot marker and hard state, so that compaction may remove
  // the segments that first held them.
  if (state_.snapshot().index > 0) {
    AppendRecord(&records, RecordType::kSnapshot, EncodeSnapshotMeta(state_.snapshot()));
  }
  if (!state_.hard_state().IsEmpty()) {
    AppendRecord(&records, RecordType::kHardState, EncodeHardState(state_.hard_state()));
  }
  {
    // Written under a temporary name and renamed once durable: a segment with its final name always
    // has a complete header.
    ASSIGN_OR_RETURN(std::unique_ptr<File> file, env_->Open(temp, /*create=*/true));
    RETURN_IF_ERROR(file->Preallocate(options_.segment_bytes));
    RETURN_IF_ERROR(file->WriteAt(0, records));
    RETURN_IF_ERROR(file->Sync());
  }
  RETURN_IF_ERROR(env_->Rename(temp, path));
  RETURN_IF_ERROR(env_->SyncDir(dir_));
  ASSIGN_OR_RETURN(active_, env_->Open(path, /*create=*/false));
  active_offset_ = records.size();
  header_end_ = records.size();
  segments_.push_back(Segment{first_index, path});
  return Status::Ok();
}

Status Wal::PoisonLocked(Status s) {
  if (!s.ok() && error_.ok()) {
    error_ = Status(s.code(), "write-ahead log stopped after a failed write: " + s.message());
  }
  return s;
}

Status Wal::AddRecordLocked(RecordType type, const std::string& payload, std::string* batch) {
  const uint64_t record_bytes = kRecordHeaderBytes + payload.size();
  const uint64_t end = active_offset_ + batch->size() + record_bytes;
  // A record larger than a whole segment goes alone into its own segment, which grows to hold it.
  if (end > options_.segment_bytes && active_offset_ + batch->size() > header_end_) {
    RETURN_IF_ERROR(FlushLocked(batch));
    RETURN_IF_ERROR(RollLocked());
  }
  AppendRecord(batch, type, payload);
  return Status::Ok();
}

Status Wal::FlushLocked(std::string* batch) {
  if (batch->empty()) return Status::Ok();
  RETURN_IF_ERROR(PoisonLocked(active_->WriteAt(active_offset_, *batch)));
  active_offset_ += batch->size();
  ++written_seq_;
  batch->clear();
  return Status::Ok();
}

Status Wal::RollLocked() {
  // The full segment is made durable before anything lands in the next one, so a crash can tear
  // only the last segment. Its unused preallocated tail is given back.
  RETURN_IF_ERROR(PoisonLocked(active_->Truncate(active_offset_)));
  RETURN_IF_ERROR(PoisonLocked(TimedSync(active_.get())));
  synced_seq_ = written_seq_;
  if (sync_in_progress_) retired_.push_back(std::move(active_));
  return PoisonLocked(CreateSegmentLocked(state_.last_index() + 1));
}

Status Wal::TimedSync(File* file) {
  if (!options_.on_sync) return file->Sync();
  const auto start = std::chrono::steady_clock::now();
  Status s = file->Sync();
  options_.on_sync(std::chrono::steady_clock::now() - start);
  return s;
}

Status Wal::Save(const HardState* hs, const std::vector<Entry>& entries, bool sync) {
  {
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(error_);
    if (!entries.empty()) RETURN_IF_ERROR(state_.CheckAppend(entries.front().index));
    for (size_t i = 0; i < entries.size(); ++i) {
      BALLOT_ASSERT(i == 0 || entries[i].index == entries[i - 1].index + 1,
                    "saved entries not contiguous");
      if (EncodeEntry(Entry{}).size() + entries[i].data.size() > kRecordBytesMax) {
        return Status::InvalidArgument("entry " + std::to_string(entries[i].index) + " of " +
                                       std::to_string(entries[i].data.size()) +
                                       " bytes exceeds kRecordBytesMax");
      }
    }
    std::string batch;
    if (OverwritesLocked(entries)) {
      // All or nothing: a torn write must leave the old entries, not a cut-off mix of old and new.
      RETURN_IF_ERROR(AddRecordLocked(RecordType::kEntryBatch, EncodeEntryBatch(entries), &batch));
      for (const Entry& entry : entries) state_.Append(entry);
    } else {
      for (const Entry& entry : entries) {
        RETURN_IF_ERROR(AddRecordLocked(RecordType::kEntry, EncodeEntry(entry), &batch));
        state_.Append(entry);
      }
    }
    if (hs != nullptr) {
      RETURN_IF_ERROR(AddRecordLocked(RecordType::kHardState, EncodeHardState(*hs), &batch));
      state_.SetHardState(*hs);
    }
    RETURN_IF_ERROR(FlushLocked(&batch));
  }
  return sync ? Sync() : Status::Ok();
}

// Requires mu_. Whether `entries` replace entries the log holds, and fit in one record.
bool Wal::OverwritesLocked(const std::vector<Entry>& entries) const {
  if (entries.empty() || entries.front().index > state_.last_index()) return false;
  uint64_t bytes = 4;
  for (const Entry& entry : entries) bytes += 4 + EncodeEntry(Entry{}).size() + entry.data.size();
  return bytes <= kRecordBytesMax;
}

Status Wal::SaveSnapshot(const SnapshotMeta& meta) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(error_);
  RETURN_IF_ERROR(state_.CheckSnapshot(meta));
  if (meta.conf.voters.size() + meta.conf.learners.size() > kConfMembersMax) {
    return Status::InvalidArgument("snapshot membership over kConfMembersMax");
  }
  std::string batch;
  RETURN_IF_ERROR(AddRecordLocked(RecordType::kSnapshot, EncodeSnapshotMeta(meta), &batch));
  state_.ApplySnapshot(meta);
  return FlushLocked(&batch);
}

Status Wal::Sync() {
  std::unique_lock lock(mu_);
  const uint64_t target = written_seq_;
  while (error_.ok() && synced_seq_ < target) {
    if (sync_in_progress_) {
      sync_done_.wait(lock);
      continue;
    }
    // Leader: one fdatasync for everything written so far, without holding the mutex, so writers
    // keep queueing behind it (leveldb's group commit).
    sync_in_progress_ = true;
    const uint64_t batch_seq = written_seq_;
    File* file = active_.get();
    lock.unlock();
    Status s = TimedSync(file);
    lock.lock();
    sync_in_progress_ = false;
    retired_.clear();
    if (s.ok()) {
      synced_seq_ = std::max(synced_seq_, batch_seq);
    } else {
      (void)PoisonLocked(s);
    }
    sync_done_.notify_all();
  }
  return error_;
}

Status Wal::Compact(Index index) {
  // The snapshot marker that allows the removal must be durable before the log it replaces goes.
  RETURN_IF_ERROR(Sync());
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(error_);
  if (index > state_.snapshot().index) {
    return Status::FailedPrecondition("compaction to " + std::to_string(index) +
                                      " passes the snapshot at " +
                                      std::to_string(state_.snapshot().index));
  }
  // Segment k holds only entries below the first index of segment k + 1.
  size_t removable = 0;
  while (removable + 1 < segments_.size() && segments_[removable + 1].first_index - 1 <= index) {
    ++removable;
  }
  for (size_t i = 0; i < removable; ++i) {
    Status s = env_->Remove(segments_[i].path);
    if (!s.ok()) {
      segments_.erase(segments_.begin(), segments_.begin() + static_cast<std::ptrdiff_t>(i));
      return s;
    }
  }
  segments_.erase(segments_.begin(), segments_.begin() + static_cast<std::ptrdiff_t>(removable));
  return removable > 0 ? env_->SyncDir(dir_) : Status::Ok();
}

HardState Wal::hard_state() const {
  std::lock_guard lock(mu_);
  return state_.hard_state();
}

SnapshotMeta Wal::snapshot() const {
  std::lock_guard lock(mu_);
  return state_.snapshot();
}

Index Wal::first_index() const {
  std::lock_guard lock(mu_);
  return state_.first_index();
}

Index Wal::last_index() const {
  std::lock_guard lock(mu_);
  return state_.last_index();
}

Result<Term> Wal::TermAt(Index index) const {
  std::lock_guard lock(mu_);
  return state_.TermAt(index);
}

Result<std::vector<Entry>> Wal::Entries(Index lo, Index hi, uint64_t max_bytes) const {
  std::lock_guard lock(mu_);
  return state_.Entries(lo, hi, max_bytes);
}

std::vector<std::string> Wal::SegmentNames() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> names;
  for (const Segment& s : segments_) names.push_back(s.path.substr(dir_.size() + 1));
  return names;
}

}  // namespace ballot::wal
