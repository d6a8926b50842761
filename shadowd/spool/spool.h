// The hook-event spool: where the libvirt hook leaves events durably when shadowd cannot take them,
// so that shadowd replays them, in order, once it runs again.
//
// Writers are libvirt hook processes (Append), possibly several at once for VMs starting together;
// the reader is shadowd (List, Read, Remove after a successful delivery). The spool is a directory:
//   SEQUENCE-WALLMS-BYTES.event  one event each: the store's checksummed envelope
//                                (shadowd/store/envelope.h) around a serialized virtshadow.v1.HookEvent
//                                whose spool_sequence is SEQUENCE. SEQUENCE is 20 zero-padded digits,
//                                WALLMS the hook's wall time in Unix ms, BYTES the file's size (so that
//                                the bound is checked from names alone, without a stat per file).
//   .tmp-SEQUENCE                an event being written; renamed to its final name once synced
//   .sequence                    the last sequence handed out (decimal), and the writers' flock
//
// Append is crash-safe: the event is written to a temp file, fsynced, renamed into place and the
// directory fsynced, so after a crash an event is either complete under its final name or absent
// (a temp file at most). Sequences only grow, across processes (the flock serialises writers) and
// across drains: a writer records a sequence in .sequence before its event appears, and List
// syncs .sequence before handing out entries that may then be removed, so even a crash after the
// spool was emptied cannot bring a sequence back. Replay in ascending sequence order is the order
// the hooks ran in. (The hook thus pays two syncs per event, the file and the directory; the
// counter's sync is shadowd's, off the VM start path.)
// Delivery is at-least-once: a crash between delivering and Remove replays that event again.
//
// Events may carry secrets (whole domain XMLs): the directory is 0700 (Append creates it so, or tightens
// an existing one) and every file in it 0600, whatever the writer's umask.
//
// The spool is bounded (SpoolLimits): beyond the bound Append refuses the event rather than grow
// without limit, because a full disk must never block a VM start.
//
// Ownership: a Spool holds only its path, limits and clock (which must outlive it); the constructor
// does no I/O, so the hook pays nothing for a spool it does not use. Each call opens and closes its
// own files. Thread-safety: calls on one Spool, or on several Spools over the same directory in
// one or several processes, may run concurrently.
// Failure modes: ResourceExhausted when the spool is full or the disk is (ENOSPC, EDQUOT);
// Unavailable when another writer holds the lock longer than SpoolLimits::lock_wait; DataLoss from
// Read for a damaged file (never a wrong event); FailedPrecondition from Append when the directory
// belongs to another user; Internal for other I/O errors, naming the file and errno. List never fails
// on a bad file: it skips and reports it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "proto/hook_event.pb.h"

namespace vs::spool {

struct SpoolLimits {
  std::size_t max_events = 10'000;
  std::uint64_t max_bytes = std::uint64_t{64} << 20;  // event files only, as stored
  // How long Append waits for another writer's lock before giving up: writers hold it for two
  // fsyncs, so a longer wait means a stuck disk, and the hook must not hold a VM start for it.
  Duration lock_wait = std::chrono::milliseconds(10);
};

// One complete event file, as named.
struct SpoolEntry {
  std::string file_name;  // within the spool directory
  std::uint64_t sequence = 0;
  std::int64_t wall_time_unix_ms = 0;
  std::uint64_t bytes = 0;  // the file's size as written

  bool operator==(const SpoolEntry&) const = default;
};

struct SpoolListing {
  std::vector<SpoolEntry> entries;    // ascending sequence: the replay order
  std::vector<std::string> skipped;   // one line per file that is not a complete event: its name and why
};

class Spool {
 public:
  Spool(std::string directory, Clock& clock, SpoolLimits limits = {});

  // Stores `event` with the next sequence (also set in the stored event's spool_sequence), named
  // after event.hook_wall_time_unix_ms. Creates the directory if missing. Removes temp files left
  // by crashed writers (safe: it holds the writers' lock).
  StatusOr<SpoolEntry> Append(const virtshadow::v1::HookEvent& event);

  // The complete events in replay order. Temp files (a write in progress or a crash) and foreign
  // names are never listed, only reported in `skipped`. An absent directory is an empty spool.
  // Syncs the sequence counter (see above), hence not const.
  StatusOr<SpoolListing> List();

  // The event stored in `entry`. DataLoss naming the file if it is truncated, damaged, or holds a
  // sequence other than its name's: such a file never becomes readable, so report and Remove it.
  StatusOr<virtshadow::v1::HookEvent> Read(const SpoolEntry& entry) const;

  // Deletes `entry` (after its event was delivered; take entries from List). NotFound if it is
  // already gone.
  Status Remove(const SpoolEntry& entry);

  const std::string& directory() const { return directory_; }

 private:
  std::string Path(const std::string& file_name) const;

  std::string directory_;
  Clock& clock_;
  SpoolLimits limits_;
};

}  // namespace vs::spool
