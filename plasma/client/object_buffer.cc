// ObjectBuffer: a mapped object and the reference the client holds on it.
#include "plasma/client/client_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

namespace plasma {

using client_internal::Prefixed;

// ---------------------------------------------------------------------------
// ObjectBuffer

ObjectBuffer::~ObjectBuffer() { Release(); }

ObjectBuffer::ObjectBuffer(ObjectBuffer&& other) noexcept { *this = std::move(other); }

ObjectBuffer& ObjectBuffer::operator=(ObjectBuffer&& other) noexcept {
  if (this != &other) {
    Release();
    impl_ = std::move(other.impl_);
    id_ = other.id_;
    data_ = other.data_;
    data_size_ = other.data_size_;
    metadata_ = other.metadata_;
    metadata_size_ = other.metadata_size_;
    other.impl_.reset();
    other.data_ = other.metadata_ = nullptr;
    other.data_size_ = other.metadata_size_ = 0;
  }
  return *this;
}

void ObjectBuffer::Release() {
  if (impl_ != nullptr) {
    // Keep the impl (and so the mapping) alive until the release is sent.
    std::shared_ptr<ClientImpl> impl = std::move(impl_);
    impl->ReleaseObject(id_);
  }
  data_ = metadata_ = nullptr;
  data_size_ = metadata_size_ = 0;
}

}  // namespace plasma
