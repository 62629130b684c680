// The store's clients over its Unix socket: accepting them, reading their
// frames (and the descriptor a Subscribe carries), writing back, and
// disconnecting them, which drops everything they held.
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "plasma/common/logging.h"
#include "plasma/store/store.h"
#include "plasma/store/store_records.h"

namespace plasma {

Status Store::Listen() {
  PLASMA_ASSIGN_OR_RETURN(listen_fd_, ListenUnixSocket(options_.socket_path));
  fcntl(listen_fd_, F_SETFL, fcntl(listen_fd_, F_GETFL) | O_NONBLOCK);
  return loop_->Watch(listen_fd_, EPOLLIN, [this](uint32_t) { AcceptClients(); });
}

void Store::AcceptClients() {
  while (true) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        PLASMA_LOG(kWarning) << "accept on " << options_.socket_path
                             << " failed: " << strerror(errno);
      }
      return;
    }
    auto client = std::make_unique<StoreClient>();
    client->connection = std::make_unique<FrameConnection>(fd, max_payload_);
    StoreClient* raw = client.get();
    Status watched =
        loop_->Watch(fd, EPOLLIN, [this, raw](uint32_t events) { OnClientEvent(raw, events); });
    if (!watched.ok()) {
      PLASMA_LOG(kWarning) << "cannot watch new client: " << watched.ToString();
      continue;  // the connection closes with `client`
    }
    PLASMA_LOG(kDebug) << "client connected: " << raw->describe();
    clients_[fd] = std::move(client);
  }
}

void Store::OnClientEvent(StoreClient* client, uint32_t events) {
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    Status read = client->connection->ReadAvailable();
    // Handle what arrived before a hang-up: a client may Release and exit.
    Status processed = ProcessFrames(client);
    if (!processed.ok()) {
      DisconnectClient(client, processed.ToString());
      return;
    }
    if (!read.ok()) {
      DisconnectClient(client, read.ToString());
      return;
    }
  }
  Status flushed = client->connection->Flush();
  if (!flushed.ok()) {
    DisconnectClient(client, flushed.ToString());
    return;
  }
  if (client->connection->PendingOutputBytes() > kMaxPendingOutputBytes) {
    DisconnectClient(client, "client does not read its replies");
    return;
  }
  UpdateWriteInterest(client);
}

void Store::UpdateWriteInterest(StoreClient* client) {
  uint32_t events = EPOLLIN | (client->connection->HasPendingOutput() ? uint32_t(EPOLLOUT) : 0u);
  loop_->SetEvents(client->connection->fd(), events);
}

Status Store::ProcessFrames(StoreClient* client) {
  FrameReader& reader = client->connection->reader();
  while (true) {
    if (client->awaiting_subscribe_fd) {
      // The subscribe request is followed by one byte carrying the fd.
      if (reader.BufferedBytes() == 0) return Status::OK();
      int fd = client->connection->PopReceivedFd();
      if (fd < 0) {
        return Status::ProtocolError("subscribe request not followed by a file descriptor");
      }
      reader.ConsumeBytes(1);
      client->awaiting_subscribe_fd = false;
      Subscribe(client, fd);
      continue;
    }
    fb::MessageType type;
    const uint8_t* payload;
    size_t length;
    PLASMA_ASSIGN_OR_RETURN(bool complete, reader.NextFrame(&type, &payload, &length));
    if (!complete) break;
    PLASMA_RETURN_NOT_OK(HandleMessage(client, type, payload, length));
    reader.ConsumeFrame();
  }
  // A descriptor rides on the byte after a Subscribe frame, which is parsed
  // before that byte; any other descriptor was never asked for.
  int stray = client->connection->PopReceivedFd();
  if (stray >= 0) {
    close(stray);
    return Status::ProtocolError("unexpected file descriptor from client");
  }
  return Status::OK();
}

void Store::DisconnectClient(StoreClient* client, const std::string& reason) {
  int fd = client->connection->fd();
  bool orderly = reason.find("closed the connection") != std::string::npos ||
                 reason == "store shutting down";
  if (orderly) {
    PLASMA_LOG(kDebug) << "client " << client->describe() << " disconnected";
  } else {
    PLASMA_LOG(kWarning) << "disconnecting client " << client->describe() << ": " << reason;
  }
  loop_->Unwatch(fd);
  DropClientState(client);
  if (client->notification_fd >= 0) {
    loop_->Unwatch(client->notification_fd);
    close(client->notification_fd);
  }
  clients_.erase(fd);  // closes the connection
}

void Store::DropClientState(StoreClient* client) {
  while (!client->gets.empty()) RemoveGetRequest(*client->gets.begin());
  // Objects counted against its quota join the shared pool.
  eviction_.ClientDisconnected(client);
  // Its unsealed objects are aborted; its references on sealed ones dropped.
  std::vector<ObjectId> held(client->object_ids.begin(), client->object_ids.end());
  for (const ObjectId& id : held) {
    ObjectEntry* entry = FindObject(id);
    if (entry == nullptr) continue;
    if (entry->sealed) {
      RemoveReference(client, entry);
    } else {
      AbortObject(client, entry);
    }
  }
}

}  // namespace plasma
