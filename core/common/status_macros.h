// Early return on an error Status, the two forms every fallible step here takes:
//
//   RETURN_IF_ERROR(store.Commit(batch));             // an absl::Status expression
//   ASSIGN_OR_RETURN(Gallery gallery, Open(path));    // an absl::StatusOr<T> expression
//
// The Status is returned unchanged (code and message), so the error a caller sees is the one the
// failing step wrote. ASSIGN_OR_RETURN declares or assigns `lhs` from the moved value.
#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define RETURN_IF_ERROR(expr)                                             \
  do {                                                                    \
    if (::absl::Status fedface_status_ = (expr); !fedface_status_.ok()) { \
      return fedface_status_;                                             \
    }                                                                     \
  } while (false)

#define FEDFACE_STATUS_CONCAT_INNER_(a, b) a##b
#define FEDFACE_STATUS_CONCAT_(a, b) FEDFACE_STATUS_CONCAT_INNER_(a, b)

#define ASSIGN_OR_RETURN(lhs, expr) \
  FEDFACE_ASSIGN_OR_RETURN_IMPL_(FEDFACE_STATUS_CONCAT_(fedface_statusor_, __LINE__), lhs, expr)

#define FEDFACE_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                   \
  if (!statusor.ok()) return std::move(statusor).status();  \
  lhs = std::move(statusor).value()
