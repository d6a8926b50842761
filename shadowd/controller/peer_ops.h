// PeerOps: the actions shadowd performs on ANOTHER host for the shadows of its VMs: create replica
// images, define (not start) a shadow domain, release both, and list the shadow domains a host holds.
// The production implementation talks to the target host's libvirtd over qemu+tcp (shadowd/virt);
// tests use an in-memory fake. The protection controller (controller.h) is the only caller.
//
// Contract of every implementation:
// - Each call is idempotent: repeating a call that already succeeded (shadowd may be killed with -9
//   right after a call returned, and re-issues it after the restart) succeeds again and changes
//   nothing more.
// - kUnavailable (or kDeadlineExceeded) means the host could not be reached: retryable, the same call
//   may succeed later. Any other error is final for that host (the controller gives it up).
// - The hosts do not share storage. A replica image lives at the SAME path as the primary's image, so
//   that a later live migration finds it. That path may be used on the target by something else
//   (another VM whose image happens to have the same path): CreateReplicaImage must then fail with
//   kFailedPrecondition naming the owner instead of touching the file, and ReleaseShadow must not
//   delete a path that a domain other than the released shadow uses.
//
// Ownership: the caller owns the PeerOps and keeps it alive while the controller uses it; arguments
// are borrowed for the call. Thread-safety: implementations need not be thread-safe; the controller
// calls them from one thread, one call at a time. Calls block until done (or their timeout).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "shadowd/lifecycle/events.h"

namespace vs::controller {

// A shadow domain as found on a host: what its domain XML and its link metadata say
// (DescribeShadowDomain in shadow_domain_xml.h reads it from the XML).
struct PeerShadow {
  std::string host;  // the host holding the shadow domain
  std::string shadow_uuid;
  std::string shadow_name;
  std::string primary_uuid;  // <shadow:shadow-of uuid=...>
  std::string primary_name;
  std::string primary_host;  // the host whose shadowd owns (places and releases) this shadow
  lifecycle::ShadowSize size;               // <vcpu current=...>, <currentMemory>: its reservation
  std::vector<std::string> replica_paths;   // file sources of its disks (device='disk')
  // The VM's policy from the link's `policy` attribute, as a <metadata> element in the policy namespace
  // (PromotedDomainXml's policy_xml); "" when the shadow was defined without one (older versions).
  std::string primary_policy_xml;
  bool operator==(const PeerShadow&) const = default;
};

class PeerOps {
 public:
  virtual ~PeerOps() = default;

  // Creates an empty image of `virtual_size_bytes` in `format` ("qcow2", "raw", ...) at `path` on
  // `host`. An image already there with the same virtual size and format (left by an earlier attempt)
  // is kept and the call succeeds.
  virtual Status CreateReplicaImage(const std::string& host, const std::string& path,
                                    std::uint64_t virtual_size_bytes, const std::string& format) = 0;

  // Defines (persistent, not running) the domain `domain_xml` on `host`. A definition with the same
  // UUID is replaced, so a re-issued define never makes a second domain.
  virtual Status DefineShadow(const std::string& host, const std::string& domain_xml) = 0;

  // Deletes `replica_paths` on `host`, then undefines the shadow domain (in that order: a crash in
  // between leaves the domain, which still names its images, to be found and released again). OK when
  // the domain or the images are already gone.
  virtual Status ReleaseShadow(const std::string& host, const std::string& shadow_uuid,
                               const std::string& shadow_name, const std::vector<std::string>& replica_paths) = 0;

  // Every shadow domain defined on `host` (domains without a shadow-of link are not listed).
  virtual StatusOr<std::vector<PeerShadow>> ListShadows(const std::string& host) = 0;
};

}  // namespace vs::controller
