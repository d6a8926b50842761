// Places only the user shadowd runs as (root) may enter: its store, spool, fence markers and the directory of
// its control socket hold whole domain XMLs, which may carry secrets, and the socket controls every VM.
//
//   kPrivateUmask           the file-creation mask shadowd sets first thing in main: every file and directory
//                           it (RocksDB, qemu-img, ...) creates afterwards is owner-only.
//   EnsurePrivateDirectory  a directory created 0700, or an existing one of ours tightened to 0700.
//   CreatePrivateSocket     a unix socket created inside such a directory, then set to 0600 and checked.
//
// A directory owned by another user is refused, not tightened or taken over: its owner could widen it again
// or plant a file or symlink where shadowd will write, so no chmod of ours makes it private; it needs an
// administrator to decide (chown or remove it).
//
// Ownership: nothing is kept. Thread-safety: the functions may run concurrently (several hooks creating one
// spool race safely: mkdir's EEXIST is success). Failure modes: FailedPrecondition naming the path, what was
// found and what to do, when a path is not a directory (not a socket), belongs to another user, or has a
// different mode after creation; Internal naming the path and errno when a system call fails; ResourceExhausted
// when the disk is full.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>

#include "common/status.h"

namespace vs {

inline constexpr mode_t kPrivateUmask = 077;

// Makes `path` (and its missing parents, with the caller's umask) a directory owned by this process's
// effective user with mode 0700: creates it so, or tightens an existing one of ours whose mode is wider (the
// files in it then become unreachable to others whatever their own modes). A symlink is followed (an
// administrator may put the store on another disk); the directory it leads to is what is checked. A directory
// that was created is not made durable: callers that need its entry to survive a crash sync its parent.
Status EnsurePrivateDirectory(const std::string& path);

// Creates the unix socket `socket_path` by calling `create` (e.g. gRPC's bind), so that no other user can reach
// it at any moment: its directory is made private (EnsurePrivateDirectory) before `create` runs, whatever
// mode the socket is born with; afterwards the socket is set to 0600 and checked (not following a symlink) to be
// a socket of this user with exactly that mode. `create`'s failure is returned as is. An existing directory
// wider than 0700 that holds anything but the socket is refused rather than tightened: it is shared (the socket
// set to /run/shadowd.sock), and tightening /run would break everyone else's use of it.
Status CreatePrivateSocket(const std::string& socket_path, const std::function<Status()>& create);

}  // namespace vs
