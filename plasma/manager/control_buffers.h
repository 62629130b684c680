// ControlBufferPool: the host memory the manager sends control messages from
// and receives them into (PULL, FINISH, HEADER, inline objects). Buffers come
// in power-of-two classes and are carved from slabs registered once with
// the plugin, so a plugin that requires registered memory
// (PLASMA_TP_PROP_REGISTRATION_REQUIRED) gets it for every message, and no
// message costs a registration. Freed buffers are kept for reuse: the pool
// holds the peak it was asked for, no more.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "plasma/common/status.h"
#include "transport/plasma_transport.h"

namespace plasma {

class ControlBufferPool;

// One buffer on loan; returns itself to the pool when destroyed.
class ControlBuffer {
 public:
  ControlBuffer() = default;
  ~ControlBuffer();
  ControlBuffer(ControlBuffer&& other) noexcept { *this = std::move(other); }
  ControlBuffer& operator=(ControlBuffer&& other) noexcept;
  ControlBuffer(const ControlBuffer&) = delete;
  ControlBuffer& operator=(const ControlBuffer&) = delete;

  uint8_t* data() const { return data_; }
  size_t capacity() const { return capacity_; }
  plasma_tp_mem_t mem() const { return mem_; }
  bool valid() const { return data_ != nullptr; }

 private:
  friend class ControlBufferPool;
  ControlBufferPool* pool_ = nullptr;
  uint8_t* data_ = nullptr;
  size_t capacity_ = 0;
  plasma_tp_mem_t mem_ = nullptr;
  int size_class_ = 0;
};

class ControlBufferPool {
 public:
  // max_size: the largest buffer ever asked for.
  ControlBufferPool(const plasma_tp_v1_t* ops, plasma_tp_context_t context, size_t max_size);
  ~ControlBufferPool();  // deregisters every slab: all buffers must be back
  ControlBufferPool(const ControlBufferPool&) = delete;
  ControlBufferPool& operator=(const ControlBufferPool&) = delete;

  // A buffer of at least `size` bytes (size <= max_size).
  Result<ControlBuffer> Acquire(size_t size);

 private:
  friend class ControlBuffer;
  struct Slab {
    std::unique_ptr<uint8_t[]> memory;
    plasma_tp_mem_t mem = nullptr;
  };
  struct FreeBuffer {
    uint8_t* data;
    plasma_tp_mem_t mem;
  };
  void GiveBack(int size_class, uint8_t* data, plasma_tp_mem_t mem);

  const plasma_tp_v1_t* ops_;
  plasma_tp_context_t context_;
  size_t max_size_;
  std::vector<Slab> slabs_;
  std::vector<std::vector<FreeBuffer>> free_;  // per size class
};

}  // namespace plasma
