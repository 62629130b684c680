#include "plasma/manager/transfer_protocol.h"

#include <cstring>

namespace plasma::transfer {

namespace {

// 2: inline objects travel in the HEADER (1 sent a separate DATA message).
// 3: PULL asks for a push (size and chunk), HEADER can say kPushed.
constexpr uint8_t kWireVersion = 3;

class Writer {
 public:
  void U8(uint8_t v) { bytes_.push_back(v); }
  void U64(uint64_t v) {
    for (int i = 0; i < 8; ++i, v >>= 8) bytes_.push_back(uint8_t(v));
  }
  void Bytes(const void* data, size_t size) {
    auto* p = static_cast<const uint8_t*>(data);
    bytes_.insert(bytes_.end(), p, p + size);
  }
  std::vector<uint8_t> Take() { return std::move(bytes_); }
  size_t size() const { return bytes_.size(); }

 private:
  std::vector<uint8_t> bytes_;
};

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool U8(uint8_t* v) {
    if (size_ - offset_ < 1) return false;
    *v = data_[offset_++];
    return true;
  }
  bool U64(uint64_t* v) {
    if (size_ - offset_ < 8) return false;
    *v = 0;
    for (int i = 7; i >= 0; --i) *v = *v << 8 | data_[offset_ + i];
    offset_ += 8;
    return true;
  }
  bool Bytes(size_t n, std::string* out) {
    if (size_ - offset_ < n) return false;
    out->assign(reinterpret_cast<const char*>(data_ + offset_), n);
    offset_ += n;
    return true;
  }
  bool AtEnd() const { return offset_ == size_; }
  size_t offset() const { return offset_; }
  size_t remaining() const { return size_ - offset_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t offset_ = 0;
};

Status Truncated(const char* what) {
  return Status::ProtocolError(std::string("malformed transfer ") + what + " message");
}

bool ReadVersion(Reader& reader) {
  uint8_t version;
  return reader.U8(&version) && version == kWireVersion;
}

}  // namespace

std::vector<uint8_t> Encode(const PullMessage& message) {
  Writer w;
  w.U8(kWireVersion);
  w.U64(message.transfer);
  w.Bytes(message.id.data(), ObjectId::kSize);
  w.U64(message.max_inline_message);
  w.U64(message.push_size);
  w.U64(message.push_chunk);
  return w.Take();
}

std::vector<uint8_t> Encode(const FinishMessage& message) {
  Writer w;
  w.U8(kWireVersion);
  w.U64(message.transfer);
  w.U8(message.success ? 1 : 0);
  return w.Take();
}

std::vector<uint8_t> Encode(const HeaderMessage& message) {
  Writer w;
  w.U8(kWireVersion);
  w.U64(message.transfer);
  w.U8(uint8_t(message.status));
  w.U8(uint8_t(message.mode));
  w.U64(message.data_size);
  w.U64(message.metadata_size);
  w.U64(message.remote_address);
  w.U64(message.rkey.size());
  w.Bytes(message.rkey.data(), message.rkey.size());
  w.U64(message.digest.size());
  w.Bytes(message.digest.data(), message.digest.size());
  return w.Take();
}

size_t EncodedSize(const HeaderMessage& message) {
  return 1 + 8 + 1 + 1 + 8 * 3 + 8 + message.rkey.size() + 8 + message.digest.size();
}

size_t EncodeInline(const HeaderMessage& message, const uint8_t* object, uint8_t* out,
                    size_t capacity) {
  std::vector<uint8_t> header = Encode(message);
  uint64_t total = message.total_size();
  if (total > capacity || header.size() > capacity - total) return 0;
  std::memcpy(out, header.data(), header.size());
  if (total > 0) std::memcpy(out + header.size(), object, total);
  return header.size() + total;
}

Status Decode(const uint8_t* data, size_t size, PullMessage* out) {
  Reader r(data, size);
  std::string id;
  if (!ReadVersion(r) || !r.U64(&out->transfer) || !r.Bytes(ObjectId::kSize, &id) ||
      !r.U64(&out->max_inline_message) || !r.U64(&out->push_size) ||
      !r.U64(&out->push_chunk) || !r.AtEnd()) {
    return Truncated("pull");
  }
  if (out->push_size > 0 && out->push_chunk == 0) {
    return Status::ProtocolError("transfer pull asks for a push without a chunk size");
  }
  out->id = *ObjectId::FromBinary(id);
  return Status::OK();
}

Status Decode(const uint8_t* data, size_t size, FinishMessage* out) {
  Reader r(data, size);
  uint8_t success;
  if (!ReadVersion(r) || !r.U64(&out->transfer) || !r.U8(&success) || !r.AtEnd()) {
    return Truncated("finish");
  }
  out->success = success != 0;
  return Status::OK();
}

Status Decode(const uint8_t* data, size_t size, HeaderMessage* out) {
  Reader r(data, size);
  uint8_t status, mode;
  uint64_t rkey_size, digest_size;
  if (!ReadVersion(r) || !r.U64(&out->transfer) || !r.U8(&status) || !r.U8(&mode) ||
      !r.U64(&out->data_size) || !r.U64(&out->metadata_size) || !r.U64(&out->remote_address) ||
      !r.U64(&rkey_size) || rkey_size > kMaxRkeySize ||
      !r.Bytes(size_t(rkey_size), &out->rkey) || !r.U64(&digest_size) ||
      digest_size > kMaxDigestSize || !r.Bytes(size_t(digest_size), &out->digest)) {
    return Truncated("header");
  }
  if (status > uint8_t(HeaderStatus::kSizeMismatch) ||
      (mode != uint8_t(Mode::kInline) && mode != uint8_t(Mode::kRendezvous) &&
       mode != uint8_t(Mode::kPushed))) {
    return Status::ProtocolError("transfer header with unknown status or mode");
  }
  out->status = HeaderStatus(status);
  out->mode = Mode(mode);
  if (out->data_size > (uint64_t(1) << 62) || out->metadata_size > (uint64_t(1) << 62)) {
    return Status::ProtocolError("transfer header with absurd object size");
  }
  out->inline_bytes = nullptr;
  bool carries_bytes = out->status == HeaderStatus::kOk && out->mode == Mode::kInline;
  if (!carries_bytes) {
    if (!r.AtEnd()) return Truncated("header");
    return Status::OK();
  }
  if (r.remaining() != out->total_size()) {
    return Status::ProtocolError("inline transfer header carries " + std::to_string(r.remaining()) +
                                 " bytes for an object of " + std::to_string(out->total_size()));
  }
  out->inline_bytes = data + r.offset();
  return Status::OK();
}

}  // namespace plasma::transfer
