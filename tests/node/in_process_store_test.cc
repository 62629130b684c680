// InProcessStore: the manager's view of a store hosted in its own process.
// Each call is checked against the store's own state: seal and delete events,
// per-object results of the batched calls, references that keep an object
// from eviction, and Abort refused while a buffer of it is held.
#include "plasma/node/in_process_store.h"

#include <cstring>

#include <gtest/gtest.h>

#include "plasma/common/digest.h"
#include "plasma/store/store.h"

namespace plasma {
namespace {

class InProcessStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loop = EventLoop::Create();
    ASSERT_TRUE(loop.ok());
    loop_ = std::move(loop).value();
    StoreOptions options;
    options.capacity = 1 << 20;
    options.directory = "";  // memfd
    auto store = Store::Create(options, loop_.get());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    local_ = std::make_unique<InProcessStore>(store_.get());
  }
  void TearDown() override {
    local_.reset();  // before the store it lives in
    store_.reset();
  }
  void Subscribe() {
    ASSERT_TRUE(local_
                    ->Subscribe([this](const std::vector<ObjectNotification>& batch) {
                      events_.insert(events_.end(), batch.begin(), batch.end());
                    },
                                [](const Status&) {})
                    .ok());
  }
  // Seals `size` bytes of `fill` under a new id in one call; returns the id.
  ObjectId PutWhole(size_t size, char fill) {
    std::string bytes(size, fill);
    ObjectId id = ObjectId::Random();
    auto stored = local_->CreateAndSealMany(
        {{id, reinterpret_cast<const uint8_t*>(bytes.data()), int64_t(size), 0, ""}});
    EXPECT_TRUE(stored[0].ok()) << stored[0].ToString();
    return id;
  }
  bool Deleted(const ObjectId& id) const {
    for (const auto& e : events_) {
      if (e.id == id && e.is_deletion) return true;
    }
    return false;
  }

  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<InProcessStore> local_;
  std::vector<ObjectNotification> events_;
};

TEST_F(InProcessStoreTest, FillThenSealAnnouncesAndServesTheObject) {
  Subscribe();
  ObjectId id = ObjectId::Random();
  auto created = local_->CreateForFillMany({{id, 5, 2}});
  ASSERT_TRUE(created[0].ok()) << created[0].status().ToString();
  std::memcpy(created[0]->data(), "hello", 5);
  std::memcpy(created[0]->metadata(), "md", 2);
  EXPECT_FALSE(*local_->Contains(id));  // not visible before the seal
  created[0]->Release();
  auto sealed = local_->SealMany({id}, {""});  // digest computed here
  ASSERT_TRUE(sealed[0].ok()) << sealed[0].ToString();
  EXPECT_TRUE(*local_->Contains(id));
  ASSERT_EQ(events_.size(), 1u);
  EXPECT_EQ(events_[0].id, id);
  EXPECT_FALSE(events_[0].is_deletion);
  EXPECT_EQ(events_[0].digest, ObjectDigest(reinterpret_cast<const uint8_t*>("hello"), 5,
                                            reinterpret_cast<const uint8_t*>("md"), 2));
  auto got = local_->Get({id, ObjectId::Random()});
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE((*got)[0].valid());
  EXPECT_FALSE((*got)[1].valid());
  EXPECT_EQ(std::string(reinterpret_cast<char*>((*got)[0].data()), 5), "hello");
  // Sealing twice, or what was never created here, is an error per object.
  auto again = local_->SealMany({id, ObjectId::Random()}, {});
  EXPECT_TRUE(again[0].IsObjectExists()) << again[0].ToString();
  EXPECT_TRUE(again[1].IsObjectNotFound()) << again[1].ToString();
}

TEST_F(InProcessStoreTest, CreateAndSealManyAnswersEachObject) {
  Subscribe();
  ObjectId existing = PutWhole(10, 'e');
  std::string bytes = "datameta";
  std::string too_big(2 << 20, 'x');
  ObjectId fresh = ObjectId::Random();
  auto stored = local_->CreateAndSealMany({
      {fresh, reinterpret_cast<const uint8_t*>(bytes.data()), 4, 4, "given-digest"},
      {existing, reinterpret_cast<const uint8_t*>(bytes.data()), 4, 0, ""},
      {ObjectId::Random(), nullptr, -1, 0, ""},
      {ObjectId::Random(), reinterpret_cast<const uint8_t*>(too_big.data()),
       int64_t(too_big.size()), 0, ""},  // more than the store holds
  });
  ASSERT_EQ(stored.size(), 4u);
  EXPECT_TRUE(stored[0].ok()) << stored[0].ToString();
  EXPECT_TRUE(stored[1].IsObjectExists()) << stored[1].ToString();
  EXPECT_EQ(stored[2].code(), StatusCode::kInvalidArgument) << stored[2].ToString();
  EXPECT_FALSE(stored[3].ok());
  EXPECT_NE(stored[3].message().find("create and seal"), std::string::npos) << stored[3].ToString();
  auto got = local_->Get({fresh});
  ASSERT_TRUE((*got)[0].valid());
  EXPECT_EQ(std::string(reinterpret_cast<char*>((*got)[0].data()), 4), "data");
  EXPECT_EQ(std::string(reinterpret_cast<char*>((*got)[0].metadata()), 4), "meta");
  ASSERT_EQ(events_.size(), 2u);  // the two sealed objects, nothing for the refused
  EXPECT_EQ(events_[1].id, fresh);
  EXPECT_EQ(events_[1].digest, "given-digest");
}

TEST_F(InProcessStoreTest, AbortWaitsForHeldBuffersAndLeavesNoTrace) {
  Subscribe();
  ObjectId id = ObjectId::Random();
  auto created = local_->CreateForFillMany({{id, 100, 0}});
  ASSERT_TRUE(created[0].ok());
  Status refused = local_->Abort(id);
  EXPECT_EQ(refused.code(), StatusCode::kInvalidArgument) << refused.ToString();
  created[0]->Release();
  EXPECT_TRUE(local_->Abort(id).ok());
  EXPECT_FALSE(*local_->Contains(id));
  EXPECT_TRUE(local_->Abort(id).IsObjectNotFound());
  EXPECT_TRUE(events_.empty());
  // The id can be created again.
  auto recreated = local_->CreateForFillMany({{id, 100, 0}});
  EXPECT_TRUE(recreated[0].ok()) << recreated[0].status().ToString();
}

// The store evicts what nobody references: an object the manager holds
// (serving it to a peer) stays, and the eviction is announced.
TEST_F(InProcessStoreTest, HeldObjectsSurviveEviction) {
  Subscribe();
  ObjectId held = PutWhole(400 << 10, 'h');
  ObjectId idle = PutWhole(400 << 10, 'i');
  auto served = local_->Get({held});
  ASSERT_TRUE((*served)[0].valid());
  auto twice = local_->Get({held});  // a second peer
  ASSERT_TRUE((*twice)[0].valid());
  (*twice)[0].Release();  // one of two references gone: still held
  // Used after that: if `held` were free now, it would be the one to go.
  auto touched = local_->Get({idle});
  (*touched)[0].Release();
  ObjectId third = PutWhole(400 << 10, 't');  // room only by evicting one
  EXPECT_TRUE(*local_->Contains(third));
  EXPECT_TRUE(*local_->Contains(held));
  EXPECT_FALSE(*local_->Contains(idle));
  EXPECT_TRUE(Deleted(idle));
  EXPECT_FALSE(Deleted(held));
  EXPECT_EQ((*served)[0].data()[0], 'h');
}

TEST_F(InProcessStoreTest, SubscribeStartsWithWhatIsAlreadySealed) {
  ObjectId before = PutWhole(64, 'b');
  Subscribe();
  ASSERT_EQ(events_.size(), 1u);
  EXPECT_EQ(events_[0].id, before);
  EXPECT_EQ(events_[0].data_size, 64);
  auto arena = local_->MapArena();
  ASSERT_TRUE(arena.ok());
  EXPECT_GE(int64_t(arena->size), local_->capacity());
}

}  // namespace
}  // namespace plasma
