#include "plasma/common/object_id.h"

#include <random>

namespace plasma {

Result<ObjectId> ObjectId::FromBinary(std::string_view binary) {
  if (binary.size() != kSize) {
    return Status::InvalidArgument("object id must be " + std::to_string(kSize) +
                                   " bytes, got " + std::to_string(binary.size()));
  }
  ObjectId id;
  std::memcpy(id.bytes_.data(), binary.data(), kSize);
  return id;
}

static int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<ObjectId> ObjectId::FromHex(std::string_view hex) {
  if (hex.size() != 2 * kSize) {
    return Status::InvalidArgument("object id '" + std::string(hex) + "' must be " +
                                   std::to_string(2 * kSize) + " hex digits");
  }
  ObjectId id;
  for (size_t i = 0; i < kSize; ++i) {
    int hi = HexValue(hex[2 * i]), lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return Status::InvalidArgument("object id '" + std::string(hex) + "' is not hexadecimal");
    }
    id.bytes_[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return id;
}

ObjectId ObjectId::Random() {
  thread_local std::mt19937_64 engine(std::random_device{}());
  ObjectId id;
  for (size_t i = 0; i < kSize; i += 4) {
    uint32_t word = static_cast<uint32_t>(engine());
    std::memcpy(id.bytes_.data() + i, &word, 4);
  }
  return id;
}

std::string ObjectId::Hex() const {
  static const char kDigits[] = "0123456789abcdef";
  std::string out(2 * kSize, '0');
  for (size_t i = 0; i < kSize; ++i) {
    out[2 * i] = kDigits[bytes_[i] >> 4];
    out[2 * i + 1] = kDigits[bytes_[i] & 0xf];
  }
  return out;
}

}  // namespace plasma
