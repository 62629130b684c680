#include "plasma/manager/object_directory.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <unistd.h>

#include <sstream>

#include "plasma/common/logging.h"

namespace plasma {

namespace {

const char kObjectPrefix[] = "plasma:object:";
const char kNodePrefix[] = "plasma:node:";
const char kSealedPrefix[] = "plasma:sealed:";
const char kLocationsChannel[] = "plasma:locations";

// hiredis asks for read/write interest through these hooks; they map onto
// the event loop's epoll registration of the context's socket.
struct LoopAdapter {
  EventLoop* loop;
  redisAsyncContext* context;
  uint32_t events = 0;
  bool watching = false;
  // A command is written at the end of this loop iteration rather than
  // after a round through epoll for writability (saves three syscalls per
  // command); only a write that would block waits for EPOLLOUT.
  EventLoop::TimerId write_soon = 0;

  void Update() {
    int fd = context->c.fd;
    if (events == 0) {
      if (watching) loop->Unwatch(fd);
      watching = false;
      return;
    }
    if (watching) {
      loop->SetEvents(fd, events);
      return;
    }
    redisAsyncContext* ac = context;
    loop->Watch(fd, events, [ac](uint32_t ready) {
      if (ready & (EPOLLIN | EPOLLHUP | EPOLLERR)) redisAsyncHandleRead(ac);
      // The read may have freed the context (disconnect); hiredis then called
      // cleanup, which unwatched the fd, so this callback's copy is all we hold.
      else if (ready & EPOLLOUT) redisAsyncHandleWrite(ac);
    });
    watching = true;
  }
};

void Attach(EventLoop* loop, redisAsyncContext* context) {
  auto* adapter = new LoopAdapter{loop, context};
  context->ev.data = adapter;
  context->ev.addRead = [](void* p) {
    auto* a = static_cast<LoopAdapter*>(p);
    a->events |= EPOLLIN;
    a->Update();
  };
  context->ev.delRead = [](void* p) {
    auto* a = static_cast<LoopAdapter*>(p);
    a->events &= ~uint32_t(EPOLLIN);
    a->Update();
  };
  context->ev.addWrite = [](void* p) {
    auto* a = static_cast<LoopAdapter*>(p);
    if (a->write_soon != 0 || (a->events & EPOLLOUT)) return;
    if (!(a->context->c.flags & REDIS_CONNECTED)) {
      a->events |= EPOLLOUT;  // connecting: writability says the connect finished
      a->Update();
      return;
    }
    a->write_soon = a->loop->AddTimer(0, [a] {
      a->write_soon = 0;
      redisAsyncHandleWrite(a->context);  // re-arms through addWrite if it would block
    });
  };
  context->ev.delWrite = [](void* p) {
    auto* a = static_cast<LoopAdapter*>(p);
    if (a->write_soon != 0) {
      a->loop->CancelTimer(a->write_soon);
      a->write_soon = 0;
    }
    a->events &= ~uint32_t(EPOLLOUT);
    a->Update();
  };
  context->ev.cleanup = [](void* p) {
    auto* a = static_cast<LoopAdapter*>(p);
    if (a->write_soon != 0) a->loop->CancelTimer(a->write_soon);
    a->events = 0;
    a->Update();
    delete a;
  };
}

redisAsyncContext* ConnectAsync(const std::string& address) {
  if (!address.empty() && address[0] == '/') return redisAsyncConnectUnix(address.c_str());
  auto colon = address.rfind(':');
  std::string host = colon == std::string::npos ? address : address.substr(0, colon);
  int port = colon == std::string::npos ? 6379 : std::atoi(address.c_str() + colon + 1);
  return redisAsyncConnect(host.c_str(), port);
}

using ReplyHandler = std::function<void(redisReply*)>;

void ReplyTrampoline(redisAsyncContext*, void* reply, void* privdata) {
  std::unique_ptr<ReplyHandler> handler(static_cast<ReplyHandler*>(privdata));
  (*handler)(static_cast<redisReply*>(reply));  // reply is null if the connection died
}

}  // namespace

Result<std::unique_ptr<ObjectDirectory>> ObjectDirectory::Create(EventLoop* loop,
                                                                 const Options& options) {
  if (options.redis_address.empty()) return Status::InvalidArgument("no Redis address given");
  std::unique_ptr<ObjectDirectory> directory(new ObjectDirectory(loop, options));
  PLASMA_RETURN_NOT_OK(directory->Connect());
  return directory;
}

ObjectDirectory::~ObjectDirectory() {
  shutting_down_ = true;
  if (commands_) redisAsyncFree(commands_);
  if (subscriber_) redisAsyncFree(subscriber_);
}

Status ObjectDirectory::Connect() {
  for (redisAsyncContext** slot : {&commands_, &subscriber_}) {
    if (*slot != nullptr) continue;
    redisAsyncContext* context = ConnectAsync(options_.redis_address);
    if (context == nullptr) return Status::Internal("hiredis: out of memory");
    if (context->err) {
      Status error = Status::Unavailable("Redis at " + options_.redis_address + ": " +
                                         context->errstr);
      redisAsyncFree(context);
      return error;
    }
    context->data = this;
    Attach(loop_, context);
    redisAsyncSetConnectCallback(context, [](const redisAsyncContext* c, int status) {
      auto* self = static_cast<ObjectDirectory*>(c->data);
      auto* context = const_cast<redisAsyncContext*>(c);
      if (status != REDIS_OK) {
        // hiredis frees the context after this callback.
        PLASMA_LOG(kWarning) << "cannot reach Redis at " << self->options_.redis_address << ": "
                             << c->errstr;
        self->OnDisconnected(context);
        return;
      }
      if (context == self->commands_) {
        self->OnCommandsConnected();
      } else {
        // Re-subscribe every watched id after a reconnect.
        for (const auto& [id, count] : self->watch_counts_) {
          self->SubscriberCommand({"SUBSCRIBE", kSealedPrefix + id.Hex()});
        }
        // The cache is trusted from the subscription's confirmation on.
        if (self->cache_.capacity() > 0) self->SubscriberCommand({"SUBSCRIBE", kLocationsChannel});
      }
    });
    redisAsyncSetDisconnectCallback(context, [](const redisAsyncContext* c, int status) {
      auto* self = static_cast<ObjectDirectory*>(c->data);
      self->OnDisconnected(const_cast<redisAsyncContext*>(c));
    });
    *slot = context;
  }
  return Status::OK();
}

void ObjectDirectory::OnCommandsConnected() {
  commands_ready_ = true;
  outage_reported_ = false;
  // At start-up the store has not listed its objects yet: they are
  // registered as its notifications arrive. After an outage, all at once.
  if (registered_once_) {
    PLASMA_LOG(kInfo) << "reconnected to Redis at " << options_.redis_address
                      << "; registering node " << options_.self.name << " again, with "
                      << local_objects_.size()
                      << (local_objects_.size() == 1 ? " object" : " objects");
  } else {
    PLASMA_LOG(kInfo) << "connected to Redis at " << options_.redis_address
                      << "; registering node " << options_.self.name;
  }
  registered_once_ = true;
  char host[256] = "";
  gethostname(host, sizeof(host) - 1);
  Command(nullptr, {"HSET", kNodePrefix + options_.self.name, "transport", options_.self.transport,
                    "address", options_.self.address, "pid", std::to_string(getpid()), "host",
                    host});
  for (const ObjectId& id : local_objects_) {
    Command(nullptr, {"SADD", kObjectPrefix + id.Hex(), options_.self.name});
  }
}

void ObjectDirectory::OnDisconnected(redisAsyncContext* context) {
  if (context == commands_) {
    commands_ = nullptr;
    commands_ready_ = false;
  }
  if (context == subscriber_) {
    subscriber_ = nullptr;
    // Location events are missed from now on: what the cache knows may go
    // stale unseen.
    following_locations_ = false;
    cache_.Clear();
  }
  if (shutting_down_) return;
  // Both connections (commands, subscriber) drop in one outage: say it once.
  if (!outage_reported_) {
    PLASMA_LOG(kWarning) << "lost Redis at " << options_.redis_address << "; reconnecting";
    outage_reported_ = true;
  }
  ScheduleReconnect();
}

void ObjectDirectory::ScheduleReconnect() {
  if (reconnect_scheduled_) return;
  reconnect_scheduled_ = true;
  loop_->AddTimer(options_.reconnect_delay_ms, [this] {
    reconnect_scheduled_ = false;
    Status s = Connect();
    if (!s.ok()) {
      PLASMA_LOG(kDebug) << s.ToString();
      ScheduleReconnect();
    }
  });
}

void ObjectDirectory::Command(std::function<void(redisReply*)> on_reply,
                              const std::vector<std::string>& args) {
  if (!connected()) {
    if (on_reply) on_reply(nullptr);
    return;
  }
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  auto* handler = on_reply ? new ReplyHandler(std::move(on_reply)) : nullptr;
  int rc = redisAsyncCommandArgv(commands_, handler ? ReplyTrampoline : nullptr, handler,
                                 int(argv.size()), argv.data(), lengths.data());
  if (rc != REDIS_OK && handler) {
    std::unique_ptr<ReplyHandler> owned(handler);
    (*owned)(nullptr);
  }
}

void ObjectDirectory::SubscriberCommand(const std::vector<std::string>& args) {
  if (subscriber_ == nullptr) return;  // replayed on reconnect
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  redisAsyncCommandArgv(
      subscriber_,
      [](redisAsyncContext* c, void* reply, void*) {
        if (reply != nullptr) static_cast<ObjectDirectory*>(c->data)->OnMessage(
            static_cast<redisReply*>(reply));
      },
      nullptr, int(argv.size()), argv.data(), lengths.data());
}

void ObjectDirectory::Publish(const std::string& channel, const std::string& message) {
  Command(nullptr, {"PUBLISH", channel, message});
}

void ObjectDirectory::AddLocation(const ObjectId& id, const ObjectSizes& sizes) {
  local_objects_.insert(id);
  Command(nullptr, {"SADD", kObjectPrefix + id.Hex(), options_.self.name});
  // The location event first: a watcher woken by the sealed message then
  // finds the holder in its cache (both arrive on one connection, in order).
  Publish(kLocationsChannel, "+" + id.Hex() + " " + options_.self.name + " " +
                                std::to_string(sizes.data_size) + " " +
                                std::to_string(sizes.metadata_size));
  Publish(kSealedPrefix + id.Hex(), options_.self.name);
}

void ObjectDirectory::RemoveLocation(const ObjectId& id) {
  local_objects_.erase(id);
  Command(nullptr, {"SREM", kObjectPrefix + id.Hex(), options_.self.name});
  Publish(kLocationsChannel, "-" + id.Hex() + " " + options_.self.name);
}

void ObjectDirectory::Unregister() {
  for (const ObjectId& id : local_objects_) {
    Command(nullptr, {"SREM", kObjectPrefix + id.Hex(), options_.self.name});
  }
  local_objects_.clear();
  Command(nullptr, {"DEL", kNodePrefix + options_.self.name});
  Publish(kLocationsChannel, "!" + options_.self.name);
}

void ObjectDirectory::LookupHolders(const ObjectId& id, HoldersCallback callback) {
  std::vector<std::string> cached = cache_current() ? cache_.Holders(id) : std::vector<std::string>{};
  if (cached.empty()) {
    LookupInRedis(id, std::move(callback));
    return;
  }
  ResolveNodes(std::move(cached), HolderSource::kCache,
               [this, id, callback](Status status, std::vector<NodeInfo> holders, HolderSource) {
                 if (!holders.empty()) {
                   callback(status, std::move(holders), HolderSource::kCache);
                   return;
                 }
                 // None of the cached holders has a node record any more.
                 cache_.Drop(id);
                 LookupInRedis(id, callback);
               });
}

void ObjectDirectory::LookupInRedis(const ObjectId& id, HoldersCallback callback) {
  if (!connected()) {
    callback(Status::Unavailable("Redis at " + options_.redis_address + " is unreachable"), {},
             HolderSource::kRedis);
    return;
  }
  Command(
      [this, id, callback](redisReply* reply) {
        if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY) {
          callback(Status::Unavailable("Redis lookup failed (" + options_.redis_address + ")"), {},
                   HolderSource::kRedis);
          return;
        }
        std::vector<std::string> names;
        for (size_t i = 0; i < reply->elements; ++i) {
          std::string name(reply->element[i]->str, reply->element[i]->len);
          if (name == options_.self.name) continue;
          // Added, never replaced: an event read before this reply may name
          // a holder the reply predates. Removals come as events.
          if (cache_current()) cache_.Add(id, name);
          names.push_back(std::move(name));
        }
        ResolveNodes(std::move(names), HolderSource::kRedis, callback);
      },
      {"SMEMBERS", kObjectPrefix + id.Hex()});
}

void ObjectDirectory::ResolveNodes(std::vector<std::string> names, HolderSource source,
                                   HoldersCallback callback) {
  // Node records rarely change: answer from the cache, ask Redis for the rest.
  auto result = std::make_shared<std::vector<NodeInfo>>();
  auto missing = std::make_shared<std::vector<std::string>>();
  for (const auto& name : names) {
    auto it = node_cache_.find(name);
    if (it != node_cache_.end()) {
      result->push_back(it->second);
    } else {
      missing->push_back(name);
    }
  }
  if (missing->empty()) {
    callback(Status::OK(), std::move(*result), source);
    return;
  }
  auto pending = std::make_shared<size_t>(missing->size());
  for (const auto& name : *missing) {
    Command(
        [this, name, result, pending, source, callback](redisReply* reply) {
          if (reply != nullptr && reply->type == REDIS_REPLY_ARRAY) {
            NodeInfo info;
            info.name = name;
            for (size_t i = 0; i + 1 < reply->elements; i += 2) {
              std::string field(reply->element[i]->str, reply->element[i]->len);
              std::string value(reply->element[i + 1]->str, reply->element[i + 1]->len);
              if (field == "transport") info.transport = value;
              if (field == "address") info.address = value;
            }
            if (!info.address.empty()) {
              node_cache_[name] = info;
              result->push_back(info);
            }
          }
          if (--*pending == 0) callback(Status::OK(), std::move(*result), source);
        },
        {"HGETALL", kNodePrefix + name});
  }
}

ObjectDirectory::WatchId ObjectDirectory::Watch(const ObjectId& id, WatchCallback callback) {
  WatchId watch = next_watch_++;
  watches_[watch] = {id, std::move(callback)};
  if (watch_counts_[id]++ == 0) SubscriberCommand({"SUBSCRIBE", kSealedPrefix + id.Hex()});
  return watch;
}

void ObjectDirectory::CancelWatch(WatchId watch) {
  auto it = watches_.find(watch);
  if (it == watches_.end()) return;
  ObjectId id = it->second.first;
  watches_.erase(it);
  if (--watch_counts_[id] == 0) {
    watch_counts_.erase(id);
    SubscriberCommand({"UNSUBSCRIBE", kSealedPrefix + id.Hex()});
  }
}

void ObjectDirectory::ForgetNode(const std::string& name) {
  node_cache_.erase(name);
  cache_.RemoveNode(name);
}

void ObjectDirectory::OnMessage(redisReply* reply) {
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) return;
  if (reply->element[0]->type != REDIS_REPLY_STRING ||
      reply->element[1]->type != REDIS_REPLY_STRING) {
    return;
  }
  std::string kind(reply->element[0]->str, reply->element[0]->len);
  std::string channel(reply->element[1]->str, reply->element[1]->len);
  if (channel == kLocationsChannel) {
    if (kind == "subscribe") following_locations_ = true;
    if (kind == "message" && reply->element[2]->type == REDIS_REPLY_STRING) {
      OnLocationEvent(std::string(reply->element[2]->str, reply->element[2]->len));
    }
    return;
  }
  if (kind != "message") return;
  if (channel.compare(0, sizeof(kSealedPrefix) - 1, kSealedPrefix) != 0) return;
  auto id = ObjectId::FromHex(channel.substr(sizeof(kSealedPrefix) - 1));
  if (!id.ok()) return;
  std::vector<WatchId> fired;
  for (const auto& [watch, entry] : watches_) {
    if (entry.first == *id) fired.push_back(watch);
  }
  for (WatchId watch : fired) {
    auto it = watches_.find(watch);
    if (it == watches_.end()) continue;
    WatchCallback callback = std::move(it->second.second);
    CancelWatch(watch);
    callback();
  }
}

// "+<id> <node> <data size> <metadata size>", "-<id> <node>" or "!<node>";
// anything else is ignored (a newer manager's event this one does not
// know). An add without sizes (or with unreadable ones) still counts.
void ObjectDirectory::OnLocationEvent(const std::string& event) {
  if (!following_locations_ || event.empty()) return;
  if (event[0] == '!') {
    std::string node = event.substr(1);
    if (node == options_.self.name) return;
    cache_.RemoveNode(node);
    node_cache_.erase(node);
    return;
  }
  if (event[0] != '+' && event[0] != '-') return;
  std::istringstream fields(event.substr(1));
  std::string hex, node;
  fields >> hex >> node;
  auto id = ObjectId::FromHex(hex);
  if (!id.ok() || node.empty() || node == options_.self.name) return;
  if (event[0] == '-') {
    cache_.Remove(*id, node);
    return;
  }
  ObjectSizes sizes;
  if (fields >> sizes.data_size >> sizes.metadata_size) {
    cache_.Add(*id, node, sizes);
  } else {
    cache_.Add(*id, node);
  }
}

}  // namespace plasma
