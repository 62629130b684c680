// Fuzzes the manager-to-manager transfer protocol decoders
// (plasma/manager/transfer_protocol.h: Decode of PullMessage, FinishMessage,
// HeaderMessage). Their bytes arrive from another node through the
// transport, so a hostile or broken peer controls every one of them.
//
// Only the public Encode/EncodeInline/EncodedSize/Decode functions are
// called. Each input is decoded as all three messages. For every successful
// decode the message is re-encoded (a HEADER carrying its object's bytes
// with EncodeInline) and decoded again: that must succeed with the same
// fields and inline bytes, and encoding is then a fixed point
// (encode(decode(encode(m))) == encode(m)), which also covers fields this
// target does not name.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "plasma/manager/transfer_protocol.h"

namespace {

namespace transfer = plasma::transfer;

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "transfer_protocol_fuzzer: %s\n", what);
  std::abort();
}

bool SameFields(const transfer::PullMessage& a, const transfer::PullMessage& b) {
  return a.transfer == b.transfer && a.id == b.id && a.max_inline_message == b.max_inline_message;
}
bool SameFields(const transfer::FinishMessage& a, const transfer::FinishMessage& b) {
  return a.transfer == b.transfer && a.success == b.success;
}
bool SameFields(const transfer::HeaderMessage& a, const transfer::HeaderMessage& b) {
  if (a.transfer != b.transfer || a.status != b.status || a.mode != b.mode ||
      a.data_size != b.data_size || a.metadata_size != b.metadata_size ||
      a.remote_address != b.remote_address || a.rkey != b.rkey || a.digest != b.digest ||
      (a.inline_bytes == nullptr) != (b.inline_bytes == nullptr)) {
    return false;
  }
  return a.inline_bytes == nullptr ||
         std::memcmp(a.inline_bytes, b.inline_bytes, a.total_size()) == 0;
}

std::vector<uint8_t> Reencode(const transfer::PullMessage& m) { return transfer::Encode(m); }
std::vector<uint8_t> Reencode(const transfer::FinishMessage& m) { return transfer::Encode(m); }
// A HEADER that carries its object goes out through EncodeInline.
std::vector<uint8_t> Reencode(const transfer::HeaderMessage& m) {
  std::vector<uint8_t> plain = transfer::Encode(m);
  if (plain.size() != transfer::EncodedSize(m)) Fail("header: EncodedSize differs from Encode");
  if (m.inline_bytes == nullptr) return plain;
  // Decode checked that total_size() bytes follow the header in the input.
  size_t capacity = plain.size() + size_t(m.total_size());
  std::vector<uint8_t> out(capacity);
  size_t written = transfer::EncodeInline(m, m.inline_bytes, out.data(), capacity);
  if (written != capacity) Fail("header: EncodeInline did not fill exactly its message size");
  if (transfer::EncodeInline(m, m.inline_bytes, out.data(), capacity - 1) != 0) {
    Fail("header: EncodeInline wrote past a too small buffer");
  }
  return out;
}

template <typename Message>
void Check(const uint8_t* data, size_t size, const char* name) {
  Message decoded;
  if (!transfer::Decode(data, size, &decoded).ok()) return;
  std::vector<uint8_t> first = Reencode(decoded);
  Message again;
  if (!transfer::Decode(first.data(), first.size(), &again).ok()) {
    std::fprintf(stderr, "%s: ", name);
    Fail("a re-encoded message does not decode");
  }
  if (!SameFields(decoded, again)) {
    std::fprintf(stderr, "%s: ", name);
    Fail("a message changed in a round trip");
  }
  if (Reencode(again) != first) {
    std::fprintf(stderr, "%s: ", name);
    Fail("encoding is not a fixed point");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Check<transfer::PullMessage>(data, size, "pull");
  Check<transfer::FinishMessage>(data, size, "finish");
  Check<transfer::HeaderMessage>(data, size, "header");
  return 0;
}
