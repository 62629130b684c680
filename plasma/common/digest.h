// The object digest every store records at seal time: xxh64 (seed 0) of the
// data then the metadata, 8 bytes little-endian (Plasma 11's layout).
#pragma once

#include <cstdint>
#include <string>

namespace plasma {

std::string ObjectDigest(const uint8_t* data, int64_t data_size, const uint8_t* metadata,
                         int64_t metadata_size);

}  // namespace plasma
