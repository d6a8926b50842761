#include "shadowd/spool/spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string_view>
#include <system_error>

#include "common/private_paths.h"
#include "shadowd/policy/domain_xml.h"
#include "shadowd/store/envelope.h"

namespace vs::spool {
namespace {

constexpr std::string_view kTempPrefix = ".tmp-";
constexpr std::string_view kSequenceFile = ".sequence";
constexpr std::string_view kEventSuffix = ".event";
constexpr std::size_t kSequenceDigits = 20;  // every uint64 fits: names sort like their numbers
// Above the largest hook event (policy::kMaxHookEventBytes, about 20 MB): a bigger file is not an event.
constexpr std::size_t kMaxEventFileBytes = std::size_t{32} << 20;
static_assert(kMaxEventFileBytes >= policy::kMaxHookEventBytes + store::kEnvelopeHeaderBytes);

// Owns one file descriptor.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

 private:
  int fd_;
};

// The one translation of errno into a Status. A full disk is ResourceExhausted, which the hook
// reports as "event dropped" rather than as a broken installation.
Status ErrnoStatus(std::string_view what, const std::string& path, int err) {
  std::string message = std::string(what) + " '" + path + "': " + std::strerror(err) + " (errno " +
                        std::to_string(err) + ")";
  if (err == ENOSPC || err == EDQUOT) return ResourceExhausted(std::move(message));
  return Internal(std::move(message));
}

std::optional<std::uint64_t> ParseDigits(std::string_view digits) {
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return value;
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string EventFileName(std::uint64_t sequence, std::int64_t wall_time_unix_ms, std::uint64_t bytes) {
  char name[96];
  std::snprintf(name, sizeof(name), "%020" PRIu64 "-%013" PRId64 "-%" PRIu64 "%s", sequence, wall_time_unix_ms, bytes,
                kEventSuffix.data());
  return name;
}

// SEQUENCE-WALLMS-BYTES.event with a 20-digit, non-zero SEQUENCE; nullopt for anything else.
std::optional<SpoolEntry> ParseEventFileName(std::string_view name) {
  if (name.size() <= kSequenceDigits + 1 || !name.ends_with(kEventSuffix) || name[kSequenceDigits] != '-') {
    return std::nullopt;
  }
  std::string_view sequence_digits = name.substr(0, kSequenceDigits);
  std::string_view rest = name.substr(kSequenceDigits + 1, name.size() - kSequenceDigits - 1 - kEventSuffix.size());
  const std::size_t dash = rest.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  std::string_view wall_digits = rest.substr(0, dash);
  std::string_view bytes_digits = rest.substr(dash + 1);
  if (!AllDigits(sequence_digits) || !AllDigits(wall_digits) || !AllDigits(bytes_digits)) return std::nullopt;
  std::optional<std::uint64_t> sequence = ParseDigits(sequence_digits);
  std::optional<std::uint64_t> wall = ParseDigits(wall_digits);
  std::optional<std::uint64_t> bytes = ParseDigits(bytes_digits);
  if (!sequence || *sequence == 0 || !wall || *wall > static_cast<std::uint64_t>(INT64_MAX) || !bytes) {
    return std::nullopt;
  }
  return SpoolEntry{std::string(name), *sequence, static_cast<std::int64_t>(*wall), *bytes};
}

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("cannot write", path, errno);
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return Status::Ok();
}

// Creates `directory` (mode 0700: events hold whole domain XMLs, which may include secrets; an existing one
// is tightened to 0700 and one of another user refused, common/private_paths.h) and its missing parents, and
// makes a new directory's own entry durable, so that events synced into a fresh spool survive a crash too.
Status EnsureDirectory(const std::string& directory) {
  const bool existed = ::access(directory.c_str(), F_OK) == 0;
  VS_RETURN_IF_ERROR(EnsurePrivateDirectory(directory).Annotate("the spool"));
  if (existed) return Status::Ok();  // the usual case: nothing new to make durable
  std::string parent = std::filesystem::path(directory).parent_path().string();
  if (parent.empty()) parent = ".";
  Fd parent_fd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!parent_fd.valid() || ::fsync(parent_fd.get()) != 0) {
    return ErrnoStatus("cannot sync the parent of new spool directory", parent, errno);
  }
  return Status::Ok();
}

// The writers' lock, held until `lock_fd` is closed. Polls rather than blocks so that a writer
// stuck on a dead disk delays the next hook by at most `wait`.
Status LockWithin(int lock_fd, const std::string& lock_path, Clock& clock, Duration wait) {
  const MonoTime give_up = clock.Now() + wait;
  while (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK) return ErrnoStatus("cannot lock", lock_path, errno);
    if (clock.Now() >= give_up) {
      return Unavailable("another hook has held the spool lock '" + lock_path + "' for more than " +
                         std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(wait).count()) +
                         " ms (a stuck disk?)");
    }
    clock.SleepFor(std::chrono::milliseconds(1));
  }
  return Status::Ok();
}

// The last sequence handed out, as stored in the lock file; 0 if it is empty or unreadable (the
// caller also takes the highest sequence present in the directory, so a damaged counter cannot
// make a sequence go backwards while events remain).
std::uint64_t ReadSequenceCounter(int lock_fd) {
  char buffer[32];
  ssize_t n = ::pread(lock_fd, buffer, sizeof(buffer), 0);
  if (n <= 0) return 0;
  std::string_view text(buffer, static_cast<std::size_t>(n));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  return ParseDigits(text).value_or(0);
}

Status WriteSequenceCounter(int lock_fd, std::uint64_t sequence, const std::string& lock_path) {
  const std::string text = std::to_string(sequence) + "\n";
  const ssize_t written = ::pwrite(lock_fd, text.data(), text.size(), 0);
  if (written != static_cast<ssize_t>(text.size())) {
    return ErrnoStatus("cannot record the spool sequence in", lock_path, written < 0 ? errno : EIO);
  }
  if (::ftruncate(lock_fd, static_cast<off_t>(text.size())) != 0) {
    return ErrnoStatus("cannot record the spool sequence in", lock_path, errno);
  }
  return Status::Ok();
}

// Temp file, fsync, rename to `final_name`, fsync the directory: after a crash the event is either
// complete under its final name or not there (a temp file at most, removed by the next Append).
Status WriteDurably(int dir_fd, const std::string& directory, const std::string& temp_name,
                    const std::string& final_name, std::string_view contents) {
  const std::string temp_path = directory + "/" + temp_name;
  Status written = [&]() -> Status {
    Fd file(::openat(dir_fd, temp_name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!file.valid()) return ErrnoStatus("cannot create", temp_path, errno);
    VS_RETURN_IF_ERROR(WriteAll(file.get(), contents, temp_path));
    if (::fsync(file.get()) != 0) return ErrnoStatus("cannot sync", temp_path, errno);
    if (::renameat(dir_fd, temp_name.c_str(), dir_fd, final_name.c_str()) != 0) {
      return ErrnoStatus("cannot rename into place", directory + "/" + final_name, errno);
    }
    return Status::Ok();
  }();
  if (!written.ok()) {
    ::unlinkat(dir_fd, temp_name.c_str(), 0);  // best effort; the next Append removes it anyway
    return written;
  }
  if (::fsync(dir_fd) != 0) return ErrnoStatus("cannot sync spool directory", directory, errno);
  return Status::Ok();
}

struct DirectoryScan {
  std::size_t events = 0;
  std::uint64_t bytes = 0;
  std::uint64_t max_sequence = 0;
};

// Counts the complete events and their bytes from the names alone (a stat per file made a spool of
// thousands of events cost the hook milliseconds), and removes temp files. Only call with the writers' lock held: then
// no temp file belongs to a live writer.
StatusOr<DirectoryScan> ScanAndRemoveStaleTemps(int dir_fd, const std::string& directory) {
  const int scan_fd = ::dup(dir_fd);  // closedir closes the descriptor fdopendir is given
  if (scan_fd < 0) return ErrnoStatus("cannot list spool directory", directory, errno);
  DIR* dir = ::fdopendir(scan_fd);
  if (dir == nullptr) {
    const int err = errno;
    ::close(scan_fd);
    return ErrnoStatus("cannot list spool directory", directory, err);
  }
  std::unique_ptr<DIR, int (*)(DIR*)> closer(dir, &::closedir);
  DirectoryScan scan;
  while (const dirent* entry = ::readdir(dir)) {
    std::string_view name = entry->d_name;
    if (name.starts_with(kTempPrefix)) {
      ::unlinkat(dir_fd, entry->d_name, 0);  // best effort: a leftover only wastes space
      continue;
    }
    std::optional<SpoolEntry> event = ParseEventFileName(name);
    if (!event) continue;
    ++scan.events;
    scan.bytes += event->bytes;
    scan.max_sequence = std::max(scan.max_sequence, event->sequence);
  }
  return scan;
}

}  // namespace

Spool::Spool(std::string directory, Clock& clock, SpoolLimits limits)
    : directory_(std::move(directory)), clock_(clock), limits_(limits) {
  while (directory_.size() > 1 && directory_.back() == '/') directory_.pop_back();  // "spool/" -> "spool"
}

std::string Spool::Path(const std::string& file_name) const { return directory_ + "/" + file_name; }

StatusOr<SpoolEntry> Spool::Append(const virtshadow::v1::HookEvent& event) {
  VS_RETURN_IF_ERROR(EnsureDirectory(directory_));
  Fd dir_fd(::open(directory_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd.valid()) return ErrnoStatus("cannot open spool directory", directory_, errno);

  const std::string lock_path = Path(std::string(kSequenceFile));
  Fd lock_fd(::openat(dir_fd.get(), kSequenceFile.data(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock_fd.valid()) return ErrnoStatus("cannot open", lock_path, errno);
  VS_RETURN_IF_ERROR(LockWithin(lock_fd.get(), lock_path, clock_, limits_.lock_wait));

  VS_ASSIGN_OR_RETURN(const DirectoryScan scan, ScanAndRemoveStaleTemps(dir_fd.get(), directory_));
  const std::uint64_t sequence = std::max(ReadSequenceCounter(lock_fd.get()), scan.max_sequence) + 1;

  virtshadow::v1::HookEvent stored = event;
  stored.set_spool_sequence(sequence);
  std::string payload;
  if (!stored.SerializeToString(&payload) || payload.size() + store::kEnvelopeHeaderBytes > kMaxEventFileBytes) {
    return InvalidArgument("hook event of domain '" + event.domain_name() + "' cannot be spooled: it serializes to " +
                           std::to_string(payload.size()) + " bytes (at most " +
                           std::to_string(kMaxEventFileBytes) + ")");
  }
  const std::string contents = store::EncodeEnvelope(payload);
  if (scan.events + 1 > limits_.max_events || scan.bytes + contents.size() > limits_.max_bytes) {
    return ResourceExhausted("spool '" + directory_ + "' is full: " + std::to_string(scan.events) + " events, " +
                             std::to_string(scan.bytes) + " bytes (limits: " + std::to_string(limits_.max_events) +
                             " events, " + std::to_string(limits_.max_bytes) +
                             " bytes); start shadowd so that it drains the spool");
  }
  // Written (not synced: List syncs it) before the event exists, so any reader that sees event N
  // also finds a counter >= N; a crash in between leaves a gap in the sequences, never a reuse.
  VS_RETURN_IF_ERROR(WriteSequenceCounter(lock_fd.get(), sequence, lock_path));

  const std::string temp_name = std::string(kTempPrefix) + std::to_string(sequence);
  const std::int64_t wall_time_unix_ms = std::max<std::int64_t>(0, event.hook_wall_time_unix_ms());
  const std::string final_name = EventFileName(sequence, wall_time_unix_ms, contents.size());
  VS_RETURN_IF_ERROR(WriteDurably(dir_fd.get(), directory_, temp_name, final_name, contents));
  return SpoolEntry{final_name, sequence, wall_time_unix_ms, contents.size()};
}

StatusOr<SpoolListing> Spool::List() {
  SpoolListing listing;
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(directory_.c_str()), &::closedir);
  if (!dir) {
    if (errno == ENOENT) return listing;
    return ErrnoStatus("cannot list spool directory", directory_, errno);
  }
  // Every event listed below has its sequence in the counter already (writers record it first);
  // once synced, removing those events can no longer let a crash roll the sequence back.
  const std::string counter_path = Path(std::string(kSequenceFile));
  Fd counter(::open(counter_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (counter.valid() && ::fdatasync(counter.get()) != 0) {
    return ErrnoStatus("cannot sync the spool sequence", counter_path, errno);
  }
  while (const dirent* entry = ::readdir(dir.get())) {
    std::string_view name = entry->d_name;
    if (name == "." || name == ".." || name == kSequenceFile) continue;
    if (name.starts_with(kTempPrefix)) {
      listing.skipped.push_back(std::string(name) + ": temporary file of a write in progress or of a crashed hook; "
                                                    "not an event");
      continue;
    }
    if (std::optional<SpoolEntry> event = ParseEventFileName(name)) {
      listing.entries.push_back(std::move(*event));
    } else {
      listing.skipped.push_back(std::string(name) + ": not a spool event file (expected SEQUENCE-WALLMS-BYTES.event)");
    }
  }
  std::sort(listing.entries.begin(), listing.entries.end(), [](const SpoolEntry& a, const SpoolEntry& b) {
    return a.sequence != b.sequence ? a.sequence < b.sequence : a.file_name < b.file_name;
  });
  std::sort(listing.skipped.begin(), listing.skipped.end());
  return listing;
}

StatusOr<virtshadow::v1::HookEvent> Spool::Read(const SpoolEntry& entry) const {
  if (!ParseEventFileName(entry.file_name)) {
    return InvalidArgument("'" + entry.file_name + "' is not a spool event file name; pass an entry from List()");
  }
  const std::string path = Path(entry.file_name);
  Fd file(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!file.valid()) {
    if (errno == ENOENT) return NotFound("spool file '" + path + "' is gone (removed by another reader?)");
    return ErrnoStatus("cannot open", path, errno);
  }
  struct stat st;
  if (::fstat(file.get(), &st) != 0) return ErrnoStatus("cannot stat", path, errno);
  if (!S_ISREG(st.st_mode) || static_cast<std::uint64_t>(st.st_size) > kMaxEventFileBytes) {
    return DataLoss("spool file '" + path + "' is not a regular file of at most " +
                    std::to_string(kMaxEventFileBytes) + " bytes; it cannot hold an event");
  }
  if (static_cast<std::uint64_t>(st.st_size) != entry.bytes) {
    return DataLoss("spool file '" + path + "' is " + std::to_string(st.st_size) + " bytes but was written with " +
                    std::to_string(entry.bytes) + " (truncated or overwritten)");
  }
  std::string contents(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t filled = 0;
  while (filled < contents.size()) {
    ssize_t n = ::read(file.get(), contents.data() + filled, contents.size() - filled);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("cannot read", path, errno);
    if (n == 0) break;
    filled += static_cast<std::size_t>(n);
  }
  contents.resize(filled);
  StatusOr<std::string> payload = store::DecodeEnvelope(entry.file_name, contents);
  if (!payload.ok()) return payload.status().Annotate("spool file '" + path + "'");
  virtshadow::v1::HookEvent event;
  if (!event.ParseFromString(*payload)) {
    return DataLoss("spool file '" + path + "' has an intact envelope but its payload is not a HookEvent");
  }
  if (event.spool_sequence() != entry.sequence) {
    return DataLoss("spool file '" + path + "' holds sequence " + std::to_string(event.spool_sequence()) +
                    " but is named for sequence " + std::to_string(entry.sequence) + " (copied or renamed by hand?)");
  }
  return event;
}

Status Spool::Remove(const SpoolEntry& entry) {
  if (!ParseEventFileName(entry.file_name)) {
    return InvalidArgument("'" + entry.file_name + "' is not a spool event file name; pass an entry from List()");
  }
  const std::string path = Path(entry.file_name);
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return NotFound("spool file '" + path + "' is already gone (removed by another reader?)");
    return ErrnoStatus("cannot remove", path, errno);
  }
  return Status::Ok();
}

}  // namespace vs::spool
