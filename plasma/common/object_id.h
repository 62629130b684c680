// ObjectId: the 20-byte object identifier of the Plasma protocol.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>

#include "plasma/common/status.h"

namespace plasma {

class ObjectId {
 public:
  static constexpr size_t kSize = 20;

  ObjectId() { bytes_.fill(0); }
  // Exactly kSize raw bytes, as carried on the wire.
  static Result<ObjectId> FromBinary(std::string_view binary);
  // 40 hex digits, as printed by Hex() and the CLI.
  static Result<ObjectId> FromHex(std::string_view hex);
  // Random id from the system's entropy source.
  static ObjectId Random();

  std::string Binary() const { return std::string(reinterpret_cast<const char*>(bytes_.data()), kSize); }
  std::string Hex() const;
  const uint8_t* data() const { return bytes_.data(); }

  bool operator==(const ObjectId& o) const { return bytes_ == o.bytes_; }
  bool operator!=(const ObjectId& o) const { return !(*this == o); }
  bool operator<(const ObjectId& o) const { return bytes_ < o.bytes_; }
  size_t Hash() const {
    size_t h;
    std::memcpy(&h, bytes_.data(), sizeof(h));  // ids are random: any 8 bytes hash well
    return h;
  }

 private:
  std::array<uint8_t, kSize> bytes_;
};

}  // namespace plasma

template <>
struct std::hash<plasma::ObjectId> {
  size_t operator()(const plasma::ObjectId& id) const { return id.Hash(); }
};
