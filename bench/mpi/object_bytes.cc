#include "bench/mpi/object_bytes.h"

#include <cstring>

namespace plasma::mpibench {

namespace {

// splitmix64 of the word index, keyed by the id: cheap, and every 8-byte
// word differs, so a shifted, repeated or foreign block is caught.
inline uint64_t Word(uint64_t key, uint64_t index) {
  uint64_t z = key + (index + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t Key(const ObjectId& id) {
  uint64_t key;
  std::memcpy(&key, id.data(), sizeof(key));
  return key;
}

}  // namespace

void FillObject(const ObjectId& id, uint8_t* data, size_t size) {
  const uint64_t key = Key(id);
  size_t words = size / 8;
  for (size_t i = 0; i < words; ++i) {
    uint64_t word = Word(key, i);
    std::memcpy(data + i * 8, &word, 8);
  }
  uint64_t tail = Word(key, words);
  std::memcpy(data + words * 8, &tail, size % 8);
}

size_t FirstWrongByte(const ObjectId& id, const uint8_t* data, size_t size) {
  const uint64_t key = Key(id);
  size_t words = size / 8;
  for (size_t i = 0; i < words; ++i) {
    uint64_t word = Word(key, i);
    if (std::memcmp(data + i * 8, &word, 8) != 0) {
      for (size_t b = 0; b < 8; ++b) {
        if (data[i * 8 + b] != reinterpret_cast<const uint8_t*>(&word)[b]) return i * 8 + b;
      }
    }
  }
  uint64_t tail = Word(key, words);
  for (size_t b = 0; b < size % 8; ++b) {
    if (data[words * 8 + b] != reinterpret_cast<const uint8_t*>(&tail)[b]) return words * 8 + b;
  }
  return size;
}

}  // namespace plasma::mpibench
