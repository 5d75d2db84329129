#include "lease/lessor.h"

#include <algorithm>
#include <cstring>

#include "base/assert.h"
#include "base/crc32c.h"

namespace ballot::lease {

Status LeaseNotFoundError() { return Status::NotFound(kLeaseNotFoundMessage); }
Status LeaseExistsError() { return Status::FailedPrecondition(kLeaseExistsMessage); }
Status LeaseTtlTooLargeError() { return Status::OutOfRange(kLeaseTtlTooLargeMessage); }
Status NotPrimaryError() { return Status::FailedPrecondition(kNotLeaderMessage); }
bool IsNotPrimary(const Status& status) { return status == NotPrimaryError(); }

// ---- Records -----------------------------------------------------------------------------------

namespace {
constexpr uint8_t kLeaseRecordVersion = 1;

void PutFixed64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutFixed32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t GetFixed64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}
uint32_t GetFixed32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

Status ValidateRecord(const LeaseRecord& r) {
  if (r.id == kNoLease) return Status::DataLoss("lease record: lease id 0");
  if (r.ttl_s < 1 || r.ttl_s > kLeaseTtlSecondsMax) {
    return Status::DataLoss("lease record: TTL " + std::to_string(r.ttl_s) + " out of range");
  }
  if (r.remaining_ttl_s < 0 || r.remaining_ttl_s > kLeaseTtlSecondsMax) {
    return Status::DataLoss("lease record: remaining TTL " + std::to_string(r.remaining_ttl_s) +
                            " out of range");
  }
  return Status::Ok();
}
}  // namespace

std::string EncodeLeaseRecord(const LeaseRecord& record) {
  BALLOT_ASSERT(ValidateRecord(record).ok(), "encoding an invalid lease record");
  std::string out;
  out.reserve(kLeaseRecordBytes);
  out.push_back(static_cast<char>(kLeaseRecordVersion));
  PutFixed64(out, static_cast<uint64_t>(record.id));
  PutFixed64(out, static_cast<uint64_t>(record.ttl_s));
  PutFixed64(out, static_cast<uint64_t>(record.remaining_ttl_s));
  PutFixed32(out, crc32c::Mask(crc32c::Value(out)));
  BALLOT_ASSERT(out.size() == kLeaseRecordBytes);
  return out;
}

Result<LeaseRecord> DecodeLeaseRecord(std::string_view bytes) {
  if (bytes.size() != kLeaseRecordBytes) {
    return Status::DataLoss("lease record: " + std::to_string(bytes.size()) + " bytes, expected " +
                            std::to_string(kLeaseRecordBytes));
  }
  if (static_cast<uint8_t>(bytes[0]) != kLeaseRecordVersion) {
    return Status::DataLoss("lease record: unknown version " +
                            std::to_string(static_cast<uint8_t>(bytes[0])));
  }
  const uint32_t stored = crc32c::Unmask(GetFixed32(bytes.data() + kLeaseRecordBytes - 4));
  if (stored != crc32c::Value(bytes.substr(0, kLeaseRecordBytes - 4))) {
    return Status::DataLoss("lease record: checksum mismatch");
  }
  LeaseRecord r;
  r.id = static_cast<LeaseId>(GetFixed64(bytes.data() + 1));
  r.ttl_s = static_cast<int64_t>(GetFixed64(bytes.data() + 9));
  r.remaining_ttl_s = static_cast<int64_t>(GetFixed64(bytes.data() + 17));
  RETURN_IF_ERROR(ValidateRecord(r));
  return r;
}

// ---- Lessor ------------------------------------------------------------------------------------

Lessor::Lessor(LessorOptions options) : options_(options) {
  BALLOT_ASSERT(options_.min_ttl_s >= 1 && options_.min_ttl_s <= kLeaseTtlSecondsMax);
  BALLOT_ASSERT(options_.checkpoint_interval_ms >= 0 && options_.expired_retry_ms > 0);
}

void Lessor::SetExpiryDue(LeaseId id, Lease& lease, int64_t due_ms) {
  if (lease.expiry_due_ms != kForever) expiry_queue_.erase({lease.expiry_due_ms, id});
  lease.expiry_due_ms = due_ms;
  if (due_ms != kForever) expiry_queue_.insert({due_ms, id});
}

void Lessor::SetCheckpointDue(LeaseId id, Lease& lease, int64_t due_ms) {
  if (lease.checkpoint_due_ms != kForever) checkpoint_queue_.erase({lease.checkpoint_due_ms, id});
  lease.checkpoint_due_ms = due_ms;
  if (due_ms != kForever) checkpoint_queue_.insert({due_ms, id});
}

// Etcd's scheduleCheckpointIfNeeded: only a lease that will outlive one interval is worth a
// checkpoint.
void Lessor::ScheduleCheckpointIfNeeded(LeaseId id, Lease& lease, int64_t now_ms) {
  if (options_.checkpoint_interval_ms == 0 || !primary_) return;
  if (lease.clear_checkpoint) {
    SetCheckpointDue(id, lease, now_ms);
  } else if (lease.expiry_ms != kForever &&
             lease.expiry_ms - now_ms > options_.checkpoint_interval_ms) {
    SetCheckpointDue(id, lease, now_ms + options_.checkpoint_interval_ms);
  } else {
    SetCheckpointDue(id, lease, kForever);
  }
}

void Lessor::EraseLease(std::map<LeaseId, Lease>::iterator it) {
  SetExpiryDue(it->first, it->second, kForever);
  SetCheckpointDue(it->first, it->second, kForever);
  for (const std::string& key : it->second.keys) key_leases_.erase(key);
  leases_.erase(it);
}

Result<LeaseRecord> Lessor::Grant(LeaseId id, int64_t ttl_s, int64_t now_ms) {
  std::lock_guard lock(mu_);
  if (id == kNoLease) return LeaseNotFoundError();
  if (ttl_s > kLeaseTtlSecondsMax) return LeaseTtlTooLargeError();
  if (leases_.contains(id)) return LeaseExistsError();
  Lease& lease = leases_[id];
  lease.ttl_s = std::max(ttl_s, options_.min_ttl_s);
  if (primary_) {
    lease.expiry_ms = now_ms + lease.ttl_s * 1000;
    SetExpiryDue(id, lease, lease.expiry_ms);
    ScheduleCheckpointIfNeeded(id, lease, now_ms);
  }
  return LeaseRecord{id, lease.ttl_s, 0};
}

Result<std::vector<std::string>> Lessor::Revoke(LeaseId id) {
  std::lock_guard lock(mu_);
  auto it = leases_.find(id);
  if (it == leases_.end()) return LeaseNotFoundError();
  std::vector<std::string> keys(it->second.keys.begin(), it->second.keys.end());
  EraseLease(it);
  return keys;
}

Status Lessor::Attach(const std::string& key, LeaseId id) {
  std::lock_guard lock(mu_);
  auto it = leases_.find(id);
  if (it == leases_.end()) return LeaseNotFoundError();
  auto [kit, inserted] = key_leases_.try_emplace(key, id);
  if (!inserted && kit->second != id) {
    auto old = leases_.find(kit->second);
    BALLOT_ASSERT(old != leases_.end(), "a key is attached to a lease that does not exist");
    old->second.keys.erase(key);
    kit->second = id;
  }
  it->second.keys.insert(key);
  return Status::Ok();
}

void Lessor::Detach(const std::string& key, LeaseId id) {
  std::lock_guard lock(mu_);
  auto kit = key_leases_.find(key);
  if (kit == key_leases_.end() || kit->second != id) return;
  key_leases_.erase(kit);
  auto it = leases_.find(id);
  BALLOT_ASSERT(it != leases_.end(), "a key is attached to a lease that does not exist");
  it->second.keys.erase(key);
}

Status Lessor::ApplyEvents(std::span<const mvcc::Event> events) {
  Status first_error;
  for (const mvcc::Event& e : events) {
    const std::string& key = e.kv.key;
    const LeaseId previous = e.prev_kv ? e.prev_kv->lease : kNoLease;
    if (e.type == mvcc::EventType::kDelete || e.kv.lease == kNoLease) {
      if (previous != kNoLease) Detach(key, previous);
      continue;
    }
    Status status = Attach(key, e.kv.lease);
    if (!status.ok() && first_error.ok()) first_error = std::move(status);
  }
  return first_error;
}

Result<LeaseRecord> Lessor::Checkpoint(LeaseId id, int64_t remaining_ttl_s) {
  std::lock_guard lock(mu_);
  auto it = leases_.find(id);
  if (it == leases_.end()) return LeaseNotFoundError();
  if (remaining_ttl_s < 0 || remaining_ttl_s > kLeaseTtlSecondsMax) {
    return Status::InvalidArgument("lease checkpoint: remaining TTL out of range");
  }
  // Etcd: only the remaining TTL changes; Promote turns it into an expiry.
  it->second.remaining_ttl_s = remaining_ttl_s;
  return LeaseRecord{id, it->second.ttl_s, remaining_ttl_s};
}

Result<RestoreReport> Lessor::Restore(
    const std::vector<LeaseRecord>& records,
    const std::vector<std::pair<std::string, LeaseId>>& key_leases) {
  std::map<LeaseId, Lease> leases;
  for (const LeaseRecord& r : records) {
    RETURN_IF_ERROR(ValidateRecord(r));
    Lease lease;
    lease.ttl_s = r.ttl_s;
    lease.remaining_ttl_s = r.remaining_ttl_s;
    if (!leases.emplace(r.id, std::move(lease)).second) {
      return Status::DataLoss("lease records: two records for lease " + std::to_string(r.id));
    }
  }
  RestoreReport report;
  std::map<std::string, LeaseId, std::less<>> keys;
  for (const auto& [key, id] : key_leases) {
    if (id == kNoLease) continue;
    auto it = leases.find(id);
    if (it == leases.end()) {
      report.orphan_keys.emplace_back(key, id);
      continue;
    }
    auto [kit, inserted] = keys.try_emplace(key, id);
    if (!inserted) {
      return Status::DataLoss("lease restore: key listed twice: " + key);
    }
    it->second.keys.insert(key);
  }
  std::lock_guard lock(mu_);
  primary_ = false;
  leases_ = std::move(leases);
  key_leases_ = std::move(keys);
  expiry_queue_.clear();
  checkpoint_queue_.clear();
  return report;
}

Result<int64_t> Lessor::KeepAlive(LeaseId id, int64_t now_ms) {
  std::lock_guard lock(mu_);
  if (!primary_) return NotPrimaryError();
  auto it = leases_.find(id);
  if (it == leases_.end()) return LeaseNotFoundError();
  Lease& lease = it->second;
  // Etcd refuses to renew an expired lease: its revocation may already be on its way.
  if (lease.expiry_ms <= now_ms) return LeaseNotFoundError();
  lease.expiry_ms = now_ms + lease.ttl_s * 1000;
  SetExpiryDue(id, lease, lease.expiry_ms);
  // Etcd: a renewal voids an older checkpoint, or a new leader would honour the stale, shorter
  // remaining TTL; a checkpoint of 0 is proposed at once to clear it.
  if (lease.remaining_ttl_s > 0) lease.clear_checkpoint = true;
  ScheduleCheckpointIfNeeded(id, lease, now_ms);
  return lease.ttl_s;
}

Result<TimeToLiveInfo> Lessor::TimeToLive(LeaseId id, int64_t now_ms, bool with_keys) const {
  std::lock_guard lock(mu_);
  if (!primary_) return NotPrimaryError();
  auto it = leases_.find(id);
  if (it == leases_.end()) return LeaseNotFoundError();
  const Lease& lease = it->second;
  TimeToLiveInfo info;
  info.id = id;
  info.granted_ttl_s = lease.ttl_s;
  info.remaining_ttl_s = std::max<int64_t>(0, (lease.expiry_ms - now_ms) / 1000);
  if (with_keys) info.keys.assign(lease.keys.begin(), lease.keys.end());
  return info;
}

std::vector<LeaseId> Lessor::Expired(int64_t now_ms, size_t max) {
  std::lock_guard lock(mu_);
  std::vector<LeaseId> out;
  if (!primary_) return out;
  for (auto it = expiry_queue_.begin(); it != expiry_queue_.end() && out.size() < max; ++it) {
    if (it->first > now_ms) break;
    out.push_back(it->second);
  }
  for (LeaseId id : out) SetExpiryDue(id, leases_.at(id), now_ms + options_.expired_retry_ms);
  return out;
}

std::vector<LeaseCheckpoint> Lessor::Checkpoints(int64_t now_ms, size_t max) {
  std::lock_guard lock(mu_);
  std::vector<LeaseCheckpoint> out;
  if (!primary_) return out;
  std::vector<LeaseId> due;
  for (auto it = checkpoint_queue_.begin(); it != checkpoint_queue_.end(); ++it) {
    if (it->first > now_ms || due.size() >= max) break;
    due.push_back(it->second);
  }
  for (LeaseId id : due) {
    Lease& lease = leases_.at(id);
    SetCheckpointDue(id, lease, kForever);
    if (lease.expiry_ms <= now_ms) continue;  // Expired: revocation, not a checkpoint, is next.
    if (lease.clear_checkpoint) {
      lease.clear_checkpoint = false;
      out.push_back({id, 0});
    } else {
      // Etcd's findDueScheduledCheckpoints: remaining TTL rounded up; nothing to record while
      // the lease has its whole TTL ahead of it.
      const int64_t remaining_s = (lease.expiry_ms - now_ms + 999) / 1000;
      if (remaining_s < lease.ttl_s) out.push_back({id, remaining_s});
    }
    ScheduleCheckpointIfNeeded(id, lease, now_ms);
  }
  return out;
}

void Lessor::Promote(int64_t now_ms, int64_t extend_ms) {
  std::lock_guard lock(mu_);
  BALLOT_ASSERT(extend_ms >= 0);
  primary_ = true;
  for (auto& [id, lease] : leases_) {
    const int64_t remaining_s = lease.remaining_ttl_s > 0 ? lease.remaining_ttl_s : lease.ttl_s;
    lease.expiry_ms = now_ms + extend_ms + remaining_s * 1000;
    lease.clear_checkpoint = false;
    SetExpiryDue(id, lease, lease.expiry_ms);
    ScheduleCheckpointIfNeeded(id, lease, now_ms);
  }
}

void Lessor::Demote() {
  std::lock_guard lock(mu_);
  primary_ = false;
  for (auto& [id, lease] : leases_) {
    lease.expiry_ms = kForever;
    lease.expiry_due_ms = kForever;
    lease.checkpoint_due_ms = kForever;
    lease.clear_checkpoint = false;
  }
  expiry_queue_.clear();
  checkpoint_queue_.clear();
}

bool Lessor::primary() const {
  std::lock_guard lock(mu_);
  return primary_;
}

bool Lessor::Exists(LeaseId id) const {
  std::lock_guard lock(mu_);
  return leases_.contains(id);
}

std::vector<LeaseId> Lessor::Leases() const {
  std::lock_guard lock(mu_);
  std::vector<LeaseId> out;
  out.reserve(leases_.size());
  for (const auto& [id, lease] : leases_) out.push_back(id);
  return out;
}

std::optional<LeaseId> Lessor::LeaseOfKey(std::string_view key) const {
  std::lock_guard lock(mu_);
  auto it = key_leases_.find(key);
  if (it == key_leases_.end()) return std::nullopt;
  return it->second;
}

std::optional<LeaseRecord> Lessor::Record(LeaseId id) const {
  std::lock_guard lock(mu_);
  auto it = leases_.find(id);
  if (it == leases_.end()) return std::nullopt;
  return LeaseRecord{id, it->second.ttl_s, it->second.remaining_ttl_s};
}

// ---- Ids ---------------------------------------------------------------------------------------

namespace {
constexpr int kCounterBits = 8;
constexpr int kTimeBits = 40;
constexpr int kSuffixBits = kCounterBits + kTimeBits;
constexpr uint64_t kSuffixMask = (uint64_t{1} << kSuffixBits) - 1;
}  // namespace

LeaseIdGenerator::LeaseIdGenerator(uint64_t member_id, int64_t unix_now_ms)
    : prefix_((member_id & 0xffff) << kSuffixBits),
      suffix_((static_cast<uint64_t>(unix_now_ms) & ((uint64_t{1} << kTimeBits) - 1))
              << kCounterBits) {}

LeaseId LeaseIdGenerator::Next() {
  for (;;) {
    const uint64_t suffix = suffix_.fetch_add(1, std::memory_order_relaxed) + 1;
    const auto id = static_cast<LeaseId>((prefix_ | (suffix & kSuffixMask)) & INT64_MAX);
    if (id != kNoLease) return id;
  }
}

}  // namespace ballot::lease
