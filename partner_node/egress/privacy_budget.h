// The partner's privacy budget and the store of past releases, in the partner's own SQLite file
// (WAL, synchronous=FULL), so that both survive restarts and crashes.
//
// Every release the egress guard builds is recorded here BEFORE its bytes leave: the vendor, the
// vendor's round_id, the sha256 of the request, the epsilon charged and the exact release bytes.
//   - ONE budget per partner: the sum of epsilon charged to ALL vendor identities never exceeds
//     the limit (a vendor holding several identities cannot multiply it); a release that would
//     overspend is refused (RESOURCE_EXHAUSTED) and nothing is recorded. What each identity spent
//     is kept too, for the partner's records.
//   - A repeated identical request (same vendor, round_id and request hash) gets the stored
//     bytes back and is not charged again: no fresh noise to average away.
//   - The same round_id with a different request is refused (ALREADY_EXISTS).
// Charging and storing happen in one IMMEDIATE transaction, so concurrent requests (threads or
// processes) cannot overspend together. Thread-safe.
//
// Status messages of this class may name the database file: they are for the partner's logs,
// not for the vendor (the egress guard replaces them before anything is sent).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct sqlite3;

namespace fedface::partner {

struct StoredRelease {
  std::string vendor;
  std::string round_id;
  std::string request_sha256;
  double epsilon = 0;
  std::string release_bytes;  // the exact serialized release
};

class PrivacyBudget {
 public:
  // Opens or creates the budget database at `path`. `epsilon_limit` is the total epsilon all
  // vendors together may spend (>= 0; 0 allows only releases without differential privacy).
  static absl::StatusOr<std::unique_ptr<PrivacyBudget>> Open(const std::string& path,
                                                             double epsilon_limit);
  ~PrivacyBudget();
  PrivacyBudget(const PrivacyBudget&) = delete;
  PrivacyBudget& operator=(const PrivacyBudget&) = delete;

  // The release stored for (vendor, round_id), if any.
  absl::StatusOr<std::optional<StoredRelease>> Find(std::string_view vendor,
                                                    std::string_view round_id) const;

  // Charges `epsilon` (>= 0) to the partner's budget (on `vendor`'s account) and stores the
  // release, atomically.
  // ENSURES: OK -> the row is durable and the returned release is what must be sent: the new one,
  //   or, when (vendor, round_id) was already stored with the same request_sha256, the stored
  //   one (charged once, never twice).
  //   RESOURCE_EXHAUSTED -> SpentByAll() + epsilon would exceed the limit; nothing changed.
  //   ALREADY_EXISTS -> round_id already used by this vendor for a different request.
  absl::StatusOr<StoredRelease> ChargeAndStore(const StoredRelease& release);

  // OK when the partner's remaining budget can pay `epsilon` now (the same integer arithmetic
  // as ChargeAndStore, so an early refusal agrees with the charge); RESOURCE_EXHAUSTED otherwise.
  absl::Status CanPay(double epsilon) const;

  // Charges `epsilon` (>= 0) on `vendor`'s account without storing a release: what a refusal
  // that depends on the partner's data costs (EgressGuard::Refuse). RESOURCE_EXHAUSTED, and
  // nothing charged, when the budget cannot pay.
  absl::Status Charge(std::string_view vendor, double epsilon);

  // Epsilon this vendor identity has spent so far (0 for a vendor never seen).
  absl::StatusOr<double> Spent(std::string_view vendor) const;
  // Epsilon all vendor identities together have spent: what the limit applies to.
  absl::StatusOr<double> SpentByAll() const;
  double limit() const { return limit_; }
  const std::string& path() const { return path_; }

 private:
  PrivacyBudget(std::string path, sqlite3* db, double limit)
      : path_(std::move(path)), db_(db), limit_(limit) {}
  absl::StatusOr<std::optional<StoredRelease>> FindLocked(std::string_view vendor,
                                                          std::string_view round_id) const;
  absl::StatusOr<double> SpentLocked(std::string_view vendor) const;
  absl::StatusOr<int64_t> SpentNanoByAllLocked() const;
  absl::Status CanPayLocked(double epsilon) const;
  absl::Status ChargeLocked(std::string_view vendor, double epsilon);

  const std::string path_;
  sqlite3* const db_;
  const double limit_;
  mutable std::mutex mu_;
};

}  // namespace fedface::partner
