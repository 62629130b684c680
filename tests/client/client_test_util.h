// A fixture for client-side suites: a fresh store per test and one client.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "plasma/client/client.h"
#include "tests/common/test_util.h"

namespace plasma {

class ClientTestBase : public ::testing::Test {
 protected:
  virtual int64_t StoreCapacity() const { return 64 << 20; }

  void SetUp() override {
    auto store = StoreProcess::Start(StoreCapacity());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    client_ = Connect();
    ASSERT_NE(client_, nullptr);
  }

  void TearDown() override {
    client_.reset();
    store_.reset();
  }

  std::shared_ptr<Client> Connect() {
    auto client = Client::Connect(store_->socket());
    EXPECT_TRUE(client.ok()) << client.status().ToString();
    return client.ok() ? *client : nullptr;
  }

  // The store's reference count of id (-1: not in the store), asked over
  // `via`'s connection (default client_). The store handles each connection
  // in order, so asking over the connection that just released something
  // sees that release; another connection may not yet.
  int RefCount(const ObjectId& id, const std::shared_ptr<Client>& via = nullptr) {
    auto objects = (via ? via : client_)->List();
    EXPECT_TRUE(objects.ok()) << objects.status().ToString();
    if (!objects.ok()) return -2;
    for (const auto& info : *objects) {
      if (info.id == id) return info.ref_count;
    }
    return -1;
  }

  bool ListContains(const ObjectId& id) { return RefCount(id) != -1; }

  std::unique_ptr<StoreProcess> store_;
  std::shared_ptr<Client> client_;
};

}  // namespace plasma
