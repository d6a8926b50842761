// The production ReplicaStorage: images handled with qemu-img, served with private qemu-nbd processes
// and read with libnbd (shadowd/nbd). Ownership: borrows the clock. Thread-safety: safe for concurrent
// calls (every call spawns its own processes and connections). Failure modes: those of qemu-img and
// libnbd, with their messages and the path or URI.
#pragma once

#include <memory>

#include "common/clock.h"
#include "shadowd/replication/replica_storage.h"

namespace vs::replication {

std::unique_ptr<ReplicaStorage> NewQemuReplicaStorage(Clock& clock);

}  // namespace vs::replication
