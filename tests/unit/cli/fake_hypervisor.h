// A virt::Hypervisor in memory for the tag/untag tests: domains with a state and an optional policy
// element in <metadata>, every SetMetadata call recorded, and injectable failures. The state lives in
// a FakeLibvirt that outlives the connections (Run() owns and destroys its Hypervisor), so the test
// inspects it afterwards. Only what the CLI calls is implemented; the rest fails with Internal.
// Test-only; not thread-safe.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "shadowd/policy/policy.h"
#include "shadowd/virt/hypervisor.h"

namespace vs::cli::testing {

struct FakeDomain {
  virt::DomainState state = virt::DomainState::kRunning;
  // What libvirt keeps in <metadata> for the policy namespace, verbatim (with its xmlns); empty: none.
  std::string policy_metadata;
  std::string uuid = "6695eb01-f6a4-8304-79aa-97f2502e193f";
  std::string devices_xml;  // the <devices> element's children (disks), verbatim
};

struct MetadataWrite {
  std::string domain;
  std::string ns_uri;
  std::string key;
  std::string xml;  // empty: removal
};

struct FakeLibvirt {
  std::map<std::string, FakeDomain> domains;
  std::vector<MetadataWrite> writes;
  Status set_metadata_error;  // returned by SetMetadata when not OK (nothing is written then)
  std::vector<std::string> actions;  // "destroy NAME", "suspend NAME", "resume NAME", "undefine NAME", in call order
  Status suspend_error;               // returned by SuspendDomain when not OK (the state stays)
  Status xml_error;                   // returned by GetDomainXml when not OK
};

// `attributes` as they would appear in the element, e.g. R"(vcpus="2")".
inline std::string PolicyMetadata(const std::string& attributes) {
  return "<shadow:policy xmlns:shadow=\"" + std::string(policy::kPolicyNamespace) + "\" " + attributes + "/>";
}

class FakeHypervisor final : public virt::Hypervisor {
 public:
  explicit FakeHypervisor(FakeLibvirt& libvirt) : libvirt_(libvirt) {}

  const std::string& uri() const override { return uri_; }
  StatusOr<std::string> Hostname() override { return Unused("Hostname"); }
  StatusOr<std::vector<std::string>> ListDomainNames() override {
    std::vector<std::string> names;
    for (const auto& [name, domain] : libvirt_.domains) names.push_back(name);
    return names;
  }
  StatusOr<std::string> DefineDomain(const std::string&) override { return Unused("DefineDomain"); }
  Status StartDomain(const std::string&) override { return Unused("StartDomain"); }
  // Destroy, Suspend and Resume change the state as libvirt would (the fencing tests, tests/unit/failover).
  Status DestroyDomain(const std::string& name) override {
    VS_ASSIGN_OR_RETURN(FakeDomain * domain, Find(name));
    libvirt_.actions.push_back("destroy " + name);
    domain->state = virt::DomainState::kShutoff;
    return Status::Ok();
  }
  Status SuspendDomain(const std::string& name) override {
    VS_ASSIGN_OR_RETURN(FakeDomain * domain, Find(name));
    libvirt_.actions.push_back("suspend " + name);
    if (!libvirt_.suspend_error.ok()) return libvirt_.suspend_error;
    if (domain->state == virt::DomainState::kPaused) return Status::Ok();
    if (domain->state != virt::DomainState::kRunning) return FailedPrecondition(name + " does not run");
    domain->state = virt::DomainState::kPaused;
    return Status::Ok();
  }
  Status ResumeDomain(const std::string& name) override {
    VS_ASSIGN_OR_RETURN(FakeDomain * domain, Find(name));
    libvirt_.actions.push_back("resume " + name);
    if (domain->state == virt::DomainState::kRunning) return Status::Ok();
    if (domain->state != virt::DomainState::kPaused) return FailedPrecondition(name + " does not run");
    domain->state = virt::DomainState::kRunning;
    return Status::Ok();
  }
  Status SetVcpusLive(const std::string&, uint32_t) override { return Unused("SetVcpusLive"); }
  Status SetMemoryLive(const std::string&, uint64_t) override { return Unused("SetMemoryLive"); }
  // Removes the domain as libvirt would (its images are not the fake's business).
  Status UndefineDomain(const std::string& name) override {
    VS_RETURN_IF_ERROR(Find(name).status());
    libvirt_.actions.push_back("undefine " + name);
    libvirt_.domains.erase(name);
    return Status::Ok();
  }

  StatusOr<virt::DomainState> GetDomainState(const std::string& name) override {
    VS_ASSIGN_OR_RETURN(FakeDomain * domain, Find(name));
    return domain->state;
  }

  StatusOr<std::string> GetDomainXml(const std::string& name) override {
    if (!libvirt_.xml_error.ok()) return libvirt_.xml_error;
    VS_ASSIGN_OR_RETURN(FakeDomain * domain, Find(name));
    return "<domain type='kvm'><name>" + name + "</name><uuid>" + domain->uuid +
           "</uuid><memory unit='KiB'>1048576</memory>"
           "<vcpu>2</vcpu><metadata>" +
           domain->policy_metadata + "</metadata>" +
           (domain->devices_xml.empty() ? "" : "<devices>" + domain->devices_xml + "</devices>") + "</domain>";
  }

  StatusOr<virt::NodeCapacity> GetNodeCapacity() override { return Unused("GetNodeCapacity"); }
  StatusOr<std::optional<std::string>> GetMetadata(const std::string&, const std::string&) override {
    return Unused("GetMetadata");
  }

  Status SetMetadata(const std::string& name, const std::string& ns_uri, const std::string& key,
                     const std::string& xml) override {
    VS_ASSIGN_OR_RETURN(FakeDomain * domain, Find(name));
    if (!libvirt_.set_metadata_error.ok()) return libvirt_.set_metadata_error;
    libvirt_.writes.push_back({name, ns_uri, key, xml});
    // libvirt stores "<policy .../>" as "<KEY:policy xmlns:KEY="NS" .../>".
    const std::string attributes = xml.empty() ? "" : xml.substr(std::string_view("<policy").size());
    domain->policy_metadata =
        xml.empty() ? "" : "<" + key + ":policy xmlns:" + key + "=\"" + ns_uri + "\"" + attributes;
    return Status::Ok();
  }

  Status CreateImage(const std::string&, uint64_t, virt::ImageFormat) override { return Unused("CreateImage"); }
  Status DeleteImage(const std::string&) override { return Unused("DeleteImage"); }
  StatusOr<uint64_t> ImageVirtualSize(const std::string&) override { return Unused("ImageVirtualSize"); }
  StatusOr<std::unique_ptr<virt::Subscription>> WatchDomains(std::function<void(const virt::DomainEvent&)>) override {
    return Unused("WatchDomains");
  }
  StatusOr<virt::MigrationResult> MigrateLive(const std::string&, const std::string&,
                                              const virt::MigrationOptions&) override {
    return Unused("MigrateLive");
  }
  StatusOr<virt::MigrationProgress> GetMigrationProgress(const std::string&) override {
    return Unused("GetMigrationProgress");
  }
  StatusOr<std::optional<virt::MigrationStats>> AwaitOutgoingMigration(const std::string&, Duration, bool) override {
    return Unused("AwaitOutgoingMigration");
  }
  StatusOr<std::optional<virt::MigrationStats>> GetCompletedIncomingMigration(const std::string&) override {
    return Unused("GetCompletedIncomingMigration");
  }
  StatusOr<virt::GuestActivity> GetGuestActivity(const std::string&, std::chrono::seconds) override {
    return Unused("GetGuestActivity");
  }
  Status CreateDiskOnlySnapshot(const std::string&, const std::vector<virt::SnapshotOverlay>&) override {
    return Unused("CreateDiskOnlySnapshot");
  }
  Status BlockCommitActive(const std::string&, const std::string&, std::chrono::seconds) override {
    return Unused("BlockCommitActive");
  }
  Status BeginPullBackup(const virt::PullBackupRequest&) override { return Unused("BeginPullBackup"); }
  StatusOr<std::optional<std::string>> GetBackupXml(const std::string&) override { return Unused("GetBackupXml"); }
  Status EndBackup(const std::string&) override { return Unused("EndBackup"); }
  StatusOr<std::vector<std::string>> ListCheckpoints(const std::string&) override {
    return Unused("ListCheckpoints");
  }
  Status DeleteCheckpoint(const std::string&, const std::string&) override { return Unused("DeleteCheckpoint"); }
  Status RedefineCheckpoint(const std::string&, const std::string&, const std::vector<std::string>&) override {
    return Unused("RedefineCheckpoint");
  }
  Status DeleteCheckpointMetadata(const std::string&, const std::string&) override {
    return Unused("DeleteCheckpointMetadata");
  }
  Status DiscardForeignBitmap(const std::string&, const std::string&, const std::string&) override {
    return Unused("DiscardForeignBitmap");
  }

 private:
  static Status Unused(const std::string& method) { return Internal(method + " is not used by the CLI"); }

  StatusOr<FakeDomain*> Find(const std::string& name) {
    auto it = libvirt_.domains.find(name);
    if (it == libvirt_.domains.end()) return NotFound("domain '" + name + "' on fake:///: Domain not found");
    return &it->second;
  }

  FakeLibvirt& libvirt_;
  std::string uri_ = "fake:///";
};

}  // namespace vs::cli::testing
