#include "plasma/manager/manager.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "plasma/common/logging.h"

namespace plasma {

namespace {
// While Redis is unreachable, or no node holds an object yet, look again this often.
constexpr int64_t kRetryLookupMs = 200;

// A plugin's address blob for the log: opaque bytes, printable in practice
// (both plugins publish text such as "tcp:10.0.0.2:4000").
std::string PrintableAddress(const std::string& blob) {
  bool printable = !blob.empty() && std::all_of(blob.begin(), blob.end(), [](char c) {
    return c >= 0x21 && c <= 0x7e;
  });
  return printable ? blob : "a " + std::to_string(blob.size()) + "-byte address";
}
}  // namespace

// One client's Fetch: the ids asked for and what became of each.
struct Manager::FetchRequest {
  int client_fd;
  std::vector<ObjectId> ids;
  std::vector<Status> results;
  std::vector<bool> resolved;
  size_t pending = 0;
  EventLoop::TimerId timer = 0;
  int64_t started_ms = 0;
};

// One object being fetched, shared by every request that wants it.
struct Manager::ObjectFetch {
  ObjectId id;
  std::vector<std::pair<FetchRequest*, size_t>> waiters;
  bool pulling = false;
  ObjectDirectory::WatchId watch = 0;
  EventLoop::TimerId retry_timer = 0;
  Status last_error;
  // Where the running pull's holders came from: a pull from cached holders
  // that fails is retried with Redis's answer.
  HolderSource holder_source = HolderSource::kRedis;
  // A failed pull is followed by one fresh lookup: holders may have moved
  // (a restarted manager on a new address) or a new replica appeared.
  bool looked_up_after_failure = false;
};

Manager::Manager(EventLoop* loop, const ManagerOptions& options, std::unique_ptr<LocalStore> store)
    : loop_(loop), options_(options), store_(std::move(store)) {}

Result<std::unique_ptr<Manager>> Manager::Create(EventLoop* loop, const ManagerOptions& options,
                                                 transport::Plugin* plugin,
                                                 std::unique_ptr<LocalStore> store) {
  std::unique_ptr<Manager> manager(new Manager(loop, options, std::move(store)));
  PLASMA_RETURN_NOT_OK(manager->Start(plugin));
  return manager;
}

Status Manager::Start(transport::Plugin* plugin) {
  if (options_.node_name.empty()) return Status::InvalidArgument("the node needs a name");
  PLASMA_ASSIGN_OR_RETURN(engine_,
                          TransferEngine::Create(loop_, plugin, store_.get(), options_.transfer));

  ObjectDirectory::Options directory_options;
  directory_options.redis_address = options_.redis_address;
  directory_options.self = NodeInfo{options_.node_name, plugin->name(), engine_->address()};
  directory_options.location_cache_entries = options_.location_cache_entries;
  PLASMA_ASSIGN_OR_RETURN(directory_, ObjectDirectory::Create(loop_, directory_options));
  // A peer whose connection failed may have restarted elsewhere: its
  // address is read from Redis again at the next lookup.
  engine_->OnNodeFailed([this](const std::string& node) { directory_->ForgetNode(node); });

  // Every object sealed here (put by a client or pulled by us) is announced;
  // the subscription starts with every object already in the store.
  PLASMA_RETURN_NOT_OK(store_->Subscribe(
      [this](const std::vector<ObjectNotification>& events) { OnStoreEvents(events); },
      [this](const Status& why) { OnStoreLost(why); }));

  PLASMA_ASSIGN_OR_RETURN(listen_fd_, ListenUnixSocket(options_.manager_socket));
  fcntl(listen_fd_, F_SETFL, fcntl(listen_fd_, F_GETFL) | O_NONBLOCK);
  PLASMA_RETURN_NOT_OK(loop_->Watch(listen_fd_, EPOLLIN, [this](uint32_t) { AcceptClients(); }));
  PLASMA_LOG(kInfo) << "node " << options_.node_name << ": " << store_->Describe()
                    << ", clients on " << options_.manager_socket << ", Redis "
                    << options_.redis_address << ", transport " << plugin->name()
                    << " (inline messages up to " << engine_->eager_threshold() << " bytes"
                    << (engine_->push_chunk() > 0
                            ? "; announced objects up to " +
                                  std::to_string(options_.transfer.max_push_bytes) +
                                  " bytes pushed in " + std::to_string(engine_->push_chunk()) +
                                  "-byte chunks"
                            : std::string())
                    << "); peers reach it at " << PrintableAddress(engine_->address());
  return Status::OK();
}

void Manager::Unregister() {
  if (directory_) directory_->Unregister();
}

Manager::~Manager() {
  std::vector<int> fds;
  for (auto& [fd, client] : clients_) fds.push_back(fd);
  for (int fd : fds) DisconnectClient(fd, "manager shutting down");
  if (listen_fd_ >= 0) {
    loop_->Unwatch(listen_fd_);
    close(listen_fd_);
    unlink(options_.manager_socket.c_str());
  }
}

void Manager::OnStoreLost(const Status& why) {
  PLASMA_LOG(kError) << "lost the store's notifications (" << why.ToString()
                     << "); withdrawing this node from Redis and stopping";
  // Its objects died with the store: no peer should try this node for them.
  directory_->Unregister();
  loop_->AddTimer(200, [this] { loop_->Stop(); });  // let the commands go out
}

void Manager::OnStoreEvents(const std::vector<ObjectNotification>& events) {
  for (const auto& n : events) {
    if (n.is_deletion) {
      local_objects_.erase(n.id);
      directory_->RemoveLocation(n.id);
      engine_->ForgetDigest(n.id);
    } else {
      local_objects_.insert(n.id);
      engine_->RememberDigest(n.id, n.digest);
      directory_->AddLocation(n.id, ObjectSizes{uint64_t(n.data_size), uint64_t(n.metadata_size)});
    }
  }
}

void Manager::AcceptClients() {
  while (true) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    clients_[fd] = std::make_unique<FrameConnection>(fd, 64 << 20);
    loop_->Watch(fd, EPOLLIN, [this, fd](uint32_t events) { OnClientEvent(fd, events); });
  }
}

void Manager::OnClientEvent(int fd, uint32_t events) {
  auto it = clients_.find(fd);
  if (it == clients_.end()) return;
  FrameConnection* client = it->second.get();
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    Status read = client->ReadAvailable();
    while (true) {
      fb::MessageType type;
      const uint8_t* payload;
      size_t length;
      auto complete = client->reader().NextFrame(&type, &payload, &length);
      if (!complete.ok()) {
        DisconnectClient(fd, complete.status().ToString());
        return;
      }
      if (!*complete) break;
      Status handled = HandleFrame(client, type, payload, length);
      if (!handled.ok()) {
        DisconnectClient(fd, handled.ToString());
        return;
      }
      client->reader().ConsumeFrame();
    }
    if (!read.ok()) {
      DisconnectClient(fd, read.ToString());
      return;
    }
  }
  if (!client->Flush().ok()) {
    DisconnectClient(fd, "write failed");
    return;
  }
  loop_->SetEvents(fd, EPOLLIN | (client->HasPendingOutput() ? uint32_t(EPOLLOUT) : 0u));
}

Status Manager::HandleFrame(FrameConnection* client, fb::MessageType type, const uint8_t* payload,
                            size_t length) {
  if (type != fb::MessageType::ManagerFetchRequest) {
    return Status::ProtocolError(std::string("unexpected message ") + MessageTypeName(type) +
                                 " on the manager socket");
  }
  fb::ManagerFetchRequestT message;
  PLASMA_RETURN_NOT_OK(DecodeMessage(payload, length, &message));
  auto* request = new FetchRequest;
  request->client_fd = client->fd();
  request->started_ms = MonotonicMilliseconds();
  for (const auto& binary : message.object_ids) {
    auto id = ObjectId::FromBinary(binary);
    if (!id.ok()) {
      delete request;
      return Status::ProtocolError("fetch request: " + id.status().message());
    }
    request->ids.push_back(*id);
  }
  // The store announces a seal or delete before it answers the client that
  // made it; read what is already here, so a client that deleted (or put)
  // an object and then fetches it is answered from an up-to-date set.
  store_->DeliverPendingEvents();
  request->results.resize(request->ids.size());
  request->resolved.resize(request->ids.size(), false);
  // One extra count while starting: ids answered at once must not complete
  // (and free) the request before the loop below is through with it.
  request->pending = request->ids.size() + 1;
  client_requests_[client->fd()].push_back(request);
  if (message.timeout_ms >= 0) {
    request->timer = loop_->AddTimer(message.timeout_ms, [this, request] { TimeOut(request); });
  }
  for (size_t i = 0; i < request->ids.size(); ++i) StartFetch(request, i);
  --request->pending;
  ReplyIfDone(request);
  return Status::OK();
}

void Manager::StartFetch(FetchRequest* request, size_t index) {
  const ObjectId& id = request->ids[index];
  if (local_objects_.count(id) > 0) {
    Resolve(request, index, Status::OK());
    return;
  }
  auto& fetch = fetches_[id];
  if (fetch) {
    fetch->waiters.emplace_back(request, index);
    return;
  }
  fetch = std::make_unique<ObjectFetch>();
  fetch->id = id;
  fetch->waiters.emplace_back(request, index);
  LookUp(id);
}

void Manager::LookUp(const ObjectId& id) {
  auto it = fetches_.find(id);
  if (it == fetches_.end()) return;
  int64_t lookup_started_us = MonotonicMicroseconds();
  directory_->LookupHolders(id, [this, id, lookup_started_us](Status status,
                                                              std::vector<NodeInfo> holders,
                                                              HolderSource source) {
    PLASMA_LOG(kDebug) << "looked up " << id.Hex() << ": " << holders.size() << " holder(s) in "
                       << MonotonicMicroseconds() - lookup_started_us << " µs ("
                       << (source == HolderSource::kCache ? "location cache" : "Redis") << ")";
    auto found = fetches_.find(id);
    if (found == fetches_.end() || found->second->pulling) return;
    ObjectFetch* fetch = found->second.get();
    if (status.ok() && !holders.empty()) {
      // (Should it have arrived locally meanwhile, the pull's Create finds it.)
      if (fetch->watch != 0) {
        directory_->CancelWatch(fetch->watch);
        fetch->watch = 0;
      }
      fetch->pulling = true;
      fetch->holder_source = source;
      // Announced sizes let the pull create the object before it asks.
      engine_->Pull(id, std::move(holders), directory_->KnownSizes(id),
                    [this, id](Status pulled) { OnPulled(id, pulled); });
      return;
    }
    // The object may have arrived meanwhile (a local put, another pull).
    if (local_objects_.count(id) > 0) {
      FinishFetchObject(id, Status::OK());
      return;
    }
    if (!status.ok()) fetch->last_error = status;
    if (status.ok() && fetch->watch == 0) {
      // Not there yet: wait for its announcement, and look once more now
      // that we listen, so one made in between is not missed.
      fetch->watch = directory_->Watch(id, [this, id] {
        auto announced = fetches_.find(id);
        if (announced == fetches_.end()) return;
        announced->second->watch = 0;
        if (!announced->second->pulling) LookUp(id);
      });
      LookUp(id);
      return;
    }
    // Still nothing (or Redis is away): look again now and then, in case an
    // announcement was lost with a Redis restart.
    if (fetch->retry_timer == 0) {
      fetch->retry_timer = loop_->AddTimer(kRetryLookupMs, [this, id] {
        auto again = fetches_.find(id);
        if (again == fetches_.end()) return;
        again->second->retry_timer = 0;
        if (!again->second->pulling) LookUp(id);
      });
    }
  });
}

void Manager::OnPulled(const ObjectId& id, Status status) {
  auto it = fetches_.find(id);
  if (it == fetches_.end()) return;
  it->second->pulling = false;
  if (!status.ok() && it->second->holder_source == HolderSource::kCache) {
    // The cache may be stale (a copy deleted, a node gone while its events
    // were in flight): ask Redis, whatever the failure was.
    PLASMA_LOG(kDebug) << "pull of " << id.Hex() << " from cached holders failed ("
                       << status.ToString() << "); asking Redis";
    directory_->ForgetCachedHolders(id);
    it->second->last_error = status;
    LookUp(id);
    return;
  }
  if (status.code() == StatusCode::kUnavailable && !it->second->looked_up_after_failure) {
    it->second->looked_up_after_failure = true;
    it->second->last_error = status;
    LookUp(id);
    return;
  }
  FinishFetchObject(id, status);
}

void Manager::FinishFetchObject(const ObjectId& id, const Status& status) {
  auto it = fetches_.find(id);
  if (it == fetches_.end()) return;
  std::unique_ptr<ObjectFetch> fetch = std::move(it->second);
  fetches_.erase(it);
  if (fetch->watch != 0) directory_->CancelWatch(fetch->watch);
  if (fetch->retry_timer != 0) loop_->CancelTimer(fetch->retry_timer);
  for (auto& [request, index] : fetch->waiters) Resolve(request, index, status);
}

void Manager::Resolve(FetchRequest* request, size_t index, Status status) {
  if (request->resolved[index]) return;
  request->resolved[index] = true;
  request->results[index] = std::move(status);
  --request->pending;
  ReplyIfDone(request);
}

void Manager::TimeOut(FetchRequest* request) {
  request->timer = 0;
  int64_t waited = MonotonicMilliseconds() - request->started_ms;
  for (size_t i = 0; i < request->ids.size(); ++i) {
    if (request->resolved[i]) continue;
    const ObjectId& id = request->ids[i];
    std::string detail = "no node announced it";
    auto it = fetches_.find(id);
    if (it != fetches_.end()) {
      auto& waiters = it->second->waiters;
      waiters.erase(std::remove(waiters.begin(), waiters.end(), std::make_pair(request, i)),
                    waiters.end());
      if (it->second->pulling) detail = "a transfer was still running";
      if (!it->second->last_error.ok()) detail = it->second->last_error.message();
      DropIfUnwanted(id);
    }
    request->resolved[i] = true;
    request->results[i] = Status::TimedOut("fetch of object " + id.Hex() + " timed out after " +
                                           std::to_string(waited) + " ms (" + detail + ")");
    --request->pending;
  }
  ReplyIfDone(request);
}

void Manager::DropIfUnwanted(const ObjectId& id) {
  auto it = fetches_.find(id);
  if (it == fetches_.end() || !it->second->waiters.empty() || it->second->pulling) return;
  if (it->second->watch != 0) directory_->CancelWatch(it->second->watch);
  if (it->second->retry_timer != 0) loop_->CancelTimer(it->second->retry_timer);
  fetches_.erase(it);
}

void Manager::ReplyIfDone(FetchRequest* request) {
  if (request->pending > 0) return;
  if (request->timer != 0) loop_->CancelTimer(request->timer);
  auto& requests = client_requests_[request->client_fd];
  requests.erase(std::remove(requests.begin(), requests.end(), request), requests.end());
  auto client = clients_.find(request->client_fd);
  if (client != clients_.end()) {
    fb::ManagerFetchReplyT reply;
    for (size_t i = 0; i < request->ids.size(); ++i) {
      reply.object_ids.push_back(request->ids[i].Binary());
      reply.status_codes.push_back(int32_t(request->results[i].code()));
      reply.messages.push_back(request->results[i].message());
    }
    client->second->QueueMessage(fb::MessageType::ManagerFetchReply, reply);
    if (client->second->Flush().ok()) {
      loop_->SetEvents(request->client_fd,
                       EPOLLIN | (client->second->HasPendingOutput() ? uint32_t(EPOLLOUT) : 0u));
    }
  }
  delete request;
}

void Manager::DisconnectClient(int fd, const std::string& reason) {
  if (reason.find("closed the connection") == std::string::npos) {
    PLASMA_LOG(kWarning) << "disconnecting manager client fd " << fd << ": " << reason;
  }
  loop_->Unwatch(fd);
  // Transfers already running finish (the objects still arrive); waiting
  // for objects nobody else wants stops.
  for (FetchRequest* request : client_requests_[fd]) {
    std::vector<ObjectId> touched;
    for (auto& [id, fetch] : fetches_) {
      auto& waiters = fetch->waiters;
      waiters.erase(std::remove_if(waiters.begin(), waiters.end(),
                                   [request](const auto& w) { return w.first == request; }),
                    waiters.end());
      touched.push_back(id);
    }
    for (const ObjectId& id : touched) DropIfUnwanted(id);
    if (request->timer != 0) loop_->CancelTimer(request->timer);
    delete request;
  }
  client_requests_.erase(fd);
  clients_.erase(fd);
}

}  // namespace plasma
