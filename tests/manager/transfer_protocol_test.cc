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
  // Tags stay inside the host's 48 bits; the control mask is a prefix mask.
  EXPECT_EQ(tag & ~uint64_t(PLASMA_TP_TAG_EXACT), 0u);
  EXPECT_EQ(MakeTag(MessageKind::kFinish, ~uint64_t(0)) & ~uint64_t(PLASMA_TP_TAG_EXACT), 0u);
  EXPECT_TRUE(plasma_tp_tag_mask_valid(kControlMask));
  // One holder-side receive matches PULL and FINISH only.
  uint64_t control = MakeTag(MessageKind::kPull, 0) & kControlMask;
  EXPECT_EQ(MakeTag(MessageKind::kFinish, 9) & kControlMask, control);
  EXPECT_EQ(MakeTag(MessageKind::kPull, 9) & kControlMask, control);
  EXPECT_NE(MakeTag(MessageKind::kHeader, 9) & kControlMask, control);
}

TEST(TransferProtocol, InlineHeaderCarriesTheObject) {
  HeaderMessage header;
  header.transfer = 3;
  header.mode = Mode::kInline;
  header.data_size = 5;
  header.metadata_size = 2;
  header.digest = "12345678";
  const uint8_t object[7] = {1, 2, 3, 4, 5, 6, 7};
  std::vector<uint8_t> message(EncodedSize(header) + 7);
  ASSERT_EQ(EncodeInline(header, object, message.data(), message.size()), message.size());
  HeaderMessage out;
  ASSERT_TRUE(Decode(message.data(), message.size(), &out).ok());
  ASSERT_NE(out.inline_bytes, nullptr);
  EXPECT_EQ(std::vector<uint8_t>(out.inline_bytes, out.inline_bytes + 7),
            std::vector<uint8_t>(object, object + 7));
  EXPECT_EQ(out.digest, header.digest);
  // Too small a buffer: nothing written.
  EXPECT_EQ(EncodeInline(header, object, message.data(), message.size() - 1), 0u);
  // One byte short or long of the sizes the header names: refused.
  EXPECT_FALSE(Decode(message.data(), message.size() - 1, &out).ok());
  message.push_back(0);
  EXPECT_FALSE(Decode(message.data(), message.size(), &out).ok());
  // A rendezvous or failed HEADER carries no bytes.
  header.mode = Mode::kRendezvous;
  auto rendezvous = Encode(header);
  ASSERT_TRUE(Decode(rendezvous.data(), rendezvous.size(), &out).ok());
  EXPECT_EQ(out.inline_bytes, nullptr);
  EXPECT_EQ(rendezvous.size(), EncodedSize(header));
  header.status = HeaderStatus::kBusy;
  auto busy = Encode(header);
  ASSERT_TRUE(Decode(busy.data(), busy.size(), &out).ok());
  EXPECT_EQ(out.status, HeaderStatus::kBusy);
}

TEST(TransferProtocol, RoundTrips) {
  PullMessage pull{77, ObjectId::Random(), 65536};
  auto bytes = Encode(pull);
  PullMessage pull_out;
  ASSERT_TRUE(Decode(bytes.data(), bytes.size(), &pull_out).ok());
  EXPECT_EQ(pull_out.transfer, 77u);
  EXPECT_EQ(pull_out.max_inline_message, 65536u);
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

  PullMessage push{78, ObjectId::Random(), 65536, 300000, 131072};
  bytes = Encode(push);
  ASSERT_TRUE(Decode(bytes.data(), bytes.size(), &pull_out).ok());
  EXPECT_EQ(pull_out.push_size, 300000u);
  EXPECT_EQ(pull_out.push_chunk, 131072u);
  EXPECT_EQ(PushChunks(pull_out.push_size, pull_out.push_chunk), 3u);

  HeaderMessage pushed;
  pushed.transfer = 78;
  pushed.mode = Mode::kPushed;
  pushed.data_size = 300000;
  pushed.digest = std::string(8, 'd');
  bytes = Encode(pushed);
  ASSERT_TRUE(Decode(bytes.data(), bytes.size(), &header_out).ok());
  EXPECT_EQ(header_out.mode, Mode::kPushed);
  EXPECT_EQ(header_out.inline_bytes, nullptr);  // the bytes come as DATA messages
  HeaderMessage mismatch;
  mismatch.status = HeaderStatus::kSizeMismatch;
  bytes = Encode(mismatch);
  ASSERT_TRUE(Decode(bytes.data(), bytes.size(), &header_out).ok());
  EXPECT_EQ(header_out.status, HeaderStatus::kSizeMismatch);

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

  auto pull = Encode(PullMessage{1, ObjectId::Random(), 0});
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
  auto bad_status = Encode(HeaderMessage());
  bad_status[9] = uint8_t(HeaderStatus::kSizeMismatch) + 1;
  EXPECT_FALSE(Decode(bad_status.data(), bad_status.size(), &out).ok());

  // A push needs its chunk size: the holder could not tell the pieces.
  auto no_chunk = Encode(PullMessage{1, ObjectId::Random(), 0, 300000, 0});
  PullMessage pull;
  EXPECT_FALSE(Decode(no_chunk.data(), no_chunk.size(), &pull).ok());
}

}  // namespace
}  // namespace plasma::transfer
