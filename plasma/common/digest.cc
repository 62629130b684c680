#include "plasma/common/digest.h"

#define XXH_STATIC_LINKING_ONLY  // XXH64_state_t on the stack
#include <xxhash.h>

#include "plasma/common/protocol.h"

namespace plasma {

std::string ObjectDigest(const uint8_t* data, int64_t data_size, const uint8_t* metadata,
                         int64_t metadata_size) {
  XXH64_state_t state;
  XXH64_reset(&state, 0);
  if (data_size > 0) XXH64_update(&state, data, size_t(data_size));
  if (metadata_size > 0) XXH64_update(&state, metadata, size_t(metadata_size));
  uint64_t hash = XXH64_digest(&state);
  std::string digest(kDigestSize, '\0');
  for (size_t i = 0; i < kDigestSize; ++i, hash >>= 8) digest[i] = char(hash & 0xff);
  return digest;
}

}  // namespace plasma
