// The manager-to-manager control messages: round trips, and every
// truncated or corrupted message is refused (a peer's bad bytes are errors).
#include "plasma/manager/transfer_protocol.h"

#include <gtest/gtest.h>

namespace plasma::transfer {
namespace {

TEST(TransferProtocol, TagsCarryKindAndTransfer) {
  uint64_t tag = MakeTag(MessageKind::kHeader, 12345);
  EXPECT_EQ(TagKind(tag), MessageKind::kHeader);
  EXPECT_EQ(TagTransfer(tag), 12345u);
  // One holder-side receive (mask 0xfe in the kind byte) matches PULL and FINISH only.
  uint64_t mask = uint64_t(0xfe) << kKindShift;
  uint64_t control = MakeTag(MessageKind::kPull, 0) & mask;
  EXPECT_EQ(MakeTag(MessageKind::kFinish, 9) & mask, control);
  EXPECT_NE(MakeTag(MessageKind::kHeader, 9) & mask, control);
  EXPECT_NE(MakeTag(MessageKind::kData, 9) & mask, control);
}

TEST(TransferProtocol, RoundTrips) {
  PullMessage pull{77, ObjectId::Random()};
  auto bytes = Encode(pull);
  PullMessage pull_out;
  ASSERT_TRUE(Decode(bytes.data(), bytes.size(), &pull_out).ok());
  EXPECT_EQ(pull_out.transfer, 77u);
  EXPECT_EQ(pull_out.id, pull.id);

  HeaderMessage header;
  header.transfer = 5;
  header.mode = Mode::kRendezvous;
  header.data_size = 1 << 20;
  header.metadata_size = 3;
  header.remote_address = 0x7f0000001000;
  header.rkey = std::string("\x01\x02\x00\xff", 4);
  bytes = Encode(header);
  HeaderMessage header_out;
  ASSERT_TRUE(Decode(bytes.data(), bytes.size(), &header_out).ok());
  EXPECT_EQ(header_out.transfer, 5u);
  EXPECT_EQ(header_out.mode, Mode::kRendezvous);
  EXPECT_EQ(header_out.data_size, uint64_t(1) << 20);
  EXPECT_EQ(header_out.metadata_size, 3u);
  EXPECT_EQ(header_out.remote_address, 0x7f0000001000u);
  EXPECT_EQ(header_out.rkey, header.rkey);

  FinishMessage finish{9, true};
  bytes = Encode(finish);
  FinishMessage finish_out;
  ASSERT_TRUE(Decode(bytes.data(), bytes.size(), &finish_out).ok());
  EXPECT_EQ(finish_out.transfer, 9u);
  EXPECT_TRUE(finish_out.success);
}

TEST(TransferProtocol, EveryTruncationIsRefused) {
  HeaderMessage header;
  header.rkey = "key";
  auto bytes = Encode(header);
  for (size_t n = 0; n < bytes.size(); ++n) {
    HeaderMessage out;
    EXPECT_FALSE(Decode(bytes.data(), n, &out).ok()) << n;
  }
  bytes.push_back(0);  // trailing garbage
  HeaderMessage out;
  EXPECT_FALSE(Decode(bytes.data(), bytes.size(), &out).ok());

  auto pull = Encode(PullMessage{1, ObjectId::Random()});
  for (size_t n = 0; n < pull.size(); ++n) {
    PullMessage p;
    EXPECT_FALSE(Decode(pull.data(), n, &p).ok()) << n;
  }
}

TEST(TransferProtocol, CorruptFieldsAreRefused) {
  HeaderMessage header;
  auto bytes = Encode(header);
  auto bad_version = bytes;
  bad_version[0] = 99;
  HeaderMessage out;
  EXPECT_FALSE(Decode(bad_version.data(), bad_version.size(), &out).ok());
  auto bad_mode = bytes;
  bad_mode[10] = 7;  // version(1) transfer(8) status(1) mode(1)
  EXPECT_FALSE(Decode(bad_mode.data(), bad_mode.size(), &out).ok());
  header.rkey = std::string(5000, 'k');  // larger than any key we accept
  bytes = Encode(header);
  EXPECT_FALSE(Decode(bytes.data(), bytes.size(), &out).ok());
  header.rkey.clear();
  header.data_size = ~uint64_t(0);
  bytes = Encode(header);
  EXPECT_FALSE(Decode(bytes.data(), bytes.size(), &out).ok());
}

}  // namespace
}  // namespace plasma::transfer
