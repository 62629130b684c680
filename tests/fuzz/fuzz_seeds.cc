// Writes the hand-made seed inputs of every fuzz target: well-formed
// requests, frames and streams, so each fuzzer starts past the first checks.
// Not run by the tests; the corpus in tests/fuzz/corpus/ was started from
// these and then grown and minimized by the fuzzers. Regenerate with
//   cmake --build build/fuzz --target fuzz_seeds && build/fuzz/bin/fuzz_seeds DIR
// (writes DIR/<target>/seed-*).
#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "plasma/common/object_id.h"
#include "plasma/common/protocol.h"
#include "plasma/manager/transfer_protocol.h"
#include "plugins/socket/wire_format.h"

namespace {

namespace fb = plasma::fb;
using Bytes = std::vector<uint8_t>;

std::string out_dir;

void Write(const std::string& target, const std::string& name, const Bytes& bytes) {
  std::string dir = out_dir + "/" + target;
  mkdir(out_dir.c_str(), 0755);
  mkdir(dir.c_str(), 0755);
  std::string path = dir + "/seed-" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) {
    std::perror(path.c_str());
    std::exit(1);
  }
  std::fclose(f);
}

std::string Id(int n) {
  std::string id(plasma::ObjectId::kSize, '\0');
  for (size_t i = 0; i < id.size(); ++i) id[i] = char(n * 37 + int(i));
  return id;
}

template <typename T>
Bytes Frame(fb::MessageType type, const T& message) {
  flatbuffers::FlatBufferBuilder builder;
  plasma::EncodeMessage(message, &builder);
  Bytes frame(plasma::kFrameHeaderSize + builder.GetSize());
  plasma::EncodeFrameHeader(type, builder.GetSize(), frame.data());
  std::memcpy(frame.data() + plasma::kFrameHeaderSize, builder.GetBufferPointer(),
              builder.GetSize());
  return frame;
}

Bytes EmptyFrame(fb::MessageType type) {
  Bytes frame(plasma::kFrameHeaderSize);
  plasma::EncodeFrameHeader(type, 0, frame.data());
  return frame;
}

void Append(Bytes* to, const Bytes& more) { to->insert(to->end(), more.begin(), more.end()); }

void StoreSeeds() {
  const std::string t = "store_protocol_fuzzer";
  using T = fb::MessageType;
  std::vector<std::pair<std::string, Bytes>> frames;
  {
    fb::PlasmaCreateRequestT m;
    m.object_id = Id(1);
    m.data_size = 100;
    m.metadata_size = 4;
    frames.emplace_back("create", Frame(T::PlasmaCreateRequest, m));
  }
  {
    fb::PlasmaCreateAndSealRequestT m;
    m.object_id = Id(2);
    m.data = "some data";
    m.metadata = "meta";
    m.digest = std::string(8, 'd');
    frames.emplace_back("create-and-seal", Frame(T::PlasmaCreateAndSealRequest, m));
  }
  {
    fb::PlasmaCreateAndSealBatchRequestT m;
    m.object_ids = {Id(3), Id(4)};
    m.data = {"a", "bb"};
    m.metadata = {"", "m"};
    m.digest = {std::string(8, 'x'), std::string(8, 'y')};
    frames.emplace_back("batch", Frame(T::PlasmaCreateAndSealBatchRequest, m));
  }
  {
    fb::PlasmaAbortRequestT m;
    m.object_id = Id(1);
    frames.emplace_back("abort", Frame(T::PlasmaAbortRequest, m));
  }
  {
    fb::PlasmaSealRequestT m;
    m.object_id = Id(1);
    m.digest = std::string(8, 's');
    frames.emplace_back("seal", Frame(T::PlasmaSealRequest, m));
  }
  {
    fb::PlasmaGetRequestT m;
    m.object_ids = {Id(1), Id(2)};
    m.timeout_ms = 10;
    frames.emplace_back("get", Frame(T::PlasmaGetRequest, m));
  }
  {
    fb::PlasmaReleaseRequestT m;
    m.object_id = Id(1);
    frames.emplace_back("release", Frame(T::PlasmaReleaseRequest, m));
  }
  {
    fb::PlasmaDeleteRequestT m;
    m.count = 1;
    m.object_ids = {Id(2)};
    frames.emplace_back("delete", Frame(T::PlasmaDeleteRequest, m));
  }
  {
    fb::PlasmaContainsRequestT m;
    m.object_id = Id(2);
    frames.emplace_back("contains", Frame(T::PlasmaContainsRequest, m));
  }
  frames.emplace_back("list", Frame(T::PlasmaListRequest, fb::PlasmaListRequestT{}));
  {
    fb::PlasmaEvictRequestT m;
    m.num_bytes = 1000;
    frames.emplace_back("evict", Frame(T::PlasmaEvictRequest, m));
  }
  {
    fb::PlasmaRefreshLRURequestT m;
    m.object_ids = {Id(2)};
    frames.emplace_back("refresh", Frame(T::PlasmaRefreshLRURequest, m));
  }
  {
    fb::PlasmaSetOptionsRequestT m;
    m.client_name = "fuzz";
    m.output_memory_quota = 1 << 20;
    frames.emplace_back("set-options", Frame(T::PlasmaSetOptionsRequest, m));
  }
  frames.emplace_back("connect", EmptyFrame(T::PlasmaConnectRequest));
  frames.emplace_back("debug-string", EmptyFrame(T::PlasmaGetDebugStringRequest));
  Bytes subscribe = Frame(T::PlasmaSubscribeRequest, fb::PlasmaSubscribeRequestT{});
  subscribe.push_back(0);  // the byte that carries the fd
  frames.emplace_back("subscribe", subscribe);
  Bytes pipelined;
  for (const auto& [name, bytes] : frames) {
    Write(t, name, bytes);
    Append(&pipelined, bytes);
  }
  Append(&pipelined, EmptyFrame(T::PlasmaDisconnectClient));
  Write(t, "pipelined", pipelined);
}

void ManagerSeeds() {
  const std::string t = "manager_request_fuzzer";
  auto fetch = [](std::vector<std::string> ids, int64_t timeout) {
    fb::ManagerFetchRequestT m;
    m.object_ids = std::move(ids);
    m.timeout_ms = timeout;
    return Frame(fb::MessageType::ManagerFetchRequest, m);
  };
  Bytes one{0}, two{7}, empty{0};
  Append(&one, fetch({Id(1)}, 1000));
  Append(&two, fetch({Id(1), Id(2)}, -1));
  Append(&two, fetch({Id(3)}, 0));
  Append(&empty, fetch({}, -1));
  Write(t, "one", one);
  Write(t, "two-frames", two);
  Write(t, "no-ids", empty);
}

void TransferSeeds() {
  namespace tr = plasma::transfer;
  const std::string t = "transfer_protocol_fuzzer";
  tr::PullMessage pull;
  pull.transfer = 42;
  pull.id = *plasma::ObjectId::FromBinary(Id(1));
  pull.max_inline_message = 64 * 1024;
  Write(t, "pull", tr::Encode(pull));
  tr::PullMessage push = pull;
  push.push_size = 300000;
  push.push_chunk = 128 * 1024;
  Write(t, "pull-push", tr::Encode(push));
  tr::FinishMessage finish;
  finish.transfer = 42;
  finish.success = true;
  Write(t, "finish", tr::Encode(finish));
  tr::HeaderMessage inline_header;
  inline_header.transfer = 42;
  inline_header.mode = tr::Mode::kInline;
  inline_header.data_size = 10;
  inline_header.metadata_size = 4;
  inline_header.digest = std::string(8, 'd');
  const uint8_t object[] = "0123456789meta";
  Bytes inline_message(tr::EncodedSize(inline_header) + inline_header.total_size());
  tr::EncodeInline(inline_header, object, inline_message.data(), inline_message.size());
  Write(t, "header-inline", inline_message);
  tr::HeaderMessage rendezvous = inline_header;
  rendezvous.mode = tr::Mode::kRendezvous;
  rendezvous.data_size = 1 << 20;
  rendezvous.remote_address = 0x7f0000001000;
  rendezvous.rkey = std::string(16, 'k');
  Write(t, "header-rendezvous", tr::Encode(rendezvous));
  tr::HeaderMessage missing;
  missing.transfer = 7;
  missing.status = tr::HeaderStatus::kNotFound;
  Write(t, "header-not-found", tr::Encode(missing));
  tr::HeaderMessage pushed = inline_header;
  pushed.mode = tr::Mode::kPushed;
  pushed.data_size = 300000;
  Write(t, "header-pushed", tr::Encode(pushed));
  tr::HeaderMessage mismatch;
  mismatch.transfer = 7;
  mismatch.status = tr::HeaderStatus::kSizeMismatch;
  Write(t, "header-size-mismatch", tr::Encode(mismatch));
}

// Socket plugin frames, as the peer writes them (see socket_transport_fuzzer.cc
// for the flag byte and the @RKEY@@@ / @ADDR@ placeholders).
Bytes SocketFrame(plasma_socket::FrameType type, uint64_t tag, uint64_t id, uint64_t length,
                  int32_t status = 0, uint64_t remote_addr = 0, uint64_t rkey = 0) {
  plasma_socket::FrameHeader h;
  h.type = type;
  h.tag = tag;
  h.id = id;
  h.length = length;
  h.status = status;
  h.remote_addr = remote_addr;
  h.rkey = rkey;
  Bytes out(plasma_socket::kFrameHeaderSize);
  plasma_socket::EncodeFrameHeader(h, out.data());
  return out;
}

Bytes Payload(size_t n, uint8_t seed) {
  Bytes out(n);
  for (size_t i = 0; i < n; ++i) out[i] = uint8_t(seed + i);
  return out;
}

void SocketSeeds() {
  using F = plasma_socket::FrameType;
  const std::string t = "socket_transport_fuzzer";
  // Flags (socket_transport_fuzzer.cc): 1 HELLO, 2 receives first,
  // 4 rendezvous send, 8 READ, 16 eager send, 32 half-close, 64 cancel, 128 late receives.
  auto seed = [&](const std::string& name, uint8_t flags, std::vector<Bytes> frames) {
    Bytes input{flags};
    for (const Bytes& f : frames) Append(&input, f);
    Write(t, name, input);
  };
  seed("hello-only", 1, {});
  seed("bad-hello", 0, {SocketFrame(F::kHello, 0x1234, 9, 0)});
  Bytes eager = SocketFrame(F::kEager, 1, 0, 8);
  Append(&eager, Payload(8, 1));
  Bytes eager_big = SocketFrame(F::kEager, 0x205, 0, 100);
  Append(&eager_big, Payload(100, 2));
  seed("eager", 1 | 2, {eager, eager_big});
  seed("eager-unexpected", 1 | 32, {eager, eager_big});
  Bytes data = SocketFrame(F::kRendezvousData, 0, 7, 300);
  Append(&data, Payload(300, 3));
  seed("rendezvous-in", 1 | 2, {SocketFrame(F::kRendezvousRequest, 0x99, 7, 300), data});
  seed("rendezvous-in-late", 1, {SocketFrame(F::kRendezvousRequest, 0x77, 7, 300), data});
  seed("rendezvous-too-large", 1 | 2, {SocketFrame(F::kRendezvousRequest, 1, 7, 300), data});
  seed("rendezvous-two", 1 | 2 | 128,
       {SocketFrame(F::kRendezvousRequest, 0x99, 7, 300), SocketFrame(F::kRendezvousRequest, 1, 8, 10)});
  seed("rendezvous-out", 1 | 4, {SocketFrame(F::kClearToSend, 0, 1, 0)});
  seed("rendezvous-refused", 1 | 4 | 16,
       {SocketFrame(F::kClearToSend, 0, 1, 0, PLASMA_TP_ERR_MESSAGE_TOO_LARGE)});
  Bytes read_request = SocketFrame(F::kReadRequest, 0, 5, 64);
  // remote_addr at offset 32, rkey at 40 (wire_format.h).
  std::memcpy(read_request.data() + 32, "@ADDR@\x10\x00", 8);
  std::memcpy(read_request.data() + 40, "@RKEY@@@", 8);
  seed("read-request", 1 | 32, {read_request, SocketFrame(F::kReadRequest, 0, 6, 64, 0, 0, 99)});
  Bytes read_response = SocketFrame(F::kReadResponse, 0, 1, 256);
  Append(&read_response, Payload(256, 4));
  seed("read-response", 1 | 8, {read_response});
  seed("read-failed", 1 | 8 | 64, {SocketFrame(F::kReadResponse, 0, 1, 0, PLASMA_TP_ERR_BAD_RKEY)});
  seed("unknown-frame", 1 | 2, {eager, SocketFrame(F(9), 0, 0, 0)});
  Bytes many{1 | 2 | 4 | 8 | 16};
  for (const Bytes& f : {eager, eager_big, SocketFrame(F::kRendezvousRequest, 0x300, 3, 50),
                         SocketFrame(F::kClearToSend, 0, 1, 0), read_request, read_response}) {
    Append(&many, f);
  }
  Write(t, "everything", many);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
    return 2;
  }
  out_dir = argv[1];
  StoreSeeds();
  ManagerSeeds();
  TransferSeeds();
  SocketSeeds();
  return 0;
}
