// The loader: name resolution, listing, and one clear line for every way a
// plugin can fail to load.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>

#include "tests/transport/transport_test_util.h"

namespace plasma::transport::testing {
namespace {

const std::string kPluginDir = PLASMA_TEST_PLUGIN_DIR;
const std::string kBadPluginDir = PLASMA_TEST_BAD_PLUGIN_DIR;

std::string BadPlugin(const std::string& defect) {
  return kBadPluginDir + "/" + PluginFileName("bad-" + defect);
}

// Sets (or unsets) an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) setenv(name, value->c_str(), 1);
    else unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_) setenv(name_, old_->c_str(), 1);
    else unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/plasma-loader-test-XXXXXX";
    path_ = mkdtemp(pattern);
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Loads and returns the failure, asserting it is one line naming the file.
Status ExpectLoadFailure(const std::string& name_or_path, const std::string& file_mentioned) {
  auto loaded = Plugin::Load(name_or_path, QuietOptions());
  EXPECT_FALSE(loaded.ok()) << name_or_path << " loaded unexpectedly";
  if (loaded.ok()) return Status::OK();
  const std::string& message = loaded.status().message();
  EXPECT_NE(message.find(file_mentioned), std::string::npos)
      << "error does not name " << file_mentioned << ": " << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << "error is not one line: " << message;
  return loaded.status();
}

bool Contains(const Status& status, const std::string& text) {
  return status.message().find(text) != std::string::npos;
}

TEST(LoaderTest, LoadsTheSocketPluginByName) {
  ScopedEnv path(kTransportPathEnv, kPluginDir);
  auto loaded = Plugin::Load("socket", QuietOptions());
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded.value()->name(), "socket");
  EXPECT_EQ(loaded.value()->path(), kPluginDir + "/" + PluginFileName("socket"));
  EXPECT_NE(loaded.value()->context(), nullptr);
}

TEST(LoaderTest, LoadsFromTheEnvironmentWithSocketAsDefault) {
  ScopedEnv path(kTransportPathEnv, kPluginDir);
  {
    ScopedEnv transport(kTransportEnv, std::nullopt);
    auto loaded = Plugin::LoadFromEnvironment(QuietOptions());
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    EXPECT_EQ(loaded.value()->name(), "socket");
  }
  {
    ScopedEnv transport(kTransportEnv, kPluginDir + "/" + PluginFileName("socket"));
    auto loaded = Plugin::LoadFromEnvironment(QuietOptions());
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    EXPECT_EQ(loaded.value()->name(), "socket");
  }
  {
    ScopedEnv transport(kTransportEnv, "verbs-that-is-not-built");
    auto loaded = Plugin::LoadFromEnvironment(QuietOptions());
    ASSERT_FALSE(loaded.ok());
    EXPECT_TRUE(Contains(loaded.status(), "libplasma-transport-verbs-that-is-not-built.so"));
  }
}

TEST(LoaderTest, SearchPathOrderDecides) {
  TempDir first;
  // A copy of the socket plugin earlier in the path wins over the build dir.
  std::string copy = first.path() + "/" + PluginFileName("socket");
  std::ifstream in(kPluginDir + "/" + PluginFileName("socket"), std::ios::binary);
  std::ofstream out(copy, std::ios::binary);
  out << in.rdbuf();
  out.close();
  ScopedEnv path(kTransportPathEnv, first.path() + "::" + kPluginDir);
  auto resolved = ResolvePlugin("socket");
  ASSERT_TRUE(resolved.ok()) << resolved.status().ToString();
  EXPECT_EQ(resolved.value(), copy);
  std::vector<std::string> dirs = PluginSearchPath();
  ASSERT_GE(dirs.size(), 3u);  // the two above, the install dir, the executable's dir
  EXPECT_EQ(dirs[0], first.path());
  EXPECT_EQ(dirs[1], kPluginDir);
}

TEST(LoaderTest, MissingPluginNameNamesTheFileAndTheSearchPath) {
  ScopedEnv path(kTransportPathEnv, kPluginDir);
  Status status = ExpectLoadFailure("nosuchtransport", "libplasma-transport-nosuchtransport.so");
  EXPECT_TRUE(Contains(status, "not found")) << status.ToString();
  EXPECT_TRUE(Contains(status, kPluginDir)) << status.ToString();
}

TEST(LoaderTest, MissingAbsolutePath) {
  Status status = ExpectLoadFailure("/nonexistent/dir/libplasma-transport-x.so",
                                    "/nonexistent/dir/libplasma-transport-x.so");
  EXPECT_TRUE(Contains(status, "no such file")) << status.ToString();
}

TEST(LoaderTest, RejectsNamesThatAreNeitherNameNorAbsolutePath) {
  auto loaded = Plugin::Load("../lib/libplasma-transport-socket.so", QuietOptions());
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(loaded.status(), "../lib/libplasma-transport-socket.so"));
}

TEST(LoaderTest, FileThatIsNotASharedObject) {
  TempDir dir;
  std::string path = dir.path() + "/" + PluginFileName("garbage");
  std::ofstream(path) << "this is a text file, not an ELF shared object\n";
  Status status = ExpectLoadFailure(path, path);
  EXPECT_TRUE(Contains(status, "cannot load")) << status.ToString();
  // The dynamic loader's own reason is quoted.
  EXPECT_TRUE(Contains(status, "ELF") || Contains(status, "too short")) << status.ToString();
}

TEST(LoaderTest, MissingSymbol) {
  Status status = ExpectLoadFailure(BadPlugin("nosymbol"), BadPlugin("nosymbol"));
  EXPECT_TRUE(Contains(status, "does not export plasma_transport_v1")) << status.ToString();
}

TEST(LoaderTest, AbiVersionMismatch) {
  Status status = ExpectLoadFailure(BadPlugin("version"), BadPlugin("version"));
  EXPECT_TRUE(Contains(status, "ABI version 99")) << status.ToString();
  EXPECT_EQ(status.code(), StatusCode::kNotSupported);
}

TEST(LoaderTest, TableSmallerThanTheAbiRequires) {
  Status status = ExpectLoadFailure(BadPlugin("size"), BadPlugin("size"));
  EXPECT_TRUE(Contains(status, "table is 8 bytes, smaller than")) << status.ToString();
}

TEST(LoaderTest, NullFunctionInTable) {
  Status status = ExpectLoadFailure(BadPlugin("nullfunction"), BadPlugin("nullfunction"));
  EXPECT_TRUE(Contains(status, "no 'recv' function")) << status.ToString();
}

TEST(LoaderTest, TableCoveringPollCompletionsMustNotLeaveItNull) {
  Status status = ExpectLoadFailure(BadPlugin("nullpoll"), BadPlugin("nullpoll"));
  EXPECT_TRUE(Contains(status, "covers 'poll_completions', but that function is NULL"))
      << status.ToString();
  EXPECT_EQ(status.code(), StatusCode::kNotSupported);
}

TEST(LoaderTest, TableWithoutTheAppendedFieldsLoads) {
  // Built before poll_completions was appended (struct_size ends at cancel);
  // the slot past its end is NULL and must not be looked at.
  auto old_table = Plugin::Load(BadPlugin("oldtable"), QuietOptions());
  ASSERT_TRUE(old_table.ok()) << old_table.status().ToString();
  EXPECT_EQ(old_table.value()->api().struct_size, PLASMA_TP_V1_MIN_SIZE);
  EXPECT_FALSE(old_table.value()->has_poll_completions());

  ScopedEnv path(kTransportPathEnv, kPluginDir);
  auto socket = Plugin::Load("socket", QuietOptions());
  ASSERT_TRUE(socket.ok()) << socket.status().ToString();
  EXPECT_GE(socket.value()->api().struct_size, PLASMA_TP_V1_SIZE_WITH_POLL_COMPLETIONS);
  EXPECT_TRUE(socket.value()->has_poll_completions());
}

TEST(LoaderTest, PassesTheLocalAddressToInit) {
  // The socket plugin checks init's local_address, so a malformed one shows
  // that the loader passed PluginOptions::local_address through.
  ScopedEnv path(kTransportPathEnv, kPluginDir);
  PluginOptions options = QuietOptions();
  options.local_address = "[fd00::1";
  auto loaded = Plugin::Load("socket", options);
  ASSERT_FALSE(loaded.ok());
  EXPECT_TRUE(Contains(loaded.status(), "init failed")) << loaded.status().ToString();
  EXPECT_TRUE(Contains(loaded.status(), "[fd00::1")) << loaded.status().ToString();
  options.local_address = "127.0.0.1:0";
  auto good = Plugin::Load("socket", options);
  EXPECT_TRUE(good.ok()) << good.status().ToString();
}

// PLASMA_TRANSPORT=a,b,c: the first that loads and initializes is used;
// when none does, every one's reason is given.
TEST(LoaderTest, ATransportListTakesTheFirstThatWorks) {
  ScopedEnv path(kTransportPathEnv, kPluginDir);
  {
    // A missing plugin and one whose init fails (no device) are skipped.
    ScopedEnv transport(kTransportEnv,
                        "not-built," + BadPlugin("init") + ",socket");
    auto loaded = Plugin::LoadFromEnvironment(QuietOptions());
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    EXPECT_EQ(loaded.value()->name(), "socket");
  }
  {
    ScopedEnv transport(kTransportEnv, "not-built," + BadPlugin("init"));
    auto loaded = Plugin::LoadFromEnvironment(QuietOptions());
    ASSERT_FALSE(loaded.ok());
    EXPECT_TRUE(Contains(loaded.status(), "libplasma-transport-not-built.so")) << loaded.status().ToString();
    EXPECT_TRUE(Contains(loaded.status(), "no usable network device")) << loaded.status().ToString();
  }
}

TEST(LoaderTest, InitFailureQuotesThePluginsReason) {
  Status status = ExpectLoadFailure(BadPlugin("init"), BadPlugin("init"));
  EXPECT_TRUE(Contains(status, "init failed")) << status.ToString();
  EXPECT_TRUE(Contains(status, "no usable network device")) << status.ToString();
  EXPECT_TRUE(Contains(status, "no network card in this test")) << status.ToString();
  EXPECT_EQ(status.code(), StatusCode::kUnavailable);
}

TEST(LoaderTest, ListsEveryPluginWithPropertiesOrTheReasonItIsUnusable) {
  ScopedEnv path(kTransportPathEnv, kPluginDir + ":" + kBadPluginDir);
  std::vector<PluginInfo> plugins = ListPlugins();
  const PluginInfo* socket = nullptr;
  const PluginInfo* bad_version = nullptr;
  for (const PluginInfo& info : plugins) {
    if (info.path == kPluginDir + "/" + PluginFileName("socket")) socket = &info;
    if (info.path == BadPlugin("version")) bad_version = &info;
  }
  ASSERT_NE(socket, nullptr);
  EXPECT_TRUE(socket->status.ok()) << socket->status.ToString();
  EXPECT_EQ(socket->name, "socket");
  EXPECT_EQ(socket->abi_version, PLASMA_TP_ABI_VERSION_1);
  EXPECT_GT(socket->properties.eager_threshold, 0u);
  EXPECT_FALSE(socket->description.empty());
  ASSERT_NE(bad_version, nullptr);
  EXPECT_FALSE(bad_version->status.ok());

  std::string listing = FormatPluginList(plugins);
  EXPECT_NE(listing.find("socket  "), std::string::npos) << listing;
  EXPECT_NE(listing.find("ABI version 99"), std::string::npos) << listing;
}

TEST(LoaderTest, ToStatusMapsCodesAndNamesThePlugin) {
  ScopedEnv path(kTransportPathEnv, kPluginDir);
  auto loaded = Plugin::Load("socket", QuietOptions());
  ASSERT_TRUE(loaded.ok());
  const Plugin& plugin = *loaded.value();
  EXPECT_TRUE(plugin.ToStatus(PLASMA_TP_OK, "x").ok());
  Status reset = plugin.ToStatus(PLASMA_TP_ERR_CONNECTION_RESET, "send to node b");
  EXPECT_EQ(reset.code(), StatusCode::kIOError);
  EXPECT_EQ(reset.message(), "send to node b: connection reset by peer");
  EXPECT_EQ(plugin.ToStatus(PLASMA_TP_ERR_TIMED_OUT, "x").code(), StatusCode::kTimedOut);
  EXPECT_EQ(plugin.ToStatus(PLASMA_TP_ERR_UNSUPPORTED, "x").code(), StatusCode::kNotSupported);
}

// A malformed PLASMA_VERBS_* value fails init() with one line naming the
// variable and what it takes, before any device is looked for: the same on
// a machine with RDMA and without.
TEST(VerbsSettingsTest, MalformedSettingFailsInitNamingTheVariable) {
  UseBuiltPlugins();
  if (access((std::string(PLASMA_TEST_PLUGIN_DIR) + "/libplasma-transport-verbs.so").c_str(), F_OK) != 0) {
    GTEST_SKIP() << "the verbs plugin is not built here";
  }
  struct Case {
    const char* variable;
    const char* value;
  } cases[] = {{"PLASMA_VERBS_RNDV_THRESHOLD", "lots"},
               {"PLASMA_VERBS_RNDV_THRESHOLD", "99999999"},
               {"PLASMA_VERBS_RECV_BUFFERS", "-4"},
               {"PLASMA_VERBS_GID_INDEX", "1x"}};
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.variable) + "=" + c.value);
    ScopedEnv setting(c.variable, std::string(c.value));
    auto loaded = Plugin::Load("verbs", QuietOptions());
    ASSERT_FALSE(loaded.ok());
    const std::string message = loaded.status().ToString();
    EXPECT_NE(message.find(std::string(c.variable) + "='" + c.value + "'"), std::string::npos)
        << message;
    EXPECT_NE(message.find("is not a number from"), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    EXPECT_EQ(message.find("RDMA device"), std::string::npos) << "device looked for first: " << message;
  }
}

// The UCX plugin's own settings, malformed: init() fails with one line
// naming the variable, before UCX is started.
TEST(UcxSettingsTest, MalformedSettingFailsInitNamingTheVariable) {
  UseBuiltPlugins();
  if (access((std::string(PLASMA_TEST_PLUGIN_DIR) + "/libplasma-transport-ucx.so").c_str(), F_OK) != 0) {
    GTEST_SKIP() << "the ucx plugin is not built here";
  }
  struct Case {
    const char* variable;
    const char* value;
  } cases[] = {{"PLASMA_UCX_READ", "fast"},
               {"PLASMA_UCX_SHARED_MEMORY", "yes"},
               {"PLASMA_UCX_WAKEUP_TICK_MS", "1000"}};
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.variable) + "=" + c.value);
    ScopedEnv setting(c.variable, std::string(c.value));
    auto loaded = Plugin::Load("ucx", QuietOptions());
    ASSERT_FALSE(loaded.ok());
    const std::string message = loaded.status().ToString();
    EXPECT_NE(message.find(std::string(c.variable) + "='" + c.value + "' is "),
              std::string::npos)
        << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace plasma::transport::testing
