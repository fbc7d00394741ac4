#include "core/common/status_macros.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace {

absl::Status FailsWith(absl::StatusCode code, int* calls) {
  ++*calls;
  return absl::Status(code, "step failed");
}

absl::Status TwoSteps(bool first_fails, int* calls) {
  RETURN_IF_ERROR(first_fails ? FailsWith(absl::StatusCode::kNotFound, calls) : absl::OkStatus());
  RETURN_IF_ERROR(FailsWith(absl::StatusCode::kDataLoss, calls));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<std::string>> MakeText(bool fail) {
  if (fail) return absl::InvalidArgumentError("no text");
  return std::make_unique<std::string>("text");
}

absl::StatusOr<size_t> LengthOfText(bool fail) {
  ASSIGN_OR_RETURN(std::unique_ptr<std::string> text, MakeText(fail));  // move-only value
  size_t twice = 0;
  ASSIGN_OR_RETURN(twice, absl::StatusOr<size_t>(text->size() * 2));  // assigns an existing one
  return twice;
}

TEST(StatusMacrosTest, ReturnIfErrorReturnsTheFirstErrorUnchangedAndStopsThere) {
  int calls = 0;
  const absl::Status first = TwoSteps(/*first_fails=*/true, &calls);
  EXPECT_EQ(first.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(first.message(), "step failed");
  EXPECT_EQ(calls, 1);
  calls = 0;
  EXPECT_EQ(TwoSteps(/*first_fails=*/false, &calls).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(calls, 1);
}

TEST(StatusMacrosTest, AssignOrReturnMovesTheValueOrReturnsTheError) {
  const absl::StatusOr<size_t> ok = LengthOfText(false);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 8u);
  const absl::StatusOr<size_t> failed = LengthOfText(true);
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(failed.status().message(), "no text");
}

}  // namespace
