// The lessor: etcd's lease bookkeeping (server/lease/lessor.go), without any I/O of its own.
//
// Every change to the set of leases reaches the lessor through the replicated log, applied on the
// member's apply thread: Grant, Revoke, Attach/Detach (from the events of each write) and
// Checkpoint. Expiry is a decision of the primary (the leader) alone: Expired() lists the leases
// whose time is up and the member proposes their revocation; the lessor never deletes anything by
// itself. A follower's leases never expire ("forever") until Promote. Time is a steady-clock
// millisecond count passed in by the caller. See docs/watch-and-lease.md.
//
// Thread-safety: every public method may be called from any thread; one mutex inside guards all
// state (apply thread: Grant/Revoke/Attach/Detach/Checkpoint/Restore; member thread:
// Expired/Checkpoints/Promote/Demote; gRPC threads: KeepAlive/TimeToLive/Leases/Exists).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "base/status.h"
#include "mvcc/kv.h"

namespace ballot::lease {

using mvcc::LeaseId;
inline constexpr LeaseId kNoLease = 0;

// Etcd's MaxLeaseTTL (9,000,000,000 s, about 285 years).
inline constexpr int64_t kLeaseTtlSecondsMax = 9'000'000'000;

// Etcd's error messages (api/v3rpc/rpctypes), with etcd's gRPC codes.
inline constexpr char kLeaseNotFoundMessage[] = "etcdserver: requested lease not found";
inline constexpr char kLeaseExistsMessage[] = "etcdserver: lease already exists";
inline constexpr char kLeaseTtlTooLargeMessage[] = "etcdserver: too large lease TTL";
inline constexpr char kNotLeaderMessage[] = "etcdserver: not leader";

Status LeaseNotFoundError();     // NotFound
Status LeaseExistsError();       // FailedPrecondition
Status LeaseTtlTooLargeError();  // OutOfRange
Status NotPrimaryError();        // FailedPrecondition "etcdserver: not leader"
// Whether `status` is NotPrimaryError(): the member forwards the request to the leader, or
// answers "not leader".
bool IsNotPrimary(const Status& status);

struct LessorOptions {
  // Etcd's minLeaseTTL: a grant asking for less gets this much. The member derives it from the
  // election timeout like etcd: ceil(1.5 * election timeout) in seconds.
  int64_t min_ttl_s = 1;
  // Leases whose remaining TTL exceeds this are checkpointed once per interval (etcd's
  // leaseCheckpointInterval, 5 minutes); 0 disables checkpoints.
  int64_t checkpoint_interval_ms = 5 * 60 * 1000;
  // After Expired() has returned a lease, it is returned again only after this long, in case the
  // revocation proposal was lost (etcd's expiredLeaseRetryInterval).
  int64_t expired_retry_ms = 3000;
};

// What the member stores for one lease in the key space's meta namespace (see EncodeLeaseRecord).
struct LeaseRecord {
  LeaseId id = kNoLease;
  int64_t ttl_s = 0;            // Granted TTL, after the minimum was applied.
  int64_t remaining_ttl_s = 0;  // Last checkpointed remaining TTL; 0 = none (use ttl_s).

  bool operator==(const LeaseRecord&) const = default;
};

// A fixed 29-byte record: [u8 version = 1][i64 id][i64 ttl_s][i64 remaining_ttl_s][u32 masked
// crc32c of the preceding bytes], little-endian. Decoding is strict: any other length, version,
// checksum, a zero id or an out-of-range TTL is DataLoss, never a crash.
inline constexpr size_t kLeaseRecordBytes = 29;
std::string EncodeLeaseRecord(const LeaseRecord& record);
Result<LeaseRecord> DecodeLeaseRecord(std::string_view bytes);

struct TimeToLiveInfo {
  LeaseId id = kNoLease;
  int64_t granted_ttl_s = 0;
  int64_t remaining_ttl_s = 0;    // Truncated to whole seconds like etcd; 0 once expired.
  std::vector<std::string> keys;  // Sorted; filled only when asked for.
};

struct LeaseCheckpoint {
  LeaseId id = kNoLease;
  int64_t remaining_ttl_s = 0;  // 0 clears the checkpoint (after a renewal).

  bool operator==(const LeaseCheckpoint&) const = default;
};

struct RestoreReport {
  // Keys whose lease field names a lease without a record (kept unattached; the member logs them).
  std::vector<std::pair<std::string, LeaseId>> orphan_keys;
};

class Lessor {
 public:
  explicit Lessor(LessorOptions options);
  Lessor(const Lessor&) = delete;
  Lessor& operator=(const Lessor&) = delete;

  // ---- Applied through the log (apply thread) ----

  // Etcd's Grant: id 0 is LeaseNotFound; an existing id is LeaseExists; ttl_s above
  // kLeaseTtlSecondsMax is LeaseTtlTooLarge; below min_ttl_s it is raised to min_ttl_s. On the
  // primary the lease expires at now_ms + ttl; elsewhere never. Returns the record to persist.
  Result<LeaseRecord> Grant(LeaseId id, int64_t ttl_s, int64_t now_ms);

  // Removes the lease and returns its keys, sorted: the member deletes them all in the same
  // revision and removes the lease's record.
  Result<std::vector<std::string>> Revoke(LeaseId id);

  // A put of `key` with lease `id` (LeaseNotFound if no such lease; a key attached elsewhere
  // moves). Detach is a no-op unless `key` is attached to `id`.
  Status Attach(const std::string& key, LeaseId id);
  void Detach(const std::string& key, LeaseId id);

  // The bookkeeping of one applied revision, from its events: a put with lease L attaches the key
  // to L (a put without a lease detaches it from the lease of its prev_kv), a delete detaches it.
  // The member checks that every lease named by a put exists before it applies the put (etcd
  // answers "requested lease not found"); if one does not, the others are still applied and the
  // first such error is returned.
  Status ApplyEvents(std::span<const mvcc::Event> events);

  // Records a checkpointed remaining TTL (0 clears it); returns the record to persist, or
  // LeaseNotFound (a checkpoint may race a revocation; the member ignores that error).
  Result<LeaseRecord> Checkpoint(LeaseId id, int64_t remaining_ttl_s);

  // Replaces all state from persisted records and the keys' lease fields (after a restart or a
  // snapshot install). Leaves the lessor demoted. DataLoss if two records share an id or a record
  // is invalid.
  Result<RestoreReport> Restore(const std::vector<LeaseRecord>& records,
                                const std::vector<std::pair<std::string, LeaseId>>& key_leases);

  // ---- Primary only (member thread / gRPC threads) ----

  // Etcd's Renew: NotPrimary unless promoted; LeaseNotFound if unknown or already expired (an
  // expired lease is on its way to revocation). Returns the granted TTL (the new remaining TTL).
  Result<int64_t> KeepAlive(LeaseId id, int64_t now_ms);

  // NotPrimary unless promoted (etcd forwards TimeToLive to the leader); LeaseNotFound if unknown.
  Result<TimeToLiveInfo> TimeToLive(LeaseId id, int64_t now_ms, bool with_keys) const;

  // Up to `max` leases whose expiry has passed, earliest first. Each one returned is not returned
  // again for expired_retry_ms, unless it is renewed meanwhile. Empty unless promoted.
  std::vector<LeaseId> Expired(int64_t now_ms, size_t max);

  // Up to `max` checkpoints due at now_ms, for the member to propose (etcd's
  // maxLeaseCheckpointBatchSize is 1000). Empty unless promoted.
  std::vector<LeaseCheckpoint> Checkpoints(int64_t now_ms, size_t max);

  // Becoming primary: every lease expires at now_ms + extend_ms + its remaining TTL (the
  // checkpointed one if any, else the granted one), as etcd's Promote, so that no lease expires
  // early because the leader changed. The member passes its election timeout as extend_ms.
  void Promote(int64_t now_ms, int64_t extend_ms);
  // No longer primary: expiries become "never" until the next Promote.
  void Demote();
  bool primary() const;

  // ---- Any thread ----

  bool Exists(LeaseId id) const;
  std::vector<LeaseId> Leases() const;  // Sorted.
  std::optional<LeaseId> LeaseOfKey(std::string_view key) const;
  std::optional<LeaseRecord> Record(LeaseId id) const;

 private:
  static constexpr int64_t kForever = INT64_MAX;
  struct Lease {
    int64_t ttl_s = 0;
    int64_t remaining_ttl_s = 0;
    int64_t expiry_ms = kForever;
    int64_t expiry_due_ms = kForever;      // When Expired() may next return it.
    int64_t checkpoint_due_ms = kForever;  // When Checkpoints() next yields it.
    bool clear_checkpoint = false;         // Renewed since its last checkpoint.
    std::set<std::string, std::less<>> keys;
  };

  void SetExpiryDue(LeaseId id, Lease& lease, int64_t due_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetCheckpointDue(LeaseId id, Lease& lease, int64_t due_ms)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ScheduleCheckpointIfNeeded(LeaseId id, Lease& lease, int64_t now_ms)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EraseLease(std::map<LeaseId, Lease>::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const LessorOptions options_;
  mutable std::mutex mu_;
  bool primary_ ABSL_GUARDED_BY(mu_) = false;
  std::map<LeaseId, Lease> leases_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, LeaseId, std::less<>> key_leases_ ABSL_GUARDED_BY(mu_);
  std::set<std::pair<int64_t, LeaseId>> expiry_queue_ ABSL_GUARDED_BY(mu_);
  std::set<std::pair<int64_t, LeaseId>> checkpoint_queue_ ABSL_GUARDED_BY(mu_);
};

// Picks lease ids before a grant is proposed, like etcd's idutil.Generator: the member id's low
// 16 bits, then 40 bits of wall-clock milliseconds at start, then an 8-bit counter that carries
// into the time bits; the top bit is cleared so an id is positive, and 0 is never returned. Two
// members, or one member restarted later, do not collide. Thread-safe.
class LeaseIdGenerator {
 public:
  LeaseIdGenerator(uint64_t member_id, int64_t unix_now_ms);
  LeaseId Next();

 private:
  const uint64_t prefix_;
  std::atomic<uint64_t> suffix_;
};

}  // namespace ballot::lease
