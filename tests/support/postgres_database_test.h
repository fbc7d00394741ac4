// A fresh database per test on the test process's shared throw-away PostgreSQL cluster: as a
// function for fixtures and tests of their own, and as a gtest fixture.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "tests/support/postgres_cluster.h"
#include "tests/support/test_env.h"

namespace fedface::testing {

// Sets *cluster and *database (`prefix` and a number unique in this process) to a new database;
// skips the calling test, or fails it under CI=true, when PostgreSQL is not installed. The caller
// returns when ::testing::Test::IsSkipped() or HasFatalFailure().
inline void OpenFreshDatabase(const std::string& prefix, PostgresCluster** cluster,
                              std::string* database) {
  if (PostgresCluster::BinDir().empty()) {
    FEDFACE_SKIP_OR_FAIL("PostgreSQL (postgresql-15) is not installed");
  }
  absl::StatusOr<PostgresCluster*> shared = PostgresCluster::Shared();
  ASSERT_TRUE(shared.ok()) << shared.status();
  static int databases = 0;
  *cluster = *shared;
  *database = prefix + std::to_string(++databases);
  ASSERT_TRUE((*cluster)->CreateDatabase(*database).ok()) << *database;
}

// database_ on cluster_, fresh for each test.
class PostgresDatabaseTest : public ::testing::Test {
 protected:
  void SetUp() override { OpenFreshDatabase("pg_test_", &cluster_, &database_); }

  std::string database_;
  PostgresCluster* cluster_ = nullptr;  // shared by the test process
};

}  // namespace fedface::testing
