#include "plasma/manager/control_buffers.h"

#include "plasma/common/logging.h"

namespace plasma {

namespace {
constexpr size_t kSmallestClass = 4096;
// A slab is at least this large (and holds at least one buffer).
constexpr size_t kSlabBytes = 256 * 1024;

size_t ClassSize(int size_class) { return kSmallestClass << size_class; }
int ClassFor(size_t size) {
  int size_class = 0;
  while (ClassSize(size_class) < size) ++size_class;
  return size_class;
}
}  // namespace

ControlBuffer::~ControlBuffer() {
  if (pool_ != nullptr) pool_->GiveBack(size_class_, data_, mem_);
}

ControlBuffer& ControlBuffer::operator=(ControlBuffer&& other) noexcept {
  if (this == &other) return *this;
  if (pool_ != nullptr) pool_->GiveBack(size_class_, data_, mem_);
  pool_ = other.pool_;
  data_ = other.data_;
  capacity_ = other.capacity_;
  mem_ = other.mem_;
  size_class_ = other.size_class_;
  other.pool_ = nullptr;
  other.data_ = nullptr;
  other.capacity_ = 0;
  other.mem_ = nullptr;
  return *this;
}

ControlBufferPool::ControlBufferPool(const plasma_tp_v1_t* ops, plasma_tp_context_t context,
                                     size_t max_size)
    : ops_(ops), context_(context), max_size_(max_size), free_(ClassFor(max_size) + 1) {}

ControlBufferPool::~ControlBufferPool() {
  for (Slab& slab : slabs_) {
    if (slab.mem != nullptr) ops_->mem_deregister(context_, slab.mem);
  }
}

Result<ControlBuffer> ControlBufferPool::Acquire(size_t size) {
  if (size > max_size_) {
    return Status::InvalidArgument("control buffer of " + std::to_string(size) +
                                   " bytes asked for; the largest is " + std::to_string(max_size_));
  }
  int size_class = ClassFor(size);
  auto& free = free_[size_class];
  if (free.empty()) {
    size_t buffer_size = ClassSize(size_class);
    size_t count = std::max<size_t>(1, kSlabBytes / buffer_size);
    Slab slab;
    slab.memory.reset(new (std::nothrow) uint8_t[buffer_size * count]);
    if (!slab.memory) return Status::OutOfMemory("no memory for control buffers");
    int rc = ops_->mem_register(context_, slab.memory.get(), buffer_size * count,
                                PLASMA_TP_ACCESS_LOCAL, &slab.mem);
    if (rc != PLASMA_TP_OK) {
      return Status::IOError(std::string("register control buffers: ") + ops_->strerror(rc));
    }
    for (size_t i = 0; i < count; ++i) free.push_back({slab.memory.get() + i * buffer_size, slab.mem});
    slabs_.push_back(std::move(slab));
  }
  ControlBuffer buffer;
  buffer.pool_ = this;
  buffer.data_ = free.back().data;
  buffer.mem_ = free.back().mem;
  buffer.capacity_ = ClassSize(size_class);
  buffer.size_class_ = size_class;
  free.pop_back();
  return buffer;
}

void ControlBufferPool::GiveBack(int size_class, uint8_t* data, plasma_tp_mem_t mem) {
  free_[size_class].push_back({data, mem});
}

}  // namespace plasma
