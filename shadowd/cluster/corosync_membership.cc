#include "shadowd/cluster/corosync_membership.h"

#include <corosync/cmap.h>
#include <corosync/corotypes.h>
#include <corosync/cpg.h>
#include <corosync/votequorum.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>

#include "common/status.h"

namespace vs::cluster {
namespace {

// The one translation of Corosync's error codes. A Corosync that is down, restarting or not yet formed answers
// LIBRARY, BAD_HANDLE, TRY_AGAIN or TIMEOUT: all retryable (Unavailable). ACCESS and SECURITY: shadowd may not
// use the IPC (not root, or uidgid not allowed).
Status FromCs(cs_error_t err, std::string_view call) {
  if (err == CS_OK) return Status::Ok();
  std::string name;
  Code code = Code::kInternal;
  switch (err) {
    case CS_ERR_LIBRARY: name = "LIBRARY (Corosync not running here?)"; code = Code::kUnavailable; break;
    case CS_ERR_BAD_HANDLE: name = "BAD_HANDLE"; code = Code::kUnavailable; break;
    case CS_ERR_TRY_AGAIN: name = "TRY_AGAIN"; code = Code::kUnavailable; break;
    case CS_ERR_TIMEOUT: name = "TIMEOUT"; code = Code::kUnavailable; break;
    case CS_ERR_INTERRUPT: name = "INTERRUPT"; code = Code::kUnavailable; break;
    case CS_ERR_ACCESS: name = "ACCESS"; code = Code::kFailedPrecondition; break;
    case CS_ERR_SECURITY: name = "SECURITY"; code = Code::kFailedPrecondition; break;
    case CS_ERR_INVALID_PARAM: name = "INVALID_PARAM"; code = Code::kInvalidArgument; break;
    case CS_ERR_NAME_TOO_LONG: name = "NAME_TOO_LONG"; code = Code::kInvalidArgument; break;
    case CS_ERR_NOT_EXIST: name = "NOT_EXIST"; code = Code::kNotFound; break;
    case CS_ERR_NAME_NOT_FOUND: name = "NAME_NOT_FOUND"; code = Code::kNotFound; break;
    case CS_ERR_EXIST: name = "EXIST"; code = Code::kAlreadyExists; break;
    case CS_ERR_NO_MEMORY: name = "NO_MEMORY"; code = Code::kResourceExhausted; break;
    case CS_ERR_NO_RESOURCES: name = "NO_RESOURCES"; code = Code::kResourceExhausted; break;
    case CS_ERR_NO_SPACE: name = "NO_SPACE"; code = Code::kResourceExhausted; break;
    case CS_ERR_QUEUE_FULL: name = "QUEUE_FULL"; code = Code::kResourceExhausted; break;
    default: name = "error " + std::to_string(static_cast<int>(err)); break;
  }
  return Status(code, "corosync " + std::string(call) + ": CS_ERR_" + name);
}

// One connection to the local Corosync: the three handles and what their callbacks told. Lives on the
// membership thread only; its callbacks run inside that thread's dispatch calls.
struct Session {
  cmap_handle_t cmap = 0;
  votequorum_handle_t quorum = 0;
  cpg_handle_t cpg = 0;
  bool cmap_open = false, quorum_open = false, cpg_open = false;
  cpg_name group{};
  uint32_t local_nodeid = 0;
  std::map<uint32_t, std::string> names;  // nodeid -> node name (or ring0_addr)
  std::chrono::milliseconds failure_detection{0};  // read at connect (ReadTimeouts)
  bool quorate = false;
  uint64_t ring_id = 0;
  std::set<uint32_t> quorum_nodes;  // votequorum members
  std::set<uint32_t> group_nodes;   // nodes with a shadowd in the cpg group
  std::set<uint32_t> ever_in_group;  // nodes whose shadowd was in the group at some time since we joined
  // Nodes whose shadowd left the group while their node stayed (CPG_REASON_LEAVE or _PROCDOWN, not _NODEDOWN)
  // and has not joined since (MembershipSnapshot::shadowd_stopped).
  std::set<uint32_t> process_left;
  // Our own join was seen in a group change. Until then the group's membership is not known (the quorum's
  // callbacks come first), and a snapshot would show every host, this one included, as having left.
  bool joined = false;

  Session() = default;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session() {
    // Finalizing the cpg handle leaves the group; errors here mean Corosync is gone already.
    if (cpg_open) cpg_finalize(cpg);
    if (quorum_open) votequorum_finalize(quorum);
    if (cmap_open) cmap_finalize(cmap);
  }

  // Re-reads the nodelist: nodelist.node.N.{nodeid,name,ring0_addr} for N = 0, 1, ... until one is missing.
  Status ReadNames() {
    std::map<uint32_t, std::string> found;
    for (int i = 0; i < 1024; ++i) {
      const std::string prefix = "nodelist.node." + std::to_string(i) + ".";
      uint32_t nodeid = 0;
      cs_error_t err = cmap_get_uint32(cmap, (prefix + "nodeid").c_str(), &nodeid);
      if (err == CS_ERR_NOT_EXIST) break;
      VS_RETURN_IF_ERROR(FromCs(err, "cmap_get " + prefix + "nodeid"));
      for (const char* key : {"name", "ring0_addr"}) {
        char* value = nullptr;
        if (cmap_get_string(cmap, (prefix + key).c_str(), &value) == CS_OK && value != nullptr) {
          found[nodeid] = value;
          std::free(value);  // cmap_get_string hands over a malloc'd copy
          break;
        }
      }
    }
    names = std::move(found);
    return Status::Ok();
  }

  // Corosync's effective timeouts (runtime.config.totem.*: what it computed from totem.token, its
  // token_coefficient and the node count), not the configured totem.token.
  Status ReadTimeouts() {
    uint32_t token_ms = 0, consensus_ms = 0;
    VS_RETURN_IF_ERROR(FromCs(cmap_get_uint32(cmap, "runtime.config.totem.token", &token_ms),
                              "cmap_get runtime.config.totem.token"));
    VS_RETURN_IF_ERROR(FromCs(cmap_get_uint32(cmap, "runtime.config.totem.consensus", &consensus_ms),
                              "cmap_get runtime.config.totem.consensus"));
    failure_detection = std::chrono::milliseconds(token_ms) + std::chrono::milliseconds(consensus_ms);
    return Status::Ok();
  }

  std::string NameOf(uint32_t nodeid) {
    if (!names.count(nodeid)) ReadNames().IgnoreError();  // a node added to the nodelist since we connected
    auto found = names.find(nodeid);
    return found != names.end() ? found->second : "node" + std::to_string(nodeid);
  }

  MembershipSnapshot Snapshot() {
    MembershipSnapshot snapshot;
    snapshot.connected = true;
    snapshot.quorate = quorate;
    snapshot.ring_id = ring_id;
    snapshot.this_node = NameOf(local_nodeid);
    snapshot.failure_detection = failure_detection;
    for (uint32_t node : group_nodes) snapshot.members.push_back(NameOf(node));
    for (uint32_t node : quorum_nodes) snapshot.corosync_members.push_back(NameOf(node));
    // A node in the partition whose shadowd was never in the group since we joined has none running. Not every
    // node outside the group: a node that went down leaves the group before the quorum says so.
    std::set<uint32_t> stopped = process_left;
    for (uint32_t node : quorum_nodes) {
      if (!group_nodes.count(node) && !ever_in_group.count(node)) stopped.insert(node);
    }
    for (uint32_t node : stopped) snapshot.shadowd_stopped.push_back(NameOf(node));
    for (auto* list : {&snapshot.members, &snapshot.corosync_members, &snapshot.shadowd_stopped}) {
      std::sort(list->begin(), list->end());
      list->erase(std::unique(list->begin(), list->end()), list->end());
    }
    return snapshot;
  }
};

Session* SessionOf(uint64_t context) { return reinterpret_cast<Session*>(static_cast<uintptr_t>(context)); }

void OnQuorum(votequorum_handle_t, uint64_t context, uint32_t quorate, uint32_t entries, votequorum_node_t nodes[]) {
  Session* session = SessionOf(context);
  session->quorate = quorate != 0;
  session->quorum_nodes.clear();
  for (uint32_t i = 0; i < entries; ++i) {
    if (nodes[i].state == VOTEQUORUM_NODESTATE_MEMBER) session->quorum_nodes.insert(nodes[i].nodeid);
  }
}

void OnNodeList(votequorum_handle_t, uint64_t context, votequorum_ring_id_t ring_id, uint32_t entries,
                uint32_t nodes[]) {
  Session* session = SessionOf(context);
  session->ring_id = ring_id.seq;
  session->quorum_nodes.clear();
  for (uint32_t i = 0; i < entries; ++i) session->quorum_nodes.insert(nodes[i]);
}

void OnGroupChange(cpg_handle_t handle, const cpg_name*, const cpg_address* members, size_t member_count,
                   const cpg_address* left, size_t left_count, const cpg_address*, size_t) {
  void* context = nullptr;
  if (cpg_context_get(handle, &context) != CS_OK || context == nullptr) return;
  Session* session = static_cast<Session*>(context);
  for (size_t i = 0; i < left_count; ++i) {
    if (left[i].reason == CPG_REASON_LEAVE || left[i].reason == CPG_REASON_PROCDOWN) {
      session->process_left.insert(left[i].nodeid);
    }
  }
  session->group_nodes.clear();
  for (size_t i = 0; i < member_count; ++i) {
    session->group_nodes.insert(members[i].nodeid);
    session->ever_in_group.insert(members[i].nodeid);
    session->process_left.erase(members[i].nodeid);
    if (members[i].nodeid == session->local_nodeid && members[i].pid == static_cast<uint32_t>(getpid())) {
      session->joined = true;
    }
  }
}

void OnDeliver(cpg_handle_t, const cpg_name*, uint32_t, uint32_t, void*, size_t) {
  // Nobody sends to the group: membership is all it is for.
}

Status Connect(Session& session, const std::string& group) {
  VS_RETURN_IF_ERROR(FromCs(cmap_initialize(&session.cmap), "cmap_initialize"));
  session.cmap_open = true;
  VS_RETURN_IF_ERROR(session.ReadNames());
  VS_RETURN_IF_ERROR(session.ReadTimeouts());

  votequorum_callbacks_t quorum_callbacks{};
  quorum_callbacks.votequorum_quorum_notify_fn = OnQuorum;
  quorum_callbacks.votequorum_nodelist_notify_fn = OnNodeList;
  VS_RETURN_IF_ERROR(FromCs(votequorum_initialize(&session.quorum, &quorum_callbacks), "votequorum_initialize"));
  session.quorum_open = true;
  VS_RETURN_IF_ERROR(FromCs(votequorum_trackstart(session.quorum,
                                                  static_cast<uint64_t>(reinterpret_cast<uintptr_t>(&session)),
                                                  CS_TRACK_CURRENT | CS_TRACK_CHANGES),
                            "votequorum_trackstart"));

  cpg_callbacks_t cpg_callbacks{};
  cpg_callbacks.cpg_deliver_fn = OnDeliver;
  cpg_callbacks.cpg_confchg_fn = OnGroupChange;
  VS_RETURN_IF_ERROR(FromCs(cpg_initialize(&session.cpg, &cpg_callbacks), "cpg_initialize"));
  session.cpg_open = true;
  VS_RETURN_IF_ERROR(FromCs(cpg_context_set(session.cpg, &session), "cpg_context_set"));
  VS_RETURN_IF_ERROR(FromCs(cpg_local_get(session.cpg, &session.local_nodeid), "cpg_local_get"));
  if (group.size() >= CPG_MAX_NAME_LENGTH) return InvalidArgument("cpg group name '" + group + "' is too long");
  session.group.length = static_cast<uint32_t>(group.size());
  std::memcpy(session.group.value, group.data(), group.size());
  // TRY_AGAIN while Corosync is still forming its ring: retried a few times before the whole connect is.
  cs_error_t joined = CS_ERR_TRY_AGAIN;
  for (int attempt = 0; attempt < 10 && joined == CS_ERR_TRY_AGAIN; ++attempt) {
    joined = cpg_join(session.cpg, &session.group);
    if (joined == CS_ERR_TRY_AGAIN) usleep(100'000);
  }
  return FromCs(joined, "cpg_join " + group);
}

// Dispatches whatever `fd` has ready for `dispatch`; a failure or a hang-up means Corosync went away.
template <typename Handle>
Status DispatchReady(const pollfd& fd, Handle handle, cs_error_t (*dispatch)(Handle, cs_dispatch_flags_t),
                     std::string_view call) {
  if (fd.revents & POLLIN) {
    cs_error_t err = dispatch(handle, CS_DISPATCH_ALL);
    if (err != CS_OK && err != CS_ERR_TRY_AGAIN) return FromCs(err, call);
  }
  if (fd.revents & (POLLHUP | POLLERR | POLLNVAL)) return Unavailable(std::string(call) + ": Corosync hung up");
  return Status::Ok();
}

}  // namespace

CorosyncMembership::CorosyncMembership(CorosyncOptions options, std::function<void(const std::string&)> log)
    : options_(std::move(options)), log_(std::move(log)) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0) {
    wake_read_ = fds[0];
    wake_write_ = fds[1];
  }
}

CorosyncMembership::~CorosyncMembership() {
  Stop();
  if (wake_read_ >= 0) close(wake_read_);
  if (wake_write_ >= 0) close(wake_write_);
}

MembershipSnapshot CorosyncMembership::Current() const {
  MutexLock lock(mu_);
  return snapshot_;
}

void CorosyncMembership::Start(Listener on_change) {
  if (thread_.joinable()) return;
  thread_ = std::thread([this, on_change = std::move(on_change)] { Run(on_change); });
}

void CorosyncMembership::Stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  if (wake_write_ >= 0) {
    const char byte = 1;
    [[maybe_unused]] ssize_t written = write(wake_write_, &byte, 1);
  }
  if (thread_.joinable()) thread_.join();
}

bool CorosyncMembership::WaitForStop(Duration timeout) {
  pollfd wake{.fd = wake_read_, .events = POLLIN, .revents = 0};
  poll(&wake, 1, static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count()));
  MutexLock lock(mu_);
  return stopping_;
}

void CorosyncMembership::Publish(const MembershipSnapshot& snapshot, const Listener& on_change) {
  {
    MutexLock lock(mu_);
    if (snapshot_ == snapshot) return;
    snapshot_ = snapshot;
  }
  if (on_change) on_change(snapshot);
}

void CorosyncMembership::Run(Listener on_change) {
  std::string last_failure;
  while (true) {
    {
      MutexLock lock(mu_);
      if (stopping_) break;
    }
    Session session;
    Status status = Connect(session, options_.group);
    int cpg_fd = -1, quorum_fd = -1;
    if (status.ok()) status = FromCs(cpg_fd_get(session.cpg, &cpg_fd), "cpg_fd_get");
    if (status.ok()) status = FromCs(votequorum_fd_get(session.quorum, &quorum_fd), "votequorum_fd_get");
    if (status.ok()) {
      log_("connected to Corosync as node " + session.NameOf(session.local_nodeid) + ", joined group " +
           options_.group);
      last_failure.clear();
      // The current state arrives as callbacks (CS_TRACK_CURRENT, the join's own group change).
      while (status.ok()) {
        pollfd fds[3] = {{cpg_fd, POLLIN, 0}, {quorum_fd, POLLIN, 0}, {wake_read_, POLLIN, 0}};
        if (poll(fds, 3, -1) < 0) {
          if (errno == EINTR) continue;
          status = Internal(std::string("poll: ") + std::strerror(errno));
          break;
        }
        if (fds[2].revents) {
          MutexLock lock(mu_);
          if (stopping_) break;
        }
        status = DispatchReady(fds[0], session.cpg, cpg_dispatch, "cpg_dispatch");
        if (status.ok()) status = DispatchReady(fds[1], session.quorum, votequorum_dispatch, "votequorum_dispatch");
        if (status.ok() && session.joined) Publish(session.Snapshot(), on_change);
      }
      if (status.ok()) break;  // stopping; the session leaves the group as it closes
    }
    if (status.ToString() != last_failure) {
      log_("Corosync unreachable, retrying every " +
           std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(options_.reconnect_interval).count()) +
           " ms: " + status.ToString());
      last_failure = status.ToString();
    }
    Publish(MembershipSnapshot{}, on_change);
    if (WaitForStop(options_.reconnect_interval)) break;
  }
}

}  // namespace vs::cluster
