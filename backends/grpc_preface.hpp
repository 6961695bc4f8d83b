#pragma once
// The 63 bytes a gRPC server sent first on every connection in the incident's packet capture
// (docs/incident.md, "Excerpts of the original report": port 31425, "Len: 63"). They are three
// HTTP/2 frames, not one SETTINGS frame: SETTINGS (9 + 24 bytes), WINDOW_UPDATE (9 + 4) and
// PING (9 + 8). Setting 0xfe03 is gRPC's GRPC_ALLOW_TRUE_BINARY_METADATA (grpc/proposal G1),
// which gRPC's C core sends: the pods ran a C-core based gRPC server.
#include <array>
#include <cstdint>

namespace backlog_lab::backends {

/// The server preface of the incident's gRPC pods, byte for byte (docs/backends.md).
// clang-format off
inline constexpr std::array<uint8_t, 63> grpc_preface = {
    0x00, 0x00, 0x18, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, // SETTINGS, 24 bytes, stream 0
    0x00, 0x04, 0x00, 0x40, 0x00, 0x00,                   //   INITIAL_WINDOW_SIZE 4194304
    0x00, 0x05, 0x00, 0x40, 0x00, 0x00,                   //   MAX_FRAME_SIZE 4194304
    0x00, 0x06, 0x00, 0x00, 0x20, 0x00,                   //   MAX_HEADER_LIST_SIZE 8192
    0xfe, 0x03, 0x00, 0x00, 0x00, 0x01,                   //   0xfe03 (true binary metadata) 1
    0x00, 0x00, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, // WINDOW_UPDATE, 4 bytes, stream 0
    0x00, 0x3f, 0x00, 0x01,                               //   increment 4128769
    0x00, 0x00, 0x08, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, // PING, 8 bytes, stream 0
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,       //   opaque data, all zero
};
// clang-format on

} // namespace backlog_lab::backends
