// The `plasma` command-line tool, run as a program against a real store.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <thread>

#include "plasma/client/client.h"
#include "tests/client/client_test_util.h"
#include "tests/common/test_util.h"

namespace plasma {
namespace {

using test::CommandResult;
using test::PatternString;
using test::ReadFileOrEmpty;

class CliTest : public ClientTestBase {
 protected:
  // Runs `plasma -s <store socket> args...`.
  CommandResult Plasma(std::vector<std::string> args, const std::string& stdin_data = "",
                       std::vector<std::string> env = {}) {
    args.insert(args.begin(), {PLASMA_CLI_PATH, "-s", store_->socket()});
    return RunRaw(args, stdin_data, env);
  }

  // Runs the tool with exactly these arguments (no -s).
  CommandResult RunRaw(std::vector<std::string> args, const std::string& stdin_data = "",
                       std::vector<std::string> env = {}) {
    if (args.empty() || args[0] != PLASMA_CLI_PATH) args.insert(args.begin(), PLASMA_CLI_PATH);
    auto result = test::RunCommand(args, stdin_data, env);
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    return result.ok() ? *result : CommandResult{};
  }

  std::string WriteFile(const std::string& name, const std::string& content) {
    std::string path = store_->dir() + "/" + name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  static std::string Trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
  }
};

TEST_F(CliTest, PutAFileThenGetItBackByteForByte) {
  std::string content = PatternString((1 << 20) + 3, 77);
  content[10] = '\0';  // binary-safe
  std::string in = WriteFile("input.bin", content);
  CommandResult put = Plasma({"put", in});
  ASSERT_EQ(put.exit_code, 0) << put.err;
  std::string hex = Trim(put.out);
  ASSERT_EQ(hex.size(), 40u) << put.out;
  ASSERT_TRUE(ObjectId::FromHex(hex).ok());

  std::string out = store_->dir() + "/output.bin";
  CommandResult get = Plasma({"get", hex, "-o", out});
  ASSERT_EQ(get.exit_code, 0) << get.err;
  EXPECT_TRUE(ReadFileOrEmpty(out) == content);

  CommandResult to_stdout = Plasma({"get", hex});
  ASSERT_EQ(to_stdout.exit_code, 0) << to_stdout.err;
  EXPECT_TRUE(to_stdout.out == content);

  // What the library sees is the same object.
  auto got = client_->Get({*ObjectId::FromHex(hex)}, 0);
  ASSERT_TRUE(got.ok() && (*got)[0].valid());
  EXPECT_EQ((*got)[0].data_size(), int64_t(content.size()));
}

TEST_F(CliTest, PutFromStdinWithIdAndMetadata) {
  ObjectId id = ObjectId::Random();
  CommandResult put = Plasma({"put", "-", "--id", id.Hex(), "--metadata", "type=text"},
                             "hello from stdin\n");
  ASSERT_EQ(put.exit_code, 0) << put.err;
  EXPECT_EQ(Trim(put.out), id.Hex());
  auto got = client_->Get({id}, 0);
  ASSERT_TRUE(got.ok() && (*got)[0].valid());
  const ObjectBuffer& object = (*got)[0];
  EXPECT_EQ(std::string(reinterpret_cast<char*>(object.data()), size_t(object.data_size())),
            "hello from stdin\n");
  EXPECT_EQ(std::string(reinterpret_cast<char*>(object.metadata()), size_t(object.metadata_size())),
            "type=text");
  // No FILE argument means stdin too; an empty input is an empty object.
  CommandResult empty = Plasma({"put"});
  ASSERT_EQ(empty.exit_code, 0) << empty.err;
  CommandResult get = Plasma({"get", Trim(empty.out)});
  EXPECT_EQ(get.exit_code, 0) << get.err;
  EXPECT_EQ(get.out, "");
}

TEST_F(CliTest, GetOfAnUnknownIdFailsNamingIt) {
  std::string hex = ObjectId::Random().Hex();
  CommandResult get = Plasma({"get", hex});
  EXPECT_EQ(get.exit_code, 1);
  EXPECT_NE(get.err.find(hex), std::string::npos) << get.err;
  EXPECT_NE(get.err.find("not found"), std::string::npos) << get.err;
  EXPECT_EQ(get.out, "");

  CommandResult bad_hex = Plasma({"get", "xyz"});
  EXPECT_EQ(bad_hex.exit_code, 2);
  EXPECT_NE(bad_hex.err.find("xyz"), std::string::npos) << bad_hex.err;
}

TEST_F(CliTest, GetWaitsWithATimeout) {
  ObjectId id = ObjectId::Random();
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    auto other = Connect();
    EXPECT_TRUE(other->CreateAndSeal(id, "late").ok());
  });
  CommandResult get = Plasma({"get", id.Hex(), "--timeout", "30000"});
  writer.join();
  EXPECT_EQ(get.exit_code, 0) << get.err;
  EXPECT_EQ(get.out, "late");
}

TEST_F(CliTest, GetOfAnObjectStillBeingCreatedSaysSo) {
  ObjectId id = ObjectId::Random();
  auto created = client_->Create(id, 10);
  ASSERT_TRUE(created.ok());
  CommandResult get = Plasma({"get", id.Hex()});
  EXPECT_EQ(get.exit_code, 1);
  EXPECT_NE(get.err.find("being created"), std::string::npos) << get.err;
}

TEST_F(CliTest, PutErrorsNameTheFileOrTheObject) {
  std::string missing = store_->dir() + "/missing.bin";
  CommandResult put = Plasma({"put", missing});
  EXPECT_EQ(put.exit_code, 1);
  EXPECT_NE(put.err.find(missing), std::string::npos) << put.err;
  EXPECT_NE(put.err.find("No such file"), std::string::npos) << put.err;

  ObjectId id = ObjectId::Random();
  ASSERT_TRUE(client_->CreateAndSeal(id, "taken").ok());
  CommandResult clash = Plasma({"put", "--id", id.Hex()}, "data");
  EXPECT_EQ(clash.exit_code, 1);
  EXPECT_NE(clash.err.find(id.Hex()), std::string::npos) << clash.err;
  EXPECT_NE(clash.err.find("already exists"), std::string::npos) << clash.err;

  std::string big = WriteFile("big.bin", std::string(size_t(StoreCapacity()) + 1, 'b'));
  CommandResult too_big = Plasma({"put", big});
  EXPECT_EQ(too_big.exit_code, 1);
  // Nothing is in use: the object is simply larger than the store.
  EXPECT_NE(too_big.err.find("larger than"), std::string::npos) << too_big.err;
  EXPECT_EQ(too_big.err.find("in use"), std::string::npos) << too_big.err;
}

TEST_F(CliTest, LsShowsEachObject) {
  ObjectId sealed = ObjectId::Random(), pending = ObjectId::Random();
  ASSERT_TRUE(client_->CreateAndSeal(sealed, std::string(2048, 's'), "meta").ok());
  auto created = client_->Create(pending, 5);
  ASSERT_TRUE(created.ok());
  CommandResult ls = Plasma({"ls", "--bytes"});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_NE(ls.out.find("ID"), std::string::npos);
  size_t sealed_line = ls.out.find(sealed.Hex());
  size_t pending_line = ls.out.find(pending.Hex());
  ASSERT_NE(sealed_line, std::string::npos) << ls.out;
  ASSERT_NE(pending_line, std::string::npos) << ls.out;
  std::string row = ls.out.substr(sealed_line, ls.out.find('\n', sealed_line) - sealed_line);
  EXPECT_NE(row.find("2048"), std::string::npos) << row;
  EXPECT_NE(row.find("sealed"), std::string::npos) << row;
  row = ls.out.substr(pending_line, ls.out.find('\n', pending_line) - pending_line);
  EXPECT_NE(row.find("created"), std::string::npos) << row;

  CommandResult human = Plasma({"ls"});
  ASSERT_EQ(human.exit_code, 0);
  EXPECT_NE(human.out.find("2.0 KiB"), std::string::npos) << human.out;
}

TEST_F(CliTest, RmDeletesAndReportsUnknownIds) {
  ObjectId a = ObjectId::Random(), b = ObjectId::Random(), missing = ObjectId::Random();
  ASSERT_TRUE(client_->CreateAndSeal(a, "a").ok());
  ASSERT_TRUE(client_->CreateAndSeal(b, "b").ok());
  CommandResult rm = Plasma({"rm", a.Hex(), b.Hex()});
  EXPECT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_FALSE(*client_->Contains(a));
  EXPECT_FALSE(*client_->Contains(b));
  CommandResult again = Plasma({"rm", missing.Hex()});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find(missing.Hex()), std::string::npos) << again.err;
}

TEST_F(CliTest, StatShowsCapacityUsageAndCount) {
  ASSERT_TRUE(client_->CreateAndSeal(ObjectId::Random(), std::string(1000, 'x'), "yy").ok());
  CommandResult stat = Plasma({"stat"});
  ASSERT_EQ(stat.exit_code, 0) << stat.err;
  EXPECT_NE(stat.out.find("capacity:  " + std::to_string(client_->memory_capacity())),
            std::string::npos)
      << stat.out;
  EXPECT_NE(stat.out.find("used:      1002 bytes"), std::string::npos) << stat.out;
  EXPECT_NE(stat.out.find("objects:   1 "), std::string::npos) << stat.out;
}

TEST_F(CliTest, FetchReportsThatItNeedsTheManager) {
  std::string hex = ObjectId::Random().Hex();
  CommandResult fetch = Plasma({"fetch", hex}, "", {"PLASMA_MANAGER_SOCKET="});
  EXPECT_EQ(fetch.exit_code, 1);
  EXPECT_NE(fetch.err.find(hex), std::string::npos) << fetch.err;
  EXPECT_NE(fetch.err.find("manager"), std::string::npos) << fetch.err;
  CommandResult with_manager =
      Plasma({"fetch", hex, "--manager", store_->dir() + "/manager.sock", "--timeout", "100"});
  EXPECT_EQ(with_manager.exit_code, 1);
  EXPECT_NE(with_manager.err.find(store_->dir() + "/manager.sock"), std::string::npos)
      << with_manager.err;
}

TEST_F(CliTest, SocketComesFromTheEnvironmentOrFlagAndErrorsNameIt) {
  ASSERT_TRUE(client_->CreateAndSeal(ObjectId::Random(), "x").ok());
  CommandResult via_env = RunRaw({"ls"}, "", {"PLASMA_STORE_SOCKET=" + store_->socket()});
  EXPECT_EQ(via_env.exit_code, 0) << via_env.err;
  std::string nowhere = store_->dir() + "/nowhere.sock";
  CommandResult no_store = RunRaw({"-s", nowhere, "ls"});
  EXPECT_EQ(no_store.exit_code, 1);
  EXPECT_NE(no_store.err.find(nowhere), std::string::npos) << no_store.err;
  CommandResult env_no_store = RunRaw({"stat"}, "", {"PLASMA_STORE_SOCKET=" + nowhere});
  EXPECT_EQ(env_no_store.exit_code, 1);
  EXPECT_NE(env_no_store.err.find(nowhere), std::string::npos) << env_no_store.err;
}

TEST_F(CliTest, HelpAndUsageErrors) {
  CommandResult help = RunRaw({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("usage: plasma"), std::string::npos);
  for (std::string command : {"put", "get", "ls", "rm", "stat", "fetch"}) {
    CommandResult sub = RunRaw({command, "--help"});
    EXPECT_EQ(sub.exit_code, 0) << command;
    EXPECT_NE(sub.out.find("usage: plasma " + command), std::string::npos) << sub.out;
  }
  EXPECT_EQ(RunRaw({}).exit_code, 2);
  EXPECT_EQ(RunRaw({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(RunRaw({"ls", "--bogus"}).exit_code, 2);
  EXPECT_EQ(RunRaw({"get"}).exit_code, 2);
  EXPECT_EQ(RunRaw({"get", ObjectId::Random().Hex(), "--timeout", "soon"}).exit_code, 2);
  EXPECT_EQ(RunRaw({"put", "--id"}).exit_code, 2);
}

}  // namespace
}  // namespace plasma
