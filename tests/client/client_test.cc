// plasma::Client against a real plasma-store-server: every call of the API,
// the reference counting it does on the store's behalf, and what happens when
// clients (or the store) go away.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xxhash.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <dirent.h>
#include <thread>

#include "plasma/client/client.h"
#include "plasma/common/protocol.h"
#include "tests/client/client_test_util.h"
#include "tests/common/test_util.h"

namespace plasma {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using test::PatternString;
using test::WaitFor;

std::string Xxh64Digest(const std::string& data, const std::string& metadata) {
  std::string all = data + metadata;
  uint64_t hash = XXH64(all.data(), all.size(), 0);
  std::string digest(8, '\0');
  for (int i = 0; i < 8; ++i, hash >>= 8) digest[size_t(i)] = char(hash & 0xff);
  return digest;
}

std::string DataOf(const ObjectBuffer& buffer) {
  return std::string(reinterpret_cast<const char*>(buffer.data()), size_t(buffer.data_size()));
}

std::string MetadataOf(const ObjectBuffer& buffer) {
  return std::string(reinterpret_cast<const char*>(buffer.metadata()),
                     size_t(buffer.metadata_size()));
}

int CountOpenFds() {
  int count = 0;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count - 1;  // the DIR's own fd
}

// Waits (bounded) for the next notification about `id` on a Subscribe fd.
// Notifications about other objects (e.g. the ones a new subscriber is told
// of first) are skipped.
Result<ObjectNotification> NextNotificationFor(int fd, const ObjectId& id,
                                               milliseconds timeout = milliseconds(10000)) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return Status::TimedOut("no notification for " + id.Hex());
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, int(left)) <= 0) continue;
    PLASMA_ASSIGN_OR_RETURN(auto batch, Client::ReadNotification(fd));
    for (const auto& n : batch) {
      if (n.id == id) return n;
    }
  }
}

class ClientTest : public ClientTestBase {};

// ---------------------------------------------------------------------------
// Create / Seal / Get round trips

class RoundTripTest : public ClientTestBase, public ::testing::WithParamInterface<int64_t> {
 protected:
  int64_t StoreCapacity() const override { return 256 << 20; }
};

TEST_P(RoundTripTest, CreateWriteSealGetVerifiesEveryByte) {
  const int64_t size = GetParam();
  const ObjectId id = ObjectId::Random();
  const std::string metadata = "meta:" + std::to_string(size);
  const std::string data = PatternString(size_t(size), uint64_t(size) + 1);
  {
    auto created = client_->Create(id, size, metadata);
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    ObjectBuffer buffer = std::move(created).value();
    ASSERT_TRUE(buffer.valid());
    EXPECT_EQ(buffer.id(), id);
    ASSERT_EQ(buffer.data_size(), size);
    ASSERT_EQ(buffer.metadata_size(), int64_t(metadata.size()));
    EXPECT_EQ(MetadataOf(buffer), metadata);
    if (size > 0) std::memcpy(buffer.data(), data.data(), data.size());
    ASSERT_TRUE(client_->Seal(id).ok());
    // The creator's buffer stays valid after Seal.
    EXPECT_TRUE(DataOf(buffer) == data);
  }
  // Another client sees exactly those bytes.
  auto reader = Connect();
  ASSERT_NE(reader, nullptr);
  auto got = reader->Get({id}, 0);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 1u);
  const ObjectBuffer& object = (*got)[0];
  ASSERT_TRUE(object.valid());
  ASSERT_EQ(object.data_size(), size);
  EXPECT_TRUE(DataOf(object) == data) << "data of " << size << " bytes differs";
  EXPECT_EQ(MetadataOf(object), metadata);
  // And so does the creator, through a Get of its own.
  auto again = client_->Get({id}, 0);
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE((*again)[0].valid());
  EXPECT_TRUE(DataOf((*again)[0]) == data);
}

INSTANTIATE_TEST_SUITE_P(Sizes, RoundTripTest,
                         ::testing::Values(0, 1, 4 << 10, 1 << 20, 64 << 20),
                         [](const ::testing::TestParamInfo<int64_t>& info) {
                           return "Bytes" + std::to_string(info.param);
                         });

TEST_F(ClientTest, MetadataWithoutDataAndDataWithoutMetadata) {
  ObjectId only_metadata = ObjectId::Random(), only_data = ObjectId::Random();
  ASSERT_TRUE(client_->CreateAndSeal(only_metadata, "", "just metadata").ok());
  ASSERT_TRUE(client_->CreateAndSeal(only_data, "just data", "").ok());
  auto got = client_->Get({only_metadata, only_data}, 0);
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE((*got)[0].valid());
  ASSERT_TRUE((*got)[1].valid());
  EXPECT_EQ((*got)[0].data_size(), 0);
  EXPECT_EQ(MetadataOf((*got)[0]), "just metadata");
  EXPECT_EQ(DataOf((*got)[1]), "just data");
  EXPECT_EQ((*got)[1].metadata_size(), 0);
}

TEST_F(ClientTest, CreateForFillLeavesMetadataToTheCaller) {
  ObjectId id = ObjectId::Random();
  auto created = client_->CreateForFill(id, 5, 3);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  ASSERT_EQ(created->metadata_size(), 3);
  // Data then metadata, as one contiguous block (how transfers fill it).
  EXPECT_EQ(created->metadata(), created->data() + 5);
  std::memcpy(created->data(), "hello", 5);
  std::memcpy(created->metadata(), "xyz", 3);
  ASSERT_TRUE(client_->Seal(id).ok());
  auto got = Connect()->Get({id}, 0);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(DataOf((*got)[0]), "hello");
  EXPECT_EQ(MetadataOf((*got)[0]), "xyz");
}

// The pipelined forms answer each object on its own: a failed one (exists,
// bad size, not created) leaves the others, and the stream stays in step.
TEST_F(ClientTest, CreateForFillManyAndSealManyAnswerEachObject) {
  ObjectId existing = ObjectId::Random();
  ASSERT_TRUE(client_->CreateAndSeal(existing, "x").ok());
  std::vector<FillSpec> specs;
  for (int i = 0; i < 4; ++i) specs.push_back({ObjectId::Random(), 1000 * (i + 1), i});
  specs.push_back({existing, 10, 0});
  specs.push_back({ObjectId::Random(), -5, 0});
  auto created = client_->CreateForFillMany(specs);
  ASSERT_EQ(created.size(), specs.size());
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(created[size_t(i)].ok()) << created[size_t(i)].status().ToString();
    ASSERT_EQ(created[size_t(i)]->data_size(), 1000 * (i + 1));
    ASSERT_EQ(created[size_t(i)]->metadata(), created[size_t(i)]->data() + 1000 * (i + 1));
    std::string data = PatternString(size_t(1000 * (i + 1)), uint64_t(i));
    std::memcpy(created[size_t(i)]->data(), data.data(), data.size());
    std::memset(created[size_t(i)]->metadata(), 'm', size_t(i));
  }
  EXPECT_TRUE(created[4].status().IsObjectExists()) << created[4].status().ToString();
  EXPECT_EQ(created[5].status().code(), StatusCode::kInvalidArgument);

  // Digests: given for the first two (as a puller passes the holder's on),
  // computed for the others; plus an id this client never created.
  std::vector<ObjectId> ids;
  std::vector<std::string> digests;
  for (int i = 0; i < 4; ++i) {
    ids.push_back(specs[size_t(i)].id);
    std::string data = PatternString(size_t(1000 * (i + 1)), uint64_t(i));
    digests.push_back(i < 2 ? Xxh64Digest(data, std::string(size_t(i), 'm')) : "");
  }
  ids.push_back(ObjectId::Random());
  std::vector<Status> sealed = client_->SealMany(ids, digests);
  ASSERT_EQ(sealed.size(), ids.size());
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(sealed[size_t(i)].ok()) << sealed[size_t(i)].ToString();
  EXPECT_TRUE(sealed[4].IsObjectNotFound()) << sealed[4].ToString();

  auto reader = Connect();
  for (int i = 0; i < 4; ++i) {
    std::string data = PatternString(size_t(1000 * (i + 1)), uint64_t(i));
    auto got = reader->Get({ids[size_t(i)]}, 0);
    ASSERT_TRUE(got.ok() && (*got)[0].valid());
    EXPECT_EQ(DataOf((*got)[0]), data);
    auto hash = reader->Hash(ids[size_t(i)]);
    ASSERT_TRUE(hash.ok());
    EXPECT_EQ(*hash, Xxh64Digest(data, std::string(size_t(i), 'm')));
  }
  // Still in step: an ordinary call after the pipelined ones works.
  EXPECT_TRUE(client_->CreateAndSeal(ObjectId::Random(), "after").ok());
}

// What a puller does with an object received whole: create and seal many
// at once, each answered on its own (an existing id fails alone, unlike
// the all-or-nothing batch), with the digest given or computed.
TEST_F(ClientTest, CreateAndSealManyAnswersEachObject) {
  ObjectId existing = ObjectId::Random();
  ASSERT_TRUE(client_->CreateAndSeal(existing, "x").ok());
  std::vector<std::string> bytes;  // data then metadata, as received
  for (int i = 0; i < 3; ++i) bytes.push_back(PatternString(size_t(700 * (i + 1)), uint64_t(i)) + std::string(size_t(i), 'm'));
  std::vector<WholeObject> objects;
  for (int i = 0; i < 3; ++i) {
    int64_t data_size = int64_t(bytes[size_t(i)].size()) - i;
    std::string digest = i == 0 ? Xxh64Digest(bytes[0].substr(0, size_t(data_size)), "") : "";
    objects.push_back({ObjectId::Random(), reinterpret_cast<const uint8_t*>(bytes[size_t(i)].data()),
                       data_size, i, digest});
  }
  objects.push_back({existing, reinterpret_cast<const uint8_t*>("y"), 1, 0, ""});
  objects.push_back({ObjectId::Random(), nullptr, -1, 0, ""});
  std::vector<Status> stored = client_->CreateAndSealMany(objects);
  ASSERT_EQ(stored.size(), objects.size());
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(stored[size_t(i)].ok()) << stored[size_t(i)].ToString();
  EXPECT_TRUE(stored[3].IsObjectExists()) << stored[3].ToString();
  EXPECT_EQ(stored[4].code(), StatusCode::kInvalidArgument) << stored[4].ToString();

  auto reader = Connect();
  for (int i = 0; i < 3; ++i) {
    auto got = reader->Get({objects[size_t(i)].id}, 0);
    ASSERT_TRUE(got.ok() && (*got)[0].valid());
    std::string data = bytes[size_t(i)].substr(0, bytes[size_t(i)].size() - size_t(i));
    EXPECT_EQ(DataOf((*got)[0]), data);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>((*got)[0].metadata()), size_t(i)),
              std::string(size_t(i), 'm'));
    auto hash = reader->Hash(objects[size_t(i)].id);
    ASSERT_TRUE(hash.ok());
    EXPECT_EQ(*hash, Xxh64Digest(data, std::string(size_t(i), 'm')));
  }
  auto untouched = reader->Get({existing}, 0);
  ASSERT_TRUE(untouched.ok() && (*untouched)[0].valid());
  EXPECT_EQ(DataOf((*untouched)[0]), "x");
  EXPECT_TRUE(client_->CreateAndSeal(ObjectId::Random(), "after").ok());
}

TEST_F(ClientTest, CreateOfAnExistingObjectFails) {
  ObjectId sealed = ObjectId::Random(), unsealed = ObjectId::Random();
  ASSERT_TRUE(client_->CreateAndSeal(sealed, "x").ok());
  auto pending = client_->Create(unsealed, 10);
  ASSERT_TRUE(pending.ok());
  auto other = Connect();
  auto again = other->Create(sealed, 10);
  EXPECT_TRUE(again.status().IsObjectExists()) << again.status().ToString();
  EXPECT_NE(again.status().message().find(sealed.Hex()), std::string::npos);
  EXPECT_TRUE(other->Create(unsealed, 10).status().IsObjectExists());
  EXPECT_TRUE(other->CreateAndSeal(sealed, "y").IsObjectExists());
}

TEST_F(ClientTest, CreateBiggerThanTheStoreIsOutOfMemory) {
  auto huge = client_->Create(ObjectId::Random(), StoreCapacity() * 2);
  EXPECT_TRUE(huge.status().IsOutOfMemory()) << huge.status().ToString();
  EXPECT_TRUE(client_->Create(ObjectId::Random(), -1).status().code() ==
              StatusCode::kInvalidArgument);
  // The client is still usable.
  EXPECT_TRUE(client_->CreateAndSeal(ObjectId::Random(), "fine").ok());
}

TEST_F(ClientTest, DroppingTheCreateBufferBeforeSealKeepsTheObject) {
  ObjectId id = ObjectId::Random();
  {
    auto created = client_->Create(id, 4);
    ASSERT_TRUE(created.ok());
    std::memcpy(created->data(), "keep", 4);
  }
  ASSERT_TRUE(client_->Seal(id).ok());
  auto got = Connect()->Get({id}, 0);
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE((*got)[0].valid());
  EXPECT_EQ(DataOf((*got)[0]), "keep");
  // No buffer of the creator is left, so it holds no reference any more.
  got = decltype(got)(std::vector<ObjectBuffer>{});
  EXPECT_TRUE(WaitFor([&] { return RefCount(id) == 0; }));
}

TEST_F(ClientTest, SealTwiceOrWithoutCreateFails) {
  ObjectId id = ObjectId::Random();
  auto created = client_->Create(id, 1);
  ASSERT_TRUE(created.ok());
  ASSERT_TRUE(client_->Seal(id).ok());
  EXPECT_TRUE(client_->Seal(id).IsObjectExists());
  EXPECT_TRUE(client_->Seal(ObjectId::Random()).IsObjectNotFound());
  // Another client cannot seal what this one created.
  ObjectId pending = ObjectId::Random();
  auto pending_buffer = client_->Create(pending, 1);
  ASSERT_TRUE(pending_buffer.ok());
  EXPECT_TRUE(Connect()->Seal(pending).IsObjectNotFound());
}

// ---------------------------------------------------------------------------
// Get and its timeouts

TEST_F(ClientTest, GetWithZeroTimeoutReturnsAtOnceMarkingMissingObjects) {
  ObjectId present = ObjectId::Random(), missing = ObjectId::Random();
  ASSERT_TRUE(client_->CreateAndSeal(present, "here").ok());
  auto got = Connect()->Get({present, missing, present}, 0);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 3u);
  EXPECT_TRUE((*got)[0].valid());
  EXPECT_FALSE((*got)[1].valid());
  EXPECT_EQ((*got)[1].data(), nullptr);
  EXPECT_TRUE((*got)[2].valid());
  EXPECT_EQ(DataOf((*got)[2]), "here");
}

TEST_F(ClientTest, GetWithPositiveTimeoutGivesUpAfterIt) {
  auto start = Clock::now();
  auto got = client_->Get({ObjectId::Random()}, 300);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_FALSE((*got)[0].valid());
  EXPECT_GE(Clock::now() - start, milliseconds(250));
}

TEST_F(ClientTest, GetWakesUpWhenAnotherClientSeals) {
  for (int64_t timeout : {int64_t(60000), int64_t(-1)}) {
    ObjectId id = ObjectId::Random();
    std::atomic<bool> returned{false};
    Result<std::vector<ObjectBuffer>> got = Status::Internal("not run");
    std::thread waiter([&] {
      got = client_->Get({id}, timeout);
      returned = true;
    });
    std::this_thread::sleep_for(milliseconds(200));
    EXPECT_FALSE(returned.load());
    auto writer = Connect();
    auto created = writer->Create(id, 6, "m");
    ASSERT_TRUE(created.ok());
    std::memcpy(created->data(), "wakeup", 6);
    ASSERT_TRUE(writer->Seal(id).ok());
    EXPECT_TRUE(WaitFor([&] { return returned.load(); }, milliseconds(30000)))
        << "Get(timeout " << timeout << ") did not wake up on seal";
    if (!returned) {
      // Unblock the waiter for a clean failure: kill the store.
      ASSERT_TRUE(store_->Kill9().ok());
    }
    waiter.join();
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_TRUE((*got)[0].valid());
    EXPECT_EQ(DataOf((*got)[0]), "wakeup");
    EXPECT_EQ(MetadataOf((*got)[0]), "m");
  }
}

TEST_F(ClientTest, GetOfOwnUnsealedObjectNeverDeadlocks) {
  ObjectId id = ObjectId::Random();
  auto created = client_->Create(id, 3);
  ASSERT_TRUE(created.ok());
  auto forever = client_->Get({id}, -1);
  EXPECT_EQ(forever.status().code(), StatusCode::kInvalidArgument) << forever.status().ToString();
  auto now = client_->Get({id}, 0);
  ASSERT_TRUE(now.ok()) << now.status().ToString();
  EXPECT_FALSE((*now)[0].valid());
  EXPECT_EQ(client_->Get({id}, -7).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(ClientTest, GetManyObjectsAtOnce) {
  std::vector<ObjectId> ids;
  for (int i = 0; i < 200; ++i) {
    ids.push_back(ObjectId::Random());
    ASSERT_TRUE(client_->CreateAndSeal(ids.back(), PatternString(100 + i, i)).ok());
  }
  auto reader = Connect();
  auto got = reader->Get(ids, 1000);
  ASSERT_TRUE(got.ok());
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE((*got)[i].valid());
    EXPECT_EQ(DataOf((*got)[i]), PatternString(100 + i, i));
  }
}

// ---------------------------------------------------------------------------
// Contains, Delete, Abort

TEST_F(ClientTest, ContainsOnlySealedObjects) {
  ObjectId id = ObjectId::Random();
  auto other = Connect();
  EXPECT_FALSE(*client_->Contains(id));
  auto created = client_->Create(id, 2);
  ASSERT_TRUE(created.ok());
  EXPECT_FALSE(*client_->Contains(id));
  EXPECT_FALSE(*other->Contains(id));
  ASSERT_TRUE(client_->Seal(id).ok());
  EXPECT_TRUE(*client_->Contains(id));
  EXPECT_TRUE(*other->Contains(id));
  created = ObjectBuffer();
  // Round trip on the releasing connection: the release is handled before the delete.
  EXPECT_EQ(RefCount(id), 0);
  ASSERT_TRUE(other->Delete(id).ok());
  EXPECT_FALSE(*client_->Contains(id));
  EXPECT_FALSE(*other->Contains(id));
}

TEST_F(ClientTest, DeleteReportsNotFoundInUseAndNotSealed) {
  EXPECT_TRUE(client_->Delete(ObjectId::Random()).IsObjectNotFound());

  ObjectId held = ObjectId::Random();
  ASSERT_TRUE(client_->CreateAndSeal(held, "held").ok());
  auto reader = Connect();
  auto got = reader->Get({held}, 0);
  ASSERT_TRUE(got.ok() && (*got)[0].valid());
  Status in_use = client_->Delete(held);
  EXPECT_EQ(in_use.code(), StatusCode::kObjectInUse) << in_use.ToString();
  // Still readable while held; deleted once the last reference goes.
  EXPECT_EQ(DataOf((*got)[0]), "held");
  got = decltype(got)(std::vector<ObjectBuffer>{});
  EXPECT_TRUE(WaitFor([&] { return !*client_->Contains(held); }));

  ObjectId unsealed = ObjectId::Random();
  auto created = client_->Create(unsealed, 1);
  ASSERT_TRUE(created.ok());
  Status not_sealed = reader->Delete(unsealed);
  EXPECT_EQ(not_sealed.code(), StatusCode::kObjectNotSealed) << not_sealed.ToString();
}

TEST_F(ClientTest, DeleteRemovesAnUnusedObject) {
  ObjectId id = ObjectId::Random();
  ASSERT_TRUE(client_->CreateAndSeal(id, "bye").ok());
  ASSERT_TRUE(client_->Delete(id).ok());
  EXPECT_FALSE(*client_->Contains(id));
  auto got = client_->Get({id}, 0);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE((*got)[0].valid());
  // The id is free again.
  EXPECT_TRUE(client_->CreateAndSeal(id, "again").ok());
}

TEST_F(ClientTest, DeleteManyReportsEachObject) {
  ObjectId a = ObjectId::Random(), b = ObjectId::Random(), missing = ObjectId::Random();
  ASSERT_TRUE(client_->CreateAndSeal(a, "a").ok());
  ASSERT_TRUE(client_->CreateAndSeal(b, "b").ok());
  std::vector<Status> results;
  ASSERT_TRUE(client_->Delete({a, missing, b}, &results).ok());
  ASSERT_EQ(results.size(), 3u);
  EXPECT_TRUE(results[0].ok());
  EXPECT_TRUE(results[1].IsObjectNotFound());
  EXPECT_NE(results[1].message().find(missing.Hex()), std::string::npos);
  EXPECT_TRUE(results[2].ok());
  EXPECT_TRUE(client_->Delete({}, &results).ok());
  EXPECT_TRUE(results.empty());
}

TEST_F(ClientTest, AbortDiscardsAnUnsealedObject) {
  ObjectId id = ObjectId::Random();
  auto created = client_->Create(id, 100, "meta");
  ASSERT_TRUE(created.ok());
  // Live buffers would dangle: refused.
  Status busy = client_->Abort(id);
  EXPECT_EQ(busy.code(), StatusCode::kInvalidArgument) << busy.ToString();
  created->Release();
  ASSERT_TRUE(client_->Abort(id).ok());
  EXPECT_FALSE(*client_->Contains(id));
  auto objects = client_->List();
  ASSERT_TRUE(objects.ok());
  for (const auto& info : *objects) EXPECT_NE(info.id, id);
  // Gone for good: the id can be created again, and abort again is an error.
  EXPECT_TRUE(client_->Abort(id).IsObjectNotFound());
  auto again = client_->Create(id, 10);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
}

TEST_F(ClientTest, AbortOfSealedOrForeignObjectsFails) {
  ObjectId sealed = ObjectId::Random();
  ASSERT_TRUE(client_->CreateAndSeal(sealed, "s").ok());
  EXPECT_FALSE(client_->Abort(sealed).ok());
  ObjectId mine = ObjectId::Random();
  {
    auto created = client_->Create(mine, 1);
    ASSERT_TRUE(created.ok());
  }
  auto other = Connect();
  EXPECT_TRUE(other->Abort(mine).IsObjectNotFound());
  // Untouched by the failed abort: the creator can still seal it.
  EXPECT_TRUE(client_->Seal(mine).ok());
}

// ---------------------------------------------------------------------------
// CreateAndSeal, batches, hashes

TEST_F(ClientTest, CreateAndSealStoresDataMetadataAndDigest) {
  ObjectId id = ObjectId::Random();
  std::string data = PatternString(5000, 9), metadata = "format=raw";
  ASSERT_TRUE(client_->CreateAndSeal(id, data, metadata).ok());
  // CreateAndSeal holds no reference afterwards.
  EXPECT_EQ(RefCount(id), 0);
  auto got = Connect()->Get({id}, 0);
  ASSERT_TRUE(got.ok() && (*got)[0].valid());
  EXPECT_TRUE(DataOf((*got)[0]) == data);
  EXPECT_EQ(MetadataOf((*got)[0]), metadata);
  auto hash = client_->Hash(id);
  ASSERT_TRUE(hash.ok()) << hash.status().ToString();
  EXPECT_EQ(*hash, Xxh64Digest(data, metadata));
}

TEST_F(ClientTest, SealRecordsTheXxh64OfDataThenMetadata) {
  ObjectId id = ObjectId::Random();
  std::string data = PatternString(3 << 20, 4), metadata = "md";
  auto created = client_->Create(id, int64_t(data.size()), metadata);
  ASSERT_TRUE(created.ok());
  std::memcpy(created->data(), data.data(), data.size());
  ASSERT_TRUE(client_->Seal(id).ok());
  auto hash = Connect()->Hash(id);
  ASSERT_TRUE(hash.ok());
  EXPECT_EQ(*hash, Xxh64Digest(data, metadata));
  EXPECT_TRUE(client_->Hash(ObjectId::Random()).status().IsObjectNotFound());
  ObjectId unsealed = ObjectId::Random();
  auto pending = client_->Create(unsealed, 1);
  ASSERT_TRUE(pending.ok());
  EXPECT_EQ(client_->Hash(unsealed).status().code(), StatusCode::kObjectNotSealed);
}

TEST_F(ClientTest, CreateAndSealBatchIsAllOrNothing) {
  std::vector<ObjectId> ids;
  std::vector<std::string> data, metadata;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(ObjectId::Random());
    data.push_back(PatternString(1000 * i, i));
    metadata.push_back("m" + std::to_string(i));
  }
  ASSERT_TRUE(client_->CreateAndSealBatch(ids, data, metadata).ok());
  auto got = Connect()->Get(ids, 0);
  ASSERT_TRUE(got.ok());
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_TRUE((*got)[i].valid());
    EXPECT_TRUE(DataOf((*got)[i]) == data[i]);
    EXPECT_EQ(MetadataOf((*got)[i]), metadata[i]);
    auto hash = client_->Hash(ids[i]);
    ASSERT_TRUE(hash.ok());
    EXPECT_EQ(*hash, Xxh64Digest(data[i], metadata[i]));
  }

  // One existing id fails the batch, and none of the new ones appear.
  ObjectId fresh1 = ObjectId::Random(), fresh2 = ObjectId::Random();
  Status clash = client_->CreateAndSealBatch({fresh1, ids[2], fresh2}, {"1", "2", "3"},
                                             {"", "", ""});
  EXPECT_TRUE(clash.IsObjectExists()) << clash.ToString();
  EXPECT_FALSE(*client_->Contains(fresh1));
  EXPECT_FALSE(*client_->Contains(fresh2));

  Status mismatched = client_->CreateAndSealBatch({fresh1, fresh2}, {"1"}, {"", ""});
  EXPECT_EQ(mismatched.code(), StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------
// List, Evict, Refresh, options, debug string

TEST_F(ClientTest, ListDescribesEveryObject) {
  ObjectId held = ObjectId::Random(), idle = ObjectId::Random(), pending = ObjectId::Random();
  int64_t before = int64_t(std::time(nullptr));
  ASSERT_TRUE(client_->CreateAndSeal(held, "12345", "mm").ok());
  ASSERT_TRUE(client_->CreateAndSeal(idle, "1").ok());
  auto reader = Connect();
  auto got = reader->Get({held}, 0);
  ASSERT_TRUE(got.ok());
  auto created = client_->Create(pending, 7, "abc");
  ASSERT_TRUE(created.ok());

  auto objects = client_->List();
  ASSERT_TRUE(objects.ok()) << objects.status().ToString();
  ASSERT_EQ(objects->size(), 3u);
  for (const ObjectInfo& info : *objects) {
    EXPECT_GE(info.create_time, before - 1);
    EXPECT_LE(info.create_time, int64_t(std::time(nullptr)) + 1);
    if (info.id == held) {
      EXPECT_EQ(info.data_size, 5);
      EXPECT_EQ(info.metadata_size, 2);
      EXPECT_EQ(info.ref_count, 1);
      EXPECT_TRUE(info.sealed);
      EXPECT_EQ(info.digest, Xxh64Digest("12345", "mm"));
      EXPECT_GE(info.construct_duration, 0);
    } else if (info.id == idle) {
      EXPECT_EQ(info.ref_count, 0);
      EXPECT_TRUE(info.sealed);
    } else {
      EXPECT_EQ(info.id, pending);
      EXPECT_EQ(info.data_size, 7);
      EXPECT_EQ(info.metadata_size, 3);
      EXPECT_EQ(info.ref_count, 1);  // its creator
      EXPECT_FALSE(info.sealed);
      EXPECT_TRUE(info.digest.empty());
      EXPECT_EQ(info.construct_duration, -1);
    }
  }
}

TEST_F(ClientTest, EvictFreesUnreferencedSealedObjectsOnly) {
  const int64_t size = 1 << 20;
  std::vector<ObjectId> idle;
  for (int i = 0; i < 4; ++i) {
    idle.push_back(ObjectId::Random());
    ASSERT_TRUE(client_->CreateAndSeal(idle.back(), std::string(size_t(size), char('a' + i))).ok());
  }
  ObjectId held = ObjectId::Random();
  ASSERT_TRUE(client_->CreateAndSeal(held, std::string(size_t(size), 'h')).ok());
  auto got = client_->Get({held}, 0);
  ASSERT_TRUE(got.ok() && (*got)[0].valid());

  auto freed = client_->Evict(2 * size);
  ASSERT_TRUE(freed.ok()) << freed.status().ToString();
  EXPECT_GE(*freed, 2 * size);
  int gone = 0;
  for (const auto& id : idle) gone += *client_->Contains(id) ? 0 : 1;
  EXPECT_GE(gone, 2);
  EXPECT_TRUE(*client_->Contains(held));

  // Asking for everything frees only what is not in use.
  freed = client_->Evict(StoreCapacity());
  ASSERT_TRUE(freed.ok());
  for (const auto& id : idle) EXPECT_FALSE(*client_->Contains(id));
  EXPECT_TRUE(*client_->Contains(held));
  EXPECT_EQ(DataOf((*got)[0]), std::string(size_t(size), 'h'));
  EXPECT_EQ(client_->Evict(-1).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(ClientTest, RefreshMovesObjectsToTheEndOfTheEvictionOrder) {
  ObjectId a = ObjectId::Random(), b = ObjectId::Random(), c = ObjectId::Random();
  for (const auto& id : {a, b, c}) ASSERT_TRUE(client_->CreateAndSeal(id, "0123456789").ok());
  ASSERT_TRUE(client_->Refresh({a}).ok());
  auto freed = client_->Evict(1);  // the least recently used one: now b
  ASSERT_TRUE(freed.ok());
  EXPECT_TRUE(*client_->Contains(a));
  EXPECT_FALSE(*client_->Contains(b));
  EXPECT_TRUE(*client_->Contains(c));
  EXPECT_TRUE(client_->Refresh({}).ok());
}

TEST_F(ClientTest, SetClientOptionsAcceptsOneReasonableQuota) {
  ASSERT_TRUE(client_->SetClientOptions("writer", 1 << 20).ok());
  Status twice = client_->SetClientOptions("writer", 1 << 20);
  EXPECT_TRUE(twice.IsOutOfMemory()) << twice.ToString();
  auto greedy = Connect();
  Status too_much = greedy->SetClientOptions("greedy", StoreCapacity() * 9 / 10);
  EXPECT_TRUE(too_much.IsOutOfMemory()) << too_much.ToString();
  // A client with a quota still creates objects within it.
  EXPECT_TRUE(client_->CreateAndSeal(ObjectId::Random(), std::string(1000, 'q')).ok());
}

TEST_F(ClientTest, DebugStringDescribesTheStore) {
  ASSERT_TRUE(client_->CreateAndSeal(ObjectId::Random(), "x").ok());
  auto debug = client_->DebugString();
  ASSERT_TRUE(debug.ok()) << debug.status().ToString();
  EXPECT_FALSE(debug->empty());
}

TEST_F(ClientTest, MemoryCapacityComesFromTheStore) {
  EXPECT_GT(client_->memory_capacity(), 0);
  EXPECT_LE(client_->memory_capacity(), StoreCapacity());
}

TEST_F(ClientTest, MapArenaCoversEveryObject) {
  auto fresh = Connect();
  auto region = fresh->MapArena();
  ASSERT_TRUE(region.ok()) << region.status().ToString();
  EXPECT_NE(region->base, nullptr);
  EXPECT_GE(int64_t(region->size), fresh->memory_capacity());
  // It left nothing behind in the store.
  auto objects = fresh->List();
  ASSERT_TRUE(objects.ok());
  EXPECT_TRUE(objects->empty());
  ObjectId id = ObjectId::Random();
  ASSERT_TRUE(client_->CreateAndSeal(id, std::string(10000, 'a'), "mm").ok());
  auto got = fresh->Get({id}, 0);
  ASSERT_TRUE(got.ok() && (*got)[0].valid());
  const uint8_t* start = (*got)[0].data();
  EXPECT_GE(start, region->base);
  EXPECT_LE(start + 10000 + 2, region->base + region->size);
  auto again = fresh->MapArena();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->base, region->base);
}

// ---------------------------------------------------------------------------
// Subscribe

TEST_F(ClientTest, SubscribersHearOfSealsAndDeletions) {
  ObjectId existing = ObjectId::Random();
  ASSERT_TRUE(client_->CreateAndSeal(existing, "old").ok());
  auto subscriber = Connect();
  auto fd = subscriber->Subscribe();
  ASSERT_TRUE(fd.ok()) << fd.status().ToString();

  ObjectId id = ObjectId::Random();
  auto created = client_->Create(id, 100, "1234567");
  ASSERT_TRUE(created.ok());
  ASSERT_TRUE(client_->Seal(id).ok());
  auto sealed = NextNotificationFor(*fd, id);
  ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
  EXPECT_FALSE(sealed->is_deletion);
  EXPECT_EQ(sealed->data_size, 100);
  EXPECT_EQ(sealed->metadata_size, 7);

  created = ObjectBuffer();
  ASSERT_TRUE(client_->Delete(id).ok());
  auto deleted = NextNotificationFor(*fd, id);
  ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();
  EXPECT_TRUE(deleted->is_deletion);

  ObjectId evicted = ObjectId::Random();
  ASSERT_TRUE(client_->CreateAndSeal(evicted, "e").ok());
  ASSERT_TRUE(NextNotificationFor(*fd, evicted).ok());
  ASSERT_TRUE(client_->Evict(StoreCapacity()).ok());
  auto eviction = NextNotificationFor(*fd, evicted);
  ASSERT_TRUE(eviction.ok()) << eviction.status().ToString();
  EXPECT_TRUE(eviction->is_deletion);
  close(*fd);
  // The subscriber's store connection is unaffected.
  EXPECT_TRUE(subscriber->Contains(existing).ok());
}

TEST_F(ClientTest, ReadNotificationRejectsGarbage) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  int64_t negative = -5;
  ASSERT_EQ(write(fds[1], &negative, sizeof(negative)), ssize_t(sizeof(negative)));
  auto bad_size = Client::ReadNotification(fds[0]);
  EXPECT_EQ(bad_size.status().code(), StatusCode::kProtocolError);

  int64_t size = 16;
  uint8_t junk[16];
  std::memset(junk, 0xee, sizeof(junk));
  ASSERT_EQ(write(fds[1], &size, sizeof(size)), ssize_t(sizeof(size)));
  ASSERT_EQ(write(fds[1], junk, sizeof(junk)), ssize_t(sizeof(junk)));
  auto bad_payload = Client::ReadNotification(fds[0]);
  EXPECT_EQ(bad_payload.status().code(), StatusCode::kProtocolError);

  close(fds[1]);
  auto closed = Client::ReadNotification(fds[0]);
  EXPECT_TRUE(closed.status().IsIOError()) << closed.status().ToString();
  close(fds[0]);
}

// ---------------------------------------------------------------------------
// References: buffers release themselves

TEST_F(ClientTest, BuffersReleaseTheirReferenceWhenDestroyed) {
  ObjectId id = ObjectId::Random();
  ASSERT_TRUE(client_->CreateAndSeal(id, "refcounted").ok());
  auto reader = Connect();
  {
    auto first = reader->Get({id}, 0);
    auto second = reader->Get({id}, 0);
    ASSERT_TRUE(first.ok() && second.ok());
    // The store counts one reference per client, however many buffers.
    EXPECT_EQ(RefCount(id), 1);
    ObjectBuffer moved = std::move((*first)[0]);
    EXPECT_FALSE((*first)[0].valid());
    EXPECT_TRUE(moved.valid());
    moved.Release();
    EXPECT_FALSE(moved.valid());
    EXPECT_EQ(RefCount(id), 1);  // `second` still holds it
    EXPECT_EQ(reader->Delete(id).code(), StatusCode::kObjectInUse);
  }
  // Deferred by the in-use delete above; gone once the last buffer went.
  EXPECT_TRUE(WaitFor([&] { return !*client_->Contains(id); }));

  ObjectId again = ObjectId::Random();
  ASSERT_TRUE(client_->CreateAndSeal(again, "x").ok());
  {
    auto got = reader->Get({again}, 0);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(RefCount(again), 1);
  }
  EXPECT_EQ(RefCount(again, reader), 0);
  EXPECT_TRUE(client_->Delete(again).ok());
}

TEST_F(ClientTest, BuffersOutliveTheirClient) {
  ObjectId id = ObjectId::Random();
  ASSERT_TRUE(client_->CreateAndSeal(id, "survivor").ok());
  ObjectBuffer buffer;
  {
    auto reader = Connect();
    auto got = reader->Get({id}, 0);
    ASSERT_TRUE(got.ok());
    buffer = std::move((*got)[0]);
  }
  // The Client is gone; its connection lives on for the buffer.
  EXPECT_EQ(DataOf(buffer), "survivor");
  EXPECT_EQ(RefCount(id), 1);
  buffer = ObjectBuffer();
  EXPECT_TRUE(WaitFor([&] { return RefCount(id) == 0; }));
}

TEST_F(ClientTest, NoFileDescriptorLeaks) {
  // Warm up: the first mapping of this client.
  ASSERT_TRUE(client_->CreateAndSeal(ObjectId::Random(), "warm").ok());
  { auto warm = client_->Create(ObjectId::Random(), 1); }
  int before = CountOpenFds();
  for (int i = 0; i < 50; ++i) {
    ObjectId id = ObjectId::Random();
    auto created = client_->Create(id, 1000);
    ASSERT_TRUE(created.ok());
    ASSERT_TRUE(client_->Seal(id).ok());
    auto got = client_->Get({id}, 0);
    ASSERT_TRUE(got.ok());
  }
  for (int i = 0; i < 10; ++i) {
    auto other = Connect();
    auto got = other->Get({ObjectId::Random()}, 0);
    ASSERT_TRUE(got.ok());
  }
  EXPECT_EQ(CountOpenFds(), before);
}

// ---------------------------------------------------------------------------
// Threads

TEST_F(ClientTest, OneClientIsSafeToShareBetweenThreads) {
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        ObjectId id = ObjectId::Random();
        std::string data = PatternString(size_t(100 + i * 37), uint64_t(t * 1000 + i));
        auto created = client_->Create(id, int64_t(data.size()), "t");
        if (!created.ok()) {
          ++failures;
          continue;
        }
        std::memcpy(created->data(), data.data(), data.size());
        if (!client_->Seal(id).ok()) ++failures;
        created = ObjectBuffer();
        auto got = client_->Get({id}, 1000);
        if (!got.ok() || !(*got)[0].valid() || DataOf((*got)[0]) != data) ++failures;
        got = decltype(got)(std::vector<ObjectBuffer>{});
        if (!client_->Delete(id).ok()) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  auto objects = client_->List();
  ASSERT_TRUE(objects.ok());
  EXPECT_TRUE(objects->empty());
}

TEST_F(ClientTest, ReleasingDoesNotWaitForAnotherThreadsGet) {
  ObjectId held = ObjectId::Random();
  ASSERT_TRUE(client_->CreateAndSeal(held, "h").ok());
  auto got = client_->Get({held}, 0);
  ASSERT_TRUE(got.ok());
  std::atomic<bool> get_returned{false};
  std::thread waiter([&] {
    auto missing = client_->Get({ObjectId::Random()}, 3000);
    EXPECT_TRUE(missing.ok());
    get_returned = true;
  });
  std::this_thread::sleep_for(milliseconds(200));
  got = decltype(got)(std::vector<ObjectBuffer>{});  // releases while the Get waits
  bool released_during_get = !get_returned.load();
  waiter.join();
  EXPECT_TRUE(released_during_get);
  EXPECT_EQ(RefCount(held), 0);
}

TEST_F(ClientTest, DisconnectEndsAGetWaitingInAnotherThread) {
  auto waiting = Connect();
  std::atomic<bool> returned{false};
  Status outcome;
  std::thread waiter([&] {
    outcome = waiting->Get({ObjectId::Random()}, -1).status();
    returned = true;
  });
  std::this_thread::sleep_for(milliseconds(200));
  ASSERT_TRUE(waiting->Disconnect().ok());
  waiter.join();
  EXPECT_TRUE(returned.load());
  EXPECT_TRUE(outcome.IsIOError()) << outcome.ToString();
  EXPECT_NE(outcome.message().find("disconnected"), std::string::npos) << outcome.ToString();
}

// ---------------------------------------------------------------------------
// Clients going away

TEST_F(ClientTest, DisconnectingWithAnUnsealedObjectMakesItVanish) {
  ObjectId id = ObjectId::Random();
  auto creator = Connect();
  auto created = creator->Create(id, 1000);
  ASSERT_TRUE(created.ok());
  ASSERT_TRUE(creator->Disconnect().ok());
  EXPECT_TRUE(WaitFor([&] { return !ListContains(id); }));
  // Its id is free: never sealed, never visible.
  EXPECT_TRUE(client_->CreateAndSeal(id, "mine now").ok());
  // The dead client fails cleanly; its stale buffer releases quietly.
  EXPECT_TRUE(creator->Seal(id).IsIOError());
  EXPECT_TRUE(creator->Contains(id).status().IsIOError());
  created = ObjectBuffer();
  EXPECT_TRUE(creator->Disconnect().ok());
}

TEST_F(ClientTest, DisconnectingDropsHeldReferences) {
  ObjectId id = ObjectId::Random();
  ASSERT_TRUE(client_->CreateAndSeal(id, "held").ok());
  auto reader = Connect();
  auto got = reader->Get({id}, 0);
  ASSERT_TRUE(got.ok() && (*got)[0].valid());
  EXPECT_EQ(RefCount(id), 1);
  ASSERT_TRUE(reader->Disconnect().ok());
  EXPECT_TRUE(WaitFor([&] { return RefCount(id) == 0; }));
  EXPECT_TRUE(client_->Delete(id).ok());
  // The buffer's memory stays mapped (no crash reading it), and it releases quietly.
  volatile uint8_t first = (*got)[0].data()[0];
  (void)first;
  got = decltype(got)(std::vector<ObjectBuffer>{});
}

TEST_F(ClientTest, AKilledClientProcessLosesItsObjectsAndReferences) {
  ObjectId unsealed = ObjectId::Random(), held = ObjectId::Random();
  ASSERT_TRUE(client_->CreateAndSeal(held, "held").ok());
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(ready[0]);
    auto c = Client::Connect(store_->socket());
    if (!c.ok()) _exit(2);
    auto created = (*c)->Create(unsealed, 100);
    auto got = (*c)->Get({held}, 0);
    if (!created.ok() || !got.ok() || !(*got)[0].valid()) _exit(3);
    (void)!write(ready[1], "r", 1);
    pause();  // until killed
    _exit(0);
  }
  close(ready[1]);
  char byte;
  ASSERT_EQ(read(ready[0], &byte, 1), 1);
  close(ready[0]);
  EXPECT_TRUE(ListContains(unsealed));
  EXPECT_EQ(RefCount(held), 1);
  kill(child, SIGKILL);
  int status;
  waitpid(child, &status, 0);
  EXPECT_TRUE(WaitFor([&] { return !ListContains(unsealed) && RefCount(held) == 0; }));
}

TEST_F(ClientTest, ManyClientProcessesCreateAndGetConcurrently) {
  constexpr int kProcesses = 8;
  constexpr int kObjectsEach = 16;
  auto id_of = [](int process, int k) {
    std::string binary(ObjectId::kSize, '\0');
    std::snprintf(&binary[0], binary.size(), "proc%02d-obj%03d", process, k);
    return *ObjectId::FromBinary(binary);
  };
  auto data_of = [](int process, int k) {
    return PatternString(size_t(1000 + 997 * k + 13 * process), uint64_t(process * 100 + k));
  };
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      // The child: its own client; only _exit codes report back.
      auto c = Client::Connect(store_->socket());
      if (!c.ok()) _exit(10);
      std::shared_ptr<Client> client = *c;
      for (int k = 0; k < kObjectsEach; ++k) {
        std::string data = data_of(p, k);
        auto created = client->Create(id_of(p, k), int64_t(data.size()), "p" + std::to_string(p));
        if (!created.ok()) _exit(11);
        std::memcpy(created->data(), data.data(), data.size());
        if (!client->Seal(id_of(p, k)).ok()) _exit(12);
      }
      for (int other = 0; other < kProcesses; ++other) {
        std::vector<ObjectId> ids;
        for (int k = 0; k < kObjectsEach; ++k) ids.push_back(id_of(other, k));
        auto got = client->Get(ids, 60000);
        if (!got.ok()) _exit(13);
        for (int k = 0; k < kObjectsEach; ++k) {
          const ObjectBuffer& b = (*got)[size_t(k)];
          if (!b.valid()) _exit(14);
          if (DataOf(b) != data_of(other, k)) _exit(15);
          if (MetadataOf(b) != "p" + std::to_string(other)) _exit(16);
        }
      }
      _exit(0);
    }
    children.push_back(pid);
  }
  auto deadline = Clock::now() + std::chrono::seconds(120);
  for (pid_t pid : children) {
    int status = -1;
    while (waitpid(pid, &status, WNOHANG) == 0) {
      if (Clock::now() > deadline) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        ADD_FAILURE() << "client process " << pid << " did not finish in time";
        break;
      }
      std::this_thread::sleep_for(milliseconds(10));
    }
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "client process failed with status " << status << " (exit codes: 10 connect, "
        << "11 create, 12 seal, 13 get, 14 missing, 15 data, 16 metadata)";
  }
  auto objects = client_->List();
  ASSERT_TRUE(objects.ok());
  EXPECT_EQ(objects->size(), size_t(kProcesses * kObjectsEach));
  for (const auto& info : *objects) {
    EXPECT_TRUE(info.sealed);
    EXPECT_EQ(info.ref_count, 0);  // every process has exited
  }
}

// ---------------------------------------------------------------------------
// The store going away, connecting, Fetch

TEST_F(ClientTest, AStoreThatDiesYieldsErrorsNotCrashes) {
  ObjectId id = ObjectId::Random();
  ASSERT_TRUE(client_->CreateAndSeal(id, "before").ok());
  auto got = client_->Get({id}, 0);
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(store_->Kill9().ok());
  EXPECT_FALSE(client_->Contains(ObjectId::Random()).ok());
  EXPECT_FALSE(client_->Get({ObjectId::Random()}, 0).ok());
  EXPECT_FALSE(client_->CreateAndSeal(ObjectId::Random(), "x").ok());
  Status listed = client_->List().status();
  EXPECT_TRUE(listed.IsIOError()) << listed.ToString();
  // What was mapped stays readable.
  EXPECT_EQ(DataOf((*got)[0]), "before");
  got = decltype(got)(std::vector<ObjectBuffer>{});

  ASSERT_TRUE(store_->Restart().ok());
  auto fresh = Connect();
  ASSERT_NE(fresh, nullptr);
  EXPECT_FALSE(*fresh->Contains(id));  // a new store starts empty
  EXPECT_TRUE(fresh->CreateAndSeal(id, "after").ok());
}

TEST_F(ClientTest, ConnectingToNothingFailsNamingTheSocket) {
  ConnectOptions options;
  options.connect_attempts = 2;
  auto client = Client::Connect(store_->dir() + "/no-such.sock", options);
  ASSERT_FALSE(client.ok());
  EXPECT_TRUE(client.status().IsIOError());
  EXPECT_NE(client.status().message().find("no-such.sock"), std::string::npos)
      << client.status().ToString();
}

TEST_F(ClientTest, FetchNeedsTheManager) {
  ObjectId id = ObjectId::Random();
  Status no_manager = client_->Fetch({id}, 100);
  EXPECT_EQ(no_manager.code(), StatusCode::kUnavailable) << no_manager.ToString();
  ConnectOptions options;
  options.manager_socket = store_->dir() + "/manager.sock";
  auto with_manager = Client::Connect(store_->socket(), options);
  ASSERT_TRUE(with_manager.ok());
  // No manager listens there: the error says so and names the socket.
  Status unreachable = (*with_manager)->Fetch({id}, 100);
  EXPECT_EQ(unreachable.code(), StatusCode::kUnavailable) << unreachable.ToString();
  EXPECT_NE(unreachable.message().find(options.manager_socket), std::string::npos)
      << unreachable.ToString();
}

// A store whose arena lies on huge pages (hugetlbfs) serves clients like any
// other: they map the file through the fd they are passed, at huge-page
// granularity. Skips where no hugetlbfs mount with free pages exists.
TEST(HugePageStoreTest, ClientsCreateSealAndGetObjects) {
  std::string mount = test::HugetlbfsMount();
  if (mount.empty()) GTEST_SKIP() << "no writable hugetlbfs mount";
  auto store = StoreProcess::Start(8 << 20, {"-h", "-d", mount});
  if (!store.ok() && store.status().message().find("huge pages reserved") != std::string::npos) {
    GTEST_SKIP() << "no free huge pages: " << store.status().ToString();
  }
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto writer = Client::Connect((*store)->socket());
  auto reader = Client::Connect((*store)->socket());
  ASSERT_TRUE(writer.ok() && reader.ok());
  for (size_t size : {size_t(1), size_t(3 << 20), size_t(2 << 20)}) {
    ObjectId id = ObjectId::Random();
    std::string data = PatternString(size, size);
    auto created = (*writer)->Create(id, int64_t(size), "hp");
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    std::memcpy(created->data(), data.data(), size);
    ASSERT_TRUE((*writer)->Seal(id).ok());
    auto got = (*reader)->Get({id}, 0);
    ASSERT_TRUE(got.ok() && (*got)[0].valid()) << size;
    EXPECT_EQ(DataOf((*got)[0]), data) << size;
    EXPECT_EQ(MetadataOf((*got)[0]), "hp");
  }
  EXPECT_NE((*store)->ReadLog().find("huge pages"), std::string::npos) << (*store)->ReadLog();
}

// A manager that accepts the request but never answers (hung): Fetch gives
// up a grace period after its own timeout, with an error, instead of hanging.
TEST_F(ClientTest, FetchFromAHungManagerTimesOut) {
  ConnectOptions options;
  options.manager_socket = store_->dir() + "/silent-manager.sock";
  auto listener = ListenUnixSocket(options.manager_socket);
  ASSERT_TRUE(listener.ok()) << listener.status().ToString();
  auto client = Client::Connect(store_->socket(), options);
  ASSERT_TRUE(client.ok());
  Status fetched = (*client)->Fetch({ObjectId::Random()}, 100);
  EXPECT_TRUE(fetched.IsTimedOut()) << fetched.ToString();
  EXPECT_NE(fetched.message().find("did not answer"), std::string::npos) << fetched.ToString();
  close(*listener);
}

}  // namespace
}  // namespace plasma
