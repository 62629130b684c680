// Bad input never takes the store down: each malformed request is answered
// with an error or gets its client disconnected, and the store, its other
// clients and their objects carry on untouched.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "plasma/client/client.h"
#include "plasma/common/protocol.h"
#include "tests/common/test_util.h"

namespace plasma {
namespace {

using test::StoreProcess;

class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = StoreProcess::Start(64 << 20);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    auto client = Client::Connect(store_->socket());
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    good_ = *client;
    // An object that must survive every bad client.
    witness_ = ObjectId::Random();
    witness_data_ = std::string(100000, '\0');
    for (size_t i = 0; i < witness_data_.size(); ++i) witness_data_[i] = char(i * 7);
    ASSERT_TRUE(good_->CreateAndSeal(witness_, witness_data_, "meta").ok());
  }

  int RawConnect() {
    auto fd = ConnectUnixSocket(store_->socket());
    EXPECT_TRUE(fd.ok()) << fd.status().ToString();
    return fd.ok() ? *fd : -1;
  }

  void SendRaw(int fd, const void* data, size_t size) {
    ASSERT_TRUE(WriteFully(fd, data, size).ok());
  }

  void SendHeader(int fd, int64_t version, int64_t type, int64_t length) {
    int64_t header[3] = {version, type, length};  // x86-64 is little-endian
    SendRaw(fd, header, sizeof(header));
  }

  // The store closes a connection it rejects: reading yields EOF (bounded wait).
  static bool ClosedByStore(int fd) {
    timeval timeout{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    char buffer[4096];
    while (true) {
      ssize_t n = read(fd, buffer, sizeof(buffer));
      if (n == 0) return true;
      if (n < 0) return errno == ECONNRESET;
    }
  }

  // The store is alive, serves a new client, and the witness is intact.
  void ExpectStoreHealthy() {
    ASSERT_EQ(kill(store_->pid(), 0), 0) << "store process died";
    auto fresh = Client::Connect(store_->socket());
    ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
    auto got = (*fresh)->Get({witness_}, 1000);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_TRUE((*got)[0].valid());
    ASSERT_EQ((*got)[0].data_size(), int64_t(witness_data_.size()));
    EXPECT_EQ(std::memcmp((*got)[0].data(), witness_data_.data(), witness_data_.size()), 0);
    EXPECT_EQ(std::string(reinterpret_cast<char*>((*got)[0].metadata()), 4), "meta");
    // The long-lived client is unaffected too.
    auto contains = good_->Contains(witness_);
    ASSERT_TRUE(contains.ok());
    EXPECT_TRUE(*contains);
  }

  std::unique_ptr<StoreProcess> store_;
  std::shared_ptr<Client> good_;
  ObjectId witness_;
  std::string witness_data_;
};

TEST_F(BadInputTest, WrongProtocolVersionDisconnects) {
  int fd = RawConnect();
  SendHeader(fd, 7, int64_t(fb::MessageType::PlasmaConnectRequest), 0);
  EXPECT_TRUE(ClosedByStore(fd));
  close(fd);
  ExpectStoreHealthy();
}

TEST_F(BadInputTest, UnknownMessageTypeDisconnects) {
  int fd = RawConnect();
  SendHeader(fd, 0, 9999, 0);
  EXPECT_TRUE(ClosedByStore(fd));
  close(fd);
  ExpectStoreHealthy();
}

TEST_F(BadInputTest, ReplyTypeFromClientDisconnects) {
  int fd = RawConnect();
  SendHeader(fd, 0, int64_t(fb::MessageType::PlasmaCreateReply), 0);
  EXPECT_TRUE(ClosedByStore(fd));
  close(fd);
  ExpectStoreHealthy();
}

TEST_F(BadInputTest, FlatbufferFailingVerificationDisconnects) {
  int fd = RawConnect();
  std::vector<uint8_t> garbage(64, 0xff);
  ASSERT_TRUE(WriteFrame(fd, fb::MessageType::PlasmaCreateRequest, garbage.data(),
                         garbage.size()).ok());
  EXPECT_TRUE(ClosedByStore(fd));
  close(fd);
  ExpectStoreHealthy();
}

// CreateAndSeal is read in place: a frame that fails verification still
// disconnects, and one whose optional strings are absent (flatbuffers may
// leave them out) makes an empty object rather than reading nothing.
TEST_F(BadInputTest, CreateAndSealReadInPlaceChecksItsFrame) {
  int fd = RawConnect();
  std::vector<uint8_t> garbage(64, 0xff);
  ASSERT_TRUE(WriteFrame(fd, fb::MessageType::PlasmaCreateAndSealRequest, garbage.data(),
                         garbage.size()).ok());
  EXPECT_TRUE(ClosedByStore(fd));
  close(fd);

  fd = RawConnect();
  ObjectId id = ObjectId::Random();
  flatbuffers::FlatBufferBuilder builder;
  auto object_id = builder.CreateString(id.Binary());
  fb::PlasmaCreateAndSealRequestBuilder request(builder);
  request.add_object_id(object_id);  // no data, metadata or digest
  builder.Finish(request.Finish());
  ASSERT_TRUE(WriteFrame(fd, fb::MessageType::PlasmaCreateAndSealRequest,
                         builder.GetBufferPointer(), builder.GetSize()).ok());
  fb::MessageType type;
  std::vector<uint8_t> reply;
  ASSERT_TRUE(ReadFrame(fd, &type, &reply, 1 << 20).ok());
  ASSERT_EQ(type, fb::MessageType::PlasmaCreateAndSealReply);
  fb::PlasmaCreateAndSealReplyT answer;
  ASSERT_TRUE(DecodeMessage(reply.data(), reply.size(), &answer).ok());
  EXPECT_EQ(answer.error, fb::PlasmaError::OK);
  close(fd);
  auto got = good_->Get({id}, 1000);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE((*got)[0].valid());
  EXPECT_EQ((*got)[0].data_size(), 0);
  EXPECT_EQ((*got)[0].metadata_size(), 0);
  ExpectStoreHealthy();
}

TEST_F(BadInputTest, AbsurdLengthDisconnectsWithoutAllocating) {
  int fd = RawConnect();
  SendHeader(fd, 0, int64_t(fb::MessageType::PlasmaGetRequest), int64_t(1) << 60);
  EXPECT_TRUE(ClosedByStore(fd));
  close(fd);
  fd = RawConnect();
  SendHeader(fd, 0, int64_t(fb::MessageType::PlasmaGetRequest), -5);
  EXPECT_TRUE(ClosedByStore(fd));
  close(fd);
  ExpectStoreHealthy();
}

TEST_F(BadInputTest, WrongIdLengthDisconnects) {
  int fd = RawConnect();
  fb::PlasmaContainsRequestT request;
  request.object_id = "short";
  ASSERT_TRUE(WriteMessage(fd, fb::MessageType::PlasmaContainsRequest, request).ok());
  EXPECT_TRUE(ClosedByStore(fd));
  close(fd);
  ExpectStoreHealthy();
}

TEST_F(BadInputTest, ClientVanishingMidFrameLeavesStoreIntact) {
  int fd = RawConnect();
  SendHeader(fd, 0, int64_t(fb::MessageType::PlasmaCreateRequest), 1000);
  SendRaw(fd, "0123456789", 10);
  close(fd);
  ExpectStoreHealthy();
}

TEST_F(BadInputTest, StalledPartialFrameDoesNotBlockOthers) {
  int fd = RawConnect();
  SendHeader(fd, 0, int64_t(fb::MessageType::PlasmaCreateRequest), 1000);
  SendRaw(fd, "0123456789", 10);
  // The stalled client stays connected; everyone else is served meanwhile.
  ExpectStoreHealthy();
  ObjectId id = ObjectId::Random();
  EXPECT_TRUE(good_->CreateAndSeal(id, "while stalled").ok());
  close(fd);
}

TEST_F(BadInputTest, ImpossibleCreateGetsOutOfMemoryReply) {
  auto huge = good_->Create(ObjectId::Random(), int64_t(1) << 62);
  ASSERT_FALSE(huge.ok());
  EXPECT_TRUE(huge.status().IsOutOfMemory()) << huge.status().ToString();
  // Nothing was evicted to try.
  ExpectStoreHealthy();
}

TEST_F(BadInputTest, OverflowingSizesGetOutOfMemoryReply) {
  int fd = RawConnect();
  fb::PlasmaCreateRequestT request;
  request.object_id = ObjectId::Random().Binary();
  request.data_size = ~uint64_t(0) - 10;
  request.metadata_size = 100;  // data + metadata wraps around
  ASSERT_TRUE(WriteMessage(fd, fb::MessageType::PlasmaCreateRequest, request).ok());
  fb::PlasmaCreateReplyT reply;
  ASSERT_TRUE(ReadMessage(fd, fb::MessageType::PlasmaCreateReply, &reply).ok());
  EXPECT_EQ(reply.error, fb::PlasmaError::OutOfMemory);
  close(fd);
  ExpectStoreHealthy();
}

TEST_F(BadInputTest, SealAndReleaseOfObjectsNotHeldAreRefused) {
  int fd = RawConnect();
  fb::PlasmaReleaseRequestT release;
  release.object_id = witness_.Binary();  // never got it
  ASSERT_TRUE(WriteMessage(fd, fb::MessageType::PlasmaReleaseRequest, release).ok());
  fb::PlasmaSealRequestT seal;
  seal.object_id = witness_.Binary();
  seal.digest = std::string(8, 'x');
  ASSERT_TRUE(WriteMessage(fd, fb::MessageType::PlasmaSealRequest, seal).ok());
  fb::PlasmaSealReplyT reply;
  ASSERT_TRUE(ReadMessage(fd, fb::MessageType::PlasmaSealReply, &reply).ok());
  EXPECT_EQ(reply.error, fb::PlasmaError::ObjectNotFound);
  close(fd);
  ExpectStoreHealthy();
}

TEST_F(BadInputTest, SubscribeWithoutFdDisconnects) {
  int fd = RawConnect();
  ASSERT_TRUE(WriteFrame(fd, fb::MessageType::PlasmaSubscribeRequest, nullptr, 0).ok());
  SendRaw(fd, "x", 1);  // the byte arrives, but carries no descriptor
  EXPECT_TRUE(ClosedByStore(fd));
  close(fd);
  ExpectStoreHealthy();
}

TEST_F(BadInputTest, UnsolicitedFdDisconnects) {
  int fd = RawConnect();
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  ASSERT_TRUE(SendFd(fd, pipe_fds[0]).ok());
  EXPECT_TRUE(ClosedByStore(fd));
  close(fd);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  ExpectStoreHealthy();
}

TEST_F(BadInputTest, RandomFramesNeverCrashTheStore) {
  // Seeded fuzz: valid headers with random payloads for every request type.
  uint32_t state = 12345;
  auto next = [&state] {
    state = state * 1103515245u + 12345u;
    return state >> 8;
  };
  for (int round = 0; round < 300; ++round) {
    int fd = RawConnect();
    int64_t type = 1 + int64_t(next() % 35);
    std::vector<uint8_t> payload(next() % 200);
    for (auto& b : payload) b = uint8_t(next());
    // Half the time, a plausible flatbuffer root offset to get past the first check.
    if (payload.size() >= 8 && (round & 1)) payload[0] = 4, payload[1] = payload[2] = payload[3] = 0;
    ASSERT_TRUE(WriteFrame(fd, static_cast<fb::MessageType>(type), payload.data(),
                           payload.size()).ok());
    close(fd);
  }
  ExpectStoreHealthy();
}

}  // namespace
}  // namespace plasma
