// Helpers for transport tests: load a real plugin through the loader,
// connect two contexts over 127.0.0.1 inside one process, and drive both
// with bounded progress loops (every wait has a deadline; nothing asserts
// on timing).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tests/common/test_util.h"
#include "transport/loader.h"
#include "transport/plasma_transport.h"

namespace plasma::transport::testing {

// Points PLASMA_TRANSPORT_PATH at the build's lib dir unless ctest already did.
inline void UseBuiltPlugins() {
  setenv(kTransportPathEnv, PLASMA_TEST_PLUGIN_DIR, /*overwrite=*/0);
}

inline PluginOptions QuietOptions() {
  PluginOptions options;
  // Warnings and errors still show up in the test log; chatter does not.
  options.log = [](int level, const std::string& message) {
    if (level <= PLASMA_TP_LOG_WARN) std::fprintf(stderr, "[plugin] %s\n", message.c_str());
  };
  options.max_log_level = PLASMA_TP_LOG_WARN;
  return options;
}

// The conformance tests run against PLASMA_TEST_TRANSPORT (a name or an
// absolute path; default "socket"), so a new plugin can be checked with
// the same suite: PLASMA_TEST_TRANSPORT=ucx ctest -L transport
inline std::string TransportUnderTest() {
  const char* name = std::getenv("PLASMA_TEST_TRANSPORT");
  return name != nullptr && *name != '\0' ? name : "socket";
}

inline std::unique_ptr<Plugin> LoadPlugin(const std::string& name_or_path) {
  UseBuiltPlugins();
  auto loaded = Plugin::Load(name_or_path, QuietOptions());
  EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
  if (!loaded.ok()) return nullptr;
  return std::move(loaded).value();
}

inline std::unique_ptr<Plugin> LoadPluginUnderTest() { return LoadPlugin(TransportUnderTest()); }

constexpr uint64_t kAllBits = ~0ull;

using Clock = std::chrono::steady_clock;
constexpr std::chrono::seconds kDefaultTimeout{120};

inline std::vector<uint8_t> Pattern(size_t length, uint64_t seed) {
  std::vector<uint8_t> data(length);
  plasma::test::FillPattern(data.data(), length, seed);
  return data;
}

// One side of a connection: a plugin instance (own context) and its endpoint.
struct Endpoint {
  std::unique_ptr<Plugin> plugin;
  plasma_tp_conn_t conn = nullptr;

  const plasma_tp_v1_t& api() const { return plugin->api(); }
  plasma_tp_context_t ctx() const { return plugin->context(); }
  int Progress() const { return api().progress(ctx()); }

  plasma_tp_request_t Send(uint64_t tag, const void* buf, size_t len) {
    plasma_tp_request_t req = nullptr;
    int rc = api().send(ctx(), conn, tag, buf, len, nullptr, &req);
    EXPECT_EQ(rc, PLASMA_TP_OK) << api().strerror(rc);
    return req;
  }
  plasma_tp_request_t Recv(uint64_t tag, uint64_t mask, void* buf, size_t capacity) {
    plasma_tp_request_t req = nullptr;
    int rc = api().recv(ctx(), conn, tag, mask, buf, capacity, nullptr, &req);
    EXPECT_EQ(rc, PLASMA_TP_OK) << api().strerror(rc);
    return req;
  }
};

// `holder` registers [buf, buf+len) for remote READ; `reader` unpacks its key
// on reader.conn. Both handles are null (and a test failure recorded) on error.
inline void ShareForRead(Endpoint& holder, Endpoint& reader, void* buf, size_t len,
                         plasma_tp_mem_t* mem, plasma_tp_rkey_t* rkey) {
  *mem = nullptr;
  *rkey = nullptr;
  int rc = holder.api().mem_register(holder.ctx(), buf, len, PLASMA_TP_ACCESS_REMOTE_READ, mem);
  ASSERT_EQ(rc, PLASMA_TP_OK) << holder.api().strerror(rc);
  const void* packed = nullptr;
  size_t packed_len = 0;
  rc = holder.api().mem_rkey(holder.ctx(), *mem, &packed, &packed_len);
  ASSERT_EQ(rc, PLASMA_TP_OK) << holder.api().strerror(rc);
  rc = reader.api().rkey_unpack(reader.ctx(), reader.conn, packed, packed_len, rkey);
  ASSERT_EQ(rc, PLASMA_TP_OK) << reader.api().strerror(rc);
}

// Progresses every endpoint until `done` or the deadline; false on timeout.
inline bool ProgressUntil(const std::vector<Endpoint*>& endpoints,
                          const std::function<bool()>& done,
                          std::chrono::seconds timeout = kDefaultTimeout) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    for (Endpoint* e : endpoints) {
      int rc = e->Progress();
      EXPECT_GE(rc, 0) << "progress failed: " << e->api().strerror(rc);
      if (rc < 0) return false;
    }
  }
  return true;
}

// Tracks one request to completion.
struct Pending {
  Endpoint* owner = nullptr;
  plasma_tp_request_t req = nullptr;
  bool done = false;
  plasma_tp_completion_t completion{};

  Pending() = default;
  Pending(Endpoint* e, plasma_tp_request_t r) : owner(e), req(r) {}

  bool Poll() {
    if (done || req == nullptr) return done;
    int rc = owner->api().test(owner->ctx(), req, &completion);
    if (rc == PLASMA_TP_OK) done = true;
    else EXPECT_EQ(rc, PLASMA_TP_IN_PROGRESS) << owner->api().strerror(rc);
    return done;
  }
};

inline bool WaitAll(const std::vector<Endpoint*>& endpoints, std::vector<Pending*> pending,
                    std::chrono::seconds timeout = kDefaultTimeout) {
  return ProgressUntil(endpoints, [&] {
    bool all = true;
    for (Pending* p : pending) all = p->Poll() && all;
    return all;
  }, timeout);
}

// Two contexts of the plugin under test, connected over 127.0.0.1.
class ConnectedPair : public ::testing::Test {
 protected:
  void SetUp() override {
    a_.plugin = LoadPluginUnderTest();
    b_.plugin = LoadPluginUnderTest();
    ASSERT_TRUE(a_.plugin && b_.plugin);
    ASSERT_EQ(b_.api().listen(b_.ctx(), "127.0.0.1:0", &listener_), PLASMA_TP_OK);
    const void* blob = nullptr;
    size_t blob_len = 0;
    ASSERT_EQ(b_.api().listener_address(b_.ctx(), listener_, &blob, &blob_len), PLASMA_TP_OK);
    address_.assign(static_cast<const char*>(blob), blob_len);
    ASSERT_EQ(a_.api().connect(a_.ctx(), blob, blob_len, &a_.conn), PLASMA_TP_OK);
    ASSERT_TRUE(ProgressUntil({&a_, &b_}, [&] {
      if (b_.conn == nullptr) b_.api().accept(b_.ctx(), listener_, &b_.conn);
      return b_.conn != nullptr && a_.api().conn_status(a_.ctx(), a_.conn) == PLASMA_TP_OK &&
             b_.api().conn_status(b_.ctx(), b_.conn) == PLASMA_TP_OK;
    }, std::chrono::seconds(30)));
  }

  void TearDown() override {
    // Finalize (in the Plugin destructors) frees whatever a failed test left.
    a_.plugin.reset();
    b_.plugin.reset();
  }

  Endpoint a_;
  Endpoint b_;
  plasma_tp_listener_t listener_ = nullptr;
  std::string address_;
};

}  // namespace plasma::transport::testing
