// plasma::Client: the public face of ClientImpl (client_impl.h); every call
// is handed on.
#include "plasma/client/client.h"

#include "plasma/client/client_impl.h"

namespace plasma {

Client::Client(std::shared_ptr<ClientImpl> impl) : impl_(std::move(impl)) {}

// Buffers still alive keep the connection (and their references) until they go.
Client::~Client() = default;

Result<std::shared_ptr<Client>> Client::Connect(const std::string& store_socket,
                                                const ConnectOptions& options) {
  auto impl = std::make_shared<ClientImpl>(store_socket, options);
  PLASMA_RETURN_NOT_OK(impl->Connect());
  return std::shared_ptr<Client>(new Client(std::move(impl)));
}

int64_t Client::memory_capacity() const { return impl_->memory_capacity(); }

Result<ObjectBuffer> Client::Create(const ObjectId& id, int64_t data_size,
                                    const std::string& metadata, bool evict_if_full) {
  return impl_->Create(id, data_size, reinterpret_cast<const uint8_t*>(metadata.data()),
                       int64_t(metadata.size()), evict_if_full);
}

Result<ObjectBuffer> Client::CreateForFill(const ObjectId& id, int64_t data_size,
                                           int64_t metadata_size, bool evict_if_full) {
  return impl_->Create(id, data_size, nullptr, metadata_size, evict_if_full);
}

std::vector<Result<ObjectBuffer>> Client::CreateForFillMany(const std::vector<FillSpec>& specs,
                                                            bool evict_if_full) {
  return impl_->CreateForFillMany(specs, evict_if_full);
}

Status Client::Seal(const ObjectId& id) { return impl_->Seal(id); }

std::vector<Status> Client::SealMany(const std::vector<ObjectId>& ids,
                                     const std::vector<std::string>& digests) {
  return impl_->SealMany(ids, digests);
}

Status Client::Seal(const ObjectId& id, const std::string& digest) {
  return impl_->Seal(id, &digest);
}

Status Client::Abort(const ObjectId& id) { return impl_->Abort(id); }

Status Client::CreateAndSeal(const ObjectId& id, const std::string& data,
                             const std::string& metadata, bool evict_if_full) {
  return impl_->CreateAndSeal(id, data, metadata, evict_if_full);
}

std::vector<Status> Client::CreateAndSealMany(const std::vector<WholeObject>& objects,
                                              bool evict_if_full) {
  return impl_->CreateAndSealMany(objects, evict_if_full);
}

Status Client::CreateAndSealBatch(const std::vector<ObjectId>& ids,
                                  const std::vector<std::string>& data,
                                  const std::vector<std::string>& metadata, bool evict_if_full) {
  return impl_->CreateAndSealBatch(ids, data, metadata, evict_if_full);
}

Result<std::vector<ObjectBuffer>> Client::Get(const std::vector<ObjectId>& ids,
                                              int64_t timeout_ms) {
  return impl_->Get(ids, timeout_ms);
}

Result<bool> Client::Contains(const ObjectId& id) { return impl_->Contains(id); }

Status Client::Delete(const ObjectId& id) { return impl_->Delete({id}, nullptr); }

Status Client::Delete(const std::vector<ObjectId>& ids, std::vector<Status>* per_object) {
  return impl_->Delete(ids, per_object);
}

Result<std::vector<ObjectInfo>> Client::List() { return impl_->List(); }

Result<int64_t> Client::Evict(int64_t num_bytes) { return impl_->Evict(num_bytes); }

Status Client::Refresh(const std::vector<ObjectId>& ids) { return impl_->Refresh(ids); }

Status Client::SetClientOptions(const std::string& client_name, int64_t output_memory_quota) {
  return impl_->SetClientOptions(client_name, output_memory_quota);
}

Result<std::string> Client::DebugString() { return impl_->DebugString(); }

Result<std::string> Client::Hash(const ObjectId& id) {
  PLASMA_ASSIGN_OR_RETURN(std::vector<ObjectInfo> objects, impl_->List());
  for (const ObjectInfo& info : objects) {
    if (info.id != id) continue;
    if (!info.sealed) {
      return Status::ObjectNotSealed("hash of object " + id.Hex() + ": not sealed yet");
    }
    return info.digest;
  }
  return Status::ObjectNotFound("hash of object " + id.Hex() + ": not in the store");
}

Result<int> Client::Subscribe() { return impl_->Subscribe(); }

Result<ArenaRegion> Client::MapArena() { return impl_->MapArena(); }

Status Client::Fetch(const std::vector<ObjectId>& ids, int64_t timeout_ms) {
  return impl_->Fetch(ids, timeout_ms);
}

Status Client::Disconnect() { return impl_->Disconnect(); }

}  // namespace plasma
