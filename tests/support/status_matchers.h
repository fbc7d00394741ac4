// GoogleTest matchers and macros for absl::Status and absl::StatusOr<T> (absl
// as Debian ships it has no status_matchers.h). A failure prints the status, so
// the reason is in the test log:
//   EXPECT_OK(store->CommitBatch(batch));
//   ASSERT_OK(loaded);                                  // a StatusOr
//   EXPECT_THAT(Open(path), StatusIs(absl::StatusCode::kDataLoss,
//   HasSubstr(path)));
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace fedface::testing {

inline const absl::Status& StatusOf(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}

// Matches a Status or StatusOr whose code is `code` and whose message matches
// `message`.
MATCHER_P2(StatusIs, code, message,
           absl::StrCat("has status code ", absl::StatusCodeToString(code))) {
  const absl::Status& status = ::fedface::testing::StatusOf(arg);
  *result_listener << "whose status is " << status;
  return status.code() == code &&
         ::testing::ExplainMatchResult(message, std::string(status.message()), result_listener);
}

// Matches an OK Status or StatusOr.
MATCHER(IsOk, "is OK") {
  const absl::Status& status = ::fedface::testing::StatusOf(arg);
  *result_listener << "whose status is " << status;
  return status.ok();
}

}  // namespace fedface::testing

#define EXPECT_OK(expr) EXPECT_THAT((expr), ::fedface::testing::IsOk())
#define ASSERT_OK(expr) ASSERT_THAT((expr), ::fedface::testing::IsOk())
