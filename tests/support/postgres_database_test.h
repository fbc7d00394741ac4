// A gtest fixture with a fresh database (database_) on the test process's shared throw-away
// PostgreSQL cluster (cluster_); skips, or fails under CI=true, when PostgreSQL is not installed.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "tests/support/postgres_cluster.h"
#include "tests/support/test_env.h"

namespace fedface::testing {

class PostgresDatabaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (PostgresCluster::BinDir().empty()) {
      FEDFACE_SKIP_OR_FAIL("PostgreSQL (postgresql-15) is not installed");
    }
    auto cluster = PostgresCluster::Shared();
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *cluster;
    database_ = "pg_test_" + std::to_string(++databases_);
    ASSERT_TRUE(cluster_->CreateDatabase(database_).ok());
  }

  std::string database_;
  PostgresCluster* cluster_ = nullptr;  // shared by the test process
  static inline int databases_ = 0;
};

}  // namespace fedface::testing
