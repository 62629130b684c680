// The manager's location cache: what it answers after adds, removals and
// node departures, and that it stays within its bound, oldest use first out.
#include "plasma/manager/location_cache.h"

#include <gtest/gtest.h>

namespace plasma {
namespace {

using Nodes = std::vector<std::string>;

TEST(LocationCache, AnswersWhatItWasTold) {
  LocationCache cache(8);
  ObjectId a = ObjectId::Random(), b = ObjectId::Random();
  EXPECT_EQ(cache.Holders(a), Nodes{});
  cache.Add(a, "node1");
  cache.Add(a, "node3");
  cache.Add(a, "node1");  // announced again: once, and now the latest
  cache.Add(b, "node2");
  EXPECT_EQ(cache.Holders(a), (Nodes{"node3", "node1"}));
  EXPECT_EQ(cache.Holders(b), Nodes{"node2"});
  EXPECT_EQ(cache.size(), 2u);
}

TEST(LocationCache, RemovalsAndDepartedNodes) {
  LocationCache cache(8);
  ObjectId a = ObjectId::Random(), b = ObjectId::Random(), c = ObjectId::Random();
  cache.Add(a, "node1");
  cache.Add(a, "node2");
  cache.Add(b, "node1");
  cache.Add(c, "node2");
  cache.Remove(a, "node2");
  cache.Remove(a, "node9");  // never a holder: nothing changes
  EXPECT_EQ(cache.Holders(a), Nodes{"node1"});
  cache.Remove(b, "node1");  // the last holder gone: the entry goes
  EXPECT_EQ(cache.Holders(b), Nodes{});
  EXPECT_EQ(cache.size(), 2u);
  cache.RemoveNode("node1");
  EXPECT_EQ(cache.Holders(a), Nodes{});
  EXPECT_EQ(cache.Holders(c), Nodes{"node2"});
  cache.Drop(c);
  EXPECT_EQ(cache.size(), 0u);
  cache.Add(a, "node4");
  cache.Clear();
  EXPECT_EQ(cache.Holders(a), Nodes{});
  // Still usable after a clear.
  cache.Add(a, "node5");
  EXPECT_EQ(cache.Holders(a), Nodes{"node5"});
}

TEST(LocationCache, EvictsTheLeastRecentlyUsed) {
  LocationCache cache(3);
  std::vector<ObjectId> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(ObjectId::Random());
  cache.Add(ids[0], "n");
  cache.Add(ids[1], "n");
  cache.Add(ids[2], "n");
  cache.Holders(ids[0]);   // used: ids[1] is now the oldest
  cache.Add(ids[3], "n");  // over the bound
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.Holders(ids[1]), Nodes{});
  EXPECT_EQ(cache.Holders(ids[0]), Nodes{"n"});
  EXPECT_EQ(cache.Holders(ids[2]), Nodes{"n"});
  EXPECT_EQ(cache.Holders(ids[3]), Nodes{"n"});
  // Many more than the bound: never over it.
  for (int i = 0; i < 100; ++i) cache.Add(ObjectId::Random(), "m");
  EXPECT_EQ(cache.size(), 3u);
}

// Announcements carry sizes; a lookup's answer (no sizes) keeps them, a
// newer announcement replaces them, and they leave with the entry.
TEST(LocationCache, KeepsTheAnnouncedSizes) {
  LocationCache cache(8);
  ObjectId a = ObjectId::Random();
  EXPECT_FALSE(cache.Sizes(a).has_value());
  cache.Add(a, "node1");
  EXPECT_FALSE(cache.Sizes(a).has_value());
  cache.Add(a, "node1", ObjectSizes{300000, 7});
  ASSERT_TRUE(cache.Sizes(a).has_value());
  EXPECT_EQ(cache.Sizes(a)->total(), 300007u);
  cache.Add(a, "node3");
  EXPECT_EQ(*cache.Sizes(a), (ObjectSizes{300000, 7}));
  cache.Add(a, "node3", ObjectSizes{5, 0});
  EXPECT_EQ(*cache.Sizes(a), (ObjectSizes{5, 0}));
  cache.Remove(a, "node1");
  cache.Remove(a, "node3");
  EXPECT_FALSE(cache.Sizes(a).has_value());
  cache.Add(a, "node1", ObjectSizes{1, 1});
  cache.Drop(a);
  EXPECT_FALSE(cache.Sizes(a).has_value());
}

TEST(LocationCache, CapacityZeroKeepsNothing) {
  LocationCache cache(0);
  ObjectId a = ObjectId::Random();
  cache.Add(a, "node1");
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.Holders(a), Nodes{});
}

}  // namespace
}  // namespace plasma
