// Length-prefixed frames on a stream socket: the hook's one request and shadowd's one answer on the hook socket
// (libvirt-hook/socket_deliverer.h, shadowd/hook_intake/hook_listener.h).
//
//   frame = length (4 bytes, big-endian, unsigned) + that many bytes of payload
//
// The payload is opaque here (the hook and shadowd put serialized protobuf messages in it). Read and Write run
// against an absolute deadline on the caller's Clock and stop early when `stop_fd` (e.g. a StopSignal's eventfd)
// becomes readable: a peer that sends nothing, half a header or half a payload holds the reader until the
// deadline and no longer. A length above the reader's limit is refused before anything is allocated for it.
// Both use MSG_DONTWAIT and MSG_NOSIGNAL, so the socket may be blocking or not, and a peer that went away is an
// error, never a SIGPIPE (which would kill the hook).
//
// Ownership: borrows the descriptors and the clock. Thread-safety: no state; one reader and one writer per
// socket at a time. Failure modes (each message says how far the frame got):
//   DeadlineExceeded   the deadline passed first;
//   Unavailable        the peer closed before the first byte of the frame, or the socket failed (reset, broken
//                      pipe);
//   DataLoss           the peer closed in the middle of a frame;
//   ResourceExhausted  the announced length is above `max_payload` (what follows it is not read);
//   Aborted            `stop_fd` became readable;
//   Internal           poll failed.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/status.h"

namespace vs::frame {

inline constexpr std::size_t kHeaderBytes = 4;
inline constexpr std::size_t kMaxPayloadBytes = UINT32_MAX;

using Header = std::array<unsigned char, kHeaderBytes>;

// The header of a payload of `length` bytes, and the length a header announces.
Header EncodeHeader(uint32_t length);
uint32_t DecodeHeader(const Header& header);

// `payload` with its header in front (tests and small messages; Write sends the two without copying).
// Precondition: payload.size() <= kMaxPayloadBytes.
std::string Encode(std::string_view payload);

// Sends one frame of `payload` on the connected stream socket `fd`. Precondition: payload.size() <=
// kMaxPayloadBytes. `stop_fd` < 0: none.
Status Write(int fd, std::string_view payload, MonoTime deadline, const Clock& clock, int stop_fd = -1);

// Receives one frame from `fd` and returns its payload, which is at most `max_payload` bytes. Bytes after the
// frame stay unread.
StatusOr<std::string> Read(int fd, std::size_t max_payload, MonoTime deadline, const Clock& clock, int stop_fd = -1);

}  // namespace vs::frame
