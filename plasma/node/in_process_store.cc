#include "plasma/node/in_process_store.h"

#include "plasma/common/digest.h"
#include "plasma/common/protocol.h"
#include "plasma/store/store_records.h"

namespace plasma {

class InProcessStore::Reference : public StoredObject::Reference {
 public:
  Reference(InProcessStore* owner, const ObjectId& id) : owner_(owner), id_(id) {}
  ~Reference() override { owner_->Drop(id_); }

 private:
  InProcessStore* owner_;
  ObjectId id_;
};

InProcessStore::InProcessStore(Store* store)
    : store_(store), client_(std::make_unique<StoreClient>()) {
  client_->name = "the manager (in-process)";
}

InProcessStore::~InProcessStore() {
  store_->event_listener_ = nullptr;
  store_->DropClientState(client_.get());
}

Result<ArenaRegion> InProcessStore::MapArena() {
  return ArenaRegion{store_->arena_->base(), size_t(store_->arena_->size())};
}

StoredObject InProcessStore::Hold(ObjectEntry* entry) {
  ++held_[entry->id];
  uint8_t* data = store_->arena_->base() + entry->offset;
  return StoredObject(entry->id, data, entry->data_size, data + entry->data_size,
                      entry->metadata_size, std::make_unique<Reference>(this, entry->id));
}

void InProcessStore::Drop(const ObjectId& id) {
  auto it = held_.find(id);
  if (it == held_.end() || --it->second > 0) return;
  held_.erase(it);
  ObjectEntry* entry = store_->FindObject(id);
  // An unsealed object stays referenced by its creator until Seal or Abort.
  if (entry != nullptr && entry->sealed) store_->RemoveReference(client_.get(), entry);
}

std::vector<Result<StoredObject>> InProcessStore::CreateForFillMany(
    const std::vector<FillSpec>& specs) {
  std::vector<Result<StoredObject>> created;
  created.reserve(specs.size());
  for (const FillSpec& spec : specs) {
    ObjectEntry* entry = nullptr;
    fb::PlasmaError error = fb::PlasmaError::OutOfMemory;
    if (spec.data_size >= 0 && spec.metadata_size >= 0) {
      error = store_->CreateObject(client_.get(), spec.id, uint64_t(spec.data_size),
                                   uint64_t(spec.metadata_size), /*evict_if_full=*/true, &entry);
    }
    if (entry == nullptr) {
      created.emplace_back(ErrorToStatus(error, "create " + spec.id.Hex()));
    } else {
      created.emplace_back(Hold(entry));
    }
  }
  return created;
}

std::vector<Status> InProcessStore::SealMany(const std::vector<ObjectId>& ids,
                                             const std::vector<std::string>& digests) {
  std::vector<Status> sealed;
  sealed.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    ObjectEntry* entry = store_->FindObject(ids[i]);
    if (entry == nullptr || !client_->object_ids.count(ids[i])) {
      sealed.push_back(Status::ObjectNotFound("seal " + ids[i].Hex() + ": not created here"));
      continue;
    }
    if (entry->sealed) {
      sealed.push_back(Status::ObjectExists("seal " + ids[i].Hex() + ": sealed already"));
      continue;
    }
    std::string digest = i < digests.size() ? digests[i] : "";
    if (digest.empty()) {
      const uint8_t* data = store_->arena_->base() + entry->offset;
      digest = ObjectDigest(data, entry->data_size, data + entry->data_size, entry->metadata_size);
    }
    store_->SealObject(client_.get(), entry, digest);
    // Sealed with nothing of it held: the creator's reference goes now.
    if (held_.count(ids[i]) == 0) store_->RemoveReference(client_.get(), entry);
    sealed.push_back(Status::OK());
  }
  return sealed;
}

std::vector<Status> InProcessStore::CreateAndSealMany(const std::vector<WholeObject>& objects) {
  std::vector<Status> results;
  results.reserve(objects.size());
  for (const WholeObject& object : objects) {
    if (object.data_size < 0 || object.metadata_size < 0) {
      results.push_back(Status::InvalidArgument("create and seal " + object.id.Hex() +
                                                ": negative size"));
      continue;
    }
    const uint8_t* metadata = object.bytes + object.data_size;
    std::string digest = object.digest.empty() ? ObjectDigest(object.bytes, object.data_size,
                                                              metadata, object.metadata_size)
                                               : object.digest;
    fb::PlasmaError error = store_->CreateAndSealObject(
        client_.get(), object.id, object.bytes, uint64_t(object.data_size), metadata,
        uint64_t(object.metadata_size), digest, /*evict_if_full=*/true);
    results.push_back(ErrorToStatus(error, "create and seal " + object.id.Hex()));
  }
  return results;
}

Status InProcessStore::Abort(const ObjectId& id) {
  if (held_.count(id) > 0) {
    return Status::InvalidArgument("abort " + id.Hex() + ": release its buffers first");
  }
  ObjectEntry* entry = store_->FindObject(id);
  if (entry == nullptr || entry->sealed || !client_->object_ids.count(id)) {
    return Status::ObjectNotFound("abort " + id.Hex() + ": no unsealed object created here");
  }
  store_->AbortObject(client_.get(), entry);
  return Status::OK();
}

Result<bool> InProcessStore::Contains(const ObjectId& id) {
  ObjectEntry* entry = store_->FindObject(id);
  return entry != nullptr && entry->sealed;
}

Result<std::vector<StoredObject>> InProcessStore::Get(const std::vector<ObjectId>& ids) {
  std::vector<StoredObject> objects;
  objects.reserve(ids.size());
  for (const ObjectId& id : ids) {
    ObjectEntry* entry = store_->FindObject(id);
    if (entry == nullptr || !entry->sealed) {
      objects.emplace_back();
      continue;
    }
    store_->AddReference(client_.get(), entry);
    objects.push_back(Hold(entry));
  }
  return objects;
}

namespace {
ObjectNotification FromObjectInfo(const fb::ObjectInfoT& info, const ObjectId& id) {
  ObjectNotification event;
  event.id = id;
  event.is_deletion = info.is_deletion;
  event.data_size = info.data_size;
  event.metadata_size = info.metadata_size;
  event.digest = info.digest;
  return event;
}
}  // namespace

Status InProcessStore::Subscribe(EventsCallback on_events, LostCallback /*on_lost*/) {
  // The store cannot go away under its own process: on_lost never comes.
  store_->event_listener_ = [on_events](const fb::ObjectInfoT& info) {
    auto id = ObjectId::FromBinary(info.object_id);
    if (id.ok()) on_events({FromObjectInfo(info, *id)});
  };
  // As a subscriber over the socket does, hear first of every sealed object.
  std::vector<ObjectNotification> present;
  for (const auto& [id, entry] : store_->objects_) {
    if (entry->sealed) present.push_back(FromObjectInfo(store_->MakeObjectInfo(*entry), id));
  }
  if (!present.empty()) on_events(present);
  return Status::OK();
}

}  // namespace plasma
