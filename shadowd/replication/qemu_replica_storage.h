// The production ReplicaStorage: images handled with qemu-img, served with private qemu-nbd processes
// and read with libnbd (shadowd/nbd). Ownership: borrows the clock. Thread-safety: safe for concurrent
// calls (every call spawns its own processes and connections). Failure modes: those of qemu-img and
// libnbd, with their messages and the path or URI.
#pragma once

#include <memory>
#include <string>

#include "common/clock.h"
#include "common/status.h"
#include "shadowd/replication/replica_storage.h"

namespace vs::replication {

// `export_certificates`: empty, exports are read in plaintext (nbd:// URIs only); otherwise they are read with TLS
// (nbds:// URIs only) with the client certificate in that directory, in QEMU's layout (nbd::ExportTls).
// FailedPrecondition naming the file when one of its ca-cert.pem, client-cert.pem, client-key.pem is unreadable.
StatusOr<std::unique_ptr<ReplicaStorage>> NewQemuReplicaStorage(Clock& clock, std::string export_certificates);

}  // namespace vs::replication
