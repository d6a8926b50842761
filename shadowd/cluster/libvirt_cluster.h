// LibvirtCluster: the production PeerOps, ClusterView and ImageInfo of the protection controller, over the
// libvirtd of every configured host (shadowd/virt). Shadows are defined and released on peers through their
// libvirtd (qemu+tcp), and replica images are created there through libvirt's storage API: no peer shadowd is
// involved, so a peer whose shadowd is down still hosts shadows.
//
// Refresh() reads every host's capacity (node info, running domains), shadow domains and the UUIDs of its other
// domains, and keeps the snapshot that Hosts(), Shadows() and HostsDefining() serve; the daemon calls it every
// refresh interval.
//
// Ownership: borrows the runtime and clock (must outlive it); owns its connections, opened lazily (a qemu+tcp
// libvirtd must first accept a TCP connection within kDialTimeout) and kept: a connection libvirtd closed opens
// itself again (virt::Hypervisor, with the same check), and the domain watch on the local one follows it.
// Thread-safety: none; the daemon's loop thread makes every call.
// Failure modes: kUnavailable for a host that cannot be reached (the host then shows up=false);
// kNotFound for a host that is not in the configuration.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "shadowd/controller/cluster_view.h"
#include "shadowd/controller/image_info.h"
#include "shadowd/controller/peer_ops.h"
#include "shadowd/cluster/cluster_hosts.h"
#include "shadowd/cluster/domain_scan.h"
#include "shadowd/virt/hypervisor.h"

namespace vs::cluster {

class LibvirtCluster final : public controller::PeerOps, public controller::ClusterView, public controller::ImageInfo {
 public:
  // How long a host's libvirtd has to accept a TCP connection before a new connection to it is opened
  // (virt::LibvirtdAnswers); one that does not is unreachable (kUnavailable).
  static constexpr Duration kDialTimeout = std::chrono::seconds(1);

  // `local_libvirt_uri` reaches this host's libvirtd (the configuration's uri of this host is for peers).
  LibvirtCluster(ClusterHosts hosts, std::string local_libvirt_uri, virt::LibvirtRuntime& runtime, Clock& clock);

  // PeerOps
  Status CreateReplicaImage(const std::string& host, const std::string& path, uint64_t virtual_size_bytes,
                            const std::string& format) override;
  Status DefineShadow(const std::string& host, const std::string& domain_xml) override;
  Status ReleaseShadow(const std::string& host, const std::string& shadow_uuid, const std::string& shadow_name,
                       const std::vector<std::string>& replica_paths) override;
  StatusOr<std::vector<controller::PeerShadow>> ListShadows(const std::string& host) override;

  // ClusterView: the last snapshot (kUnavailable before the first Refresh()).
  StatusOr<std::vector<scheduler::Host>> Hosts() override;
  StatusOr<std::vector<controller::PeerShadow>> Shadows() override;
  StatusOr<std::vector<std::string>> HostsDefining(const std::string& vm_uuid) override;

  // ImageInfo: sizes of this host's images.
  StatusOr<uint64_t> VirtualSize(const std::string& path) override;

  // Re-reads every host. Returns true when some host's free capacity grew since the last snapshot (the
  // controller then retries unprotected VMs).
  bool Refresh();

  // Asked for every reachable host at each Refresh() and Hosts(): a draining host is offered to placement as
  // down. Called on the loop thread, so it must answer from memory (PeerDrainWatch), never by a remote call.
  void SetDrainProbe(std::function<bool(const std::string& host)> probe) { drain_probe_ = std::move(probe); }
  bool IsDraining(const std::string& host) const { return draining_.count(host) > 0; }
  // Asked like the drain probe: a host that answers true (absent from this host's membership with its Corosync:
  // crashed, cut off) is offered to placement as down, so that no new shadow goes there (a promoted VM's new
  // shadow included), without the drain's moving of the shadows it holds; Refresh() does not dial its libvirtd
  // (behind a cut link each call waited for TCP to give up, holding the loop up). Same rules: from memory only.
  void SetAbsentProbe(std::function<bool(const std::string& host)> probe) { absent_probe_ = std::move(probe); }
  // Deletes the image at `path` on `host` (an image a VM left on its former host) unless a domain there, shadow
  // or not, uses it (FailedPrecondition naming it). OK when the image is gone already.
  Status RemoveUnusedImage(const std::string& host, const std::string& path);
  // The local libvirtd (for the daemon's domain events and listing).
  StatusOr<virt::Hypervisor*> Local() { return Conn(hosts_config_.this_host); }

 private:
  // One host's domains: its shadows, and the UUIDs of every other domain.
  struct HostDomains {
    std::vector<controller::PeerShadow> shadows;
    std::set<std::string> ordinary_uuids;
  };
  StatusOr<HostDomains> ScanHost(const std::string& host);
  StatusOr<virt::Hypervisor*> Conn(const std::string& host);
  // The name of a domain on `host` that uses `path` as a disk or a backing file, if any (domain_scan.h).
  StatusOr<std::optional<std::string>> DomainUsing(virt::Hypervisor& conn, const std::string& host,
                                                   const std::string& path, ShadowsCount shadows_count);

  const ClusterHosts hosts_config_;
  const std::string local_libvirt_uri_;
  virt::LibvirtRuntime& runtime_;
  Clock& clock_;
  std::map<std::string, std::unique_ptr<virt::Hypervisor>> conns_;
  bool refreshed_ = false;
  std::vector<scheduler::Host> hosts_;
  std::vector<controller::PeerShadow> shadows_;
  std::map<std::string, std::set<std::string>> ordinary_uuids_;  // host -> UUIDs of its non-shadow domains
  std::function<bool(const std::string&)> drain_probe_;
  std::function<bool(const std::string&)> absent_probe_;
  std::set<std::string> draining_;
};

}  // namespace vs::cluster
