#include "shadowd/nova/nova_promotion_host.h"

#include <algorithm>
#include <cctype>
#include <utility>

#include "shadowd/failover/promotion_machine.h"
#include "shadowd/lifecycle/shadow_identity.h"
#include "shadowd/policy/domain_xml.h"

namespace vs::nova {

namespace v1 = virtshadow::v1;
using v1::PromotionRecord;

namespace {

std::string Describe(const NovaServer& server) {
  return "status " + (server.status.empty() ? std::string("(none)") : server.status) + ", task " +
         (server.task_state.empty() ? std::string("none") : server.task_state) + ", host " +
         (server.host.empty() ? std::string("(none)") : server.host);
}

std::string Vm(const PromotionRecord& record) { return record.vm_name() + " (" + record.vm_uuid() + ")"; }

}  // namespace

StatusOr<std::string> ShadowConsumerUuid(const std::string& vm_uuid, const std::string& vm_name,
                                         const std::string& shadow_name) {
  const std::string prefix = vm_name + "-shadow";
  std::uint32_t index = 0;
  if (shadow_name != prefix) {
    const std::string rest = shadow_name.size() > prefix.size() && shadow_name.compare(0, prefix.size(), prefix) == 0
                                 ? shadow_name.substr(prefix.size())
                                 : "";
    if (rest.empty() || rest.size() > 9 ||
        !std::all_of(rest.begin(), rest.end(), [](unsigned char c) { return std::isdigit(c) != 0; })) {
      return InvalidArgument("the shadow '" + shadow_name + "' is not named as a shadow of " + vm_name +
                             " is (\"" + prefix + "[index]\"): its Placement consumer is unknown");
    }
    index = static_cast<std::uint32_t>(std::stoul(rest));
  }
  return lifecycle::ShadowUuid(vm_uuid, index);
}

NovaPromotionHost::NovaPromotionHost(failover::PromotionHost& inner, OpenStackApi& api, const store::Store& store,
                                     Clock& clock, NovaPromotionSettings settings, Logger::Line log)
    : inner_(inner), api_(api), store_(store), clock_(clock), settings_(std::move(settings)), log_(std::move(log)) {}

bool NovaPromotionHost::Finished(const NovaServer& server) const {
  // A stopped instance is rebuilt stopped (Nova powers on only what was not STOPPED).
  return server.host == settings_.this_host && server.task_state.empty() &&
         (server.status == "ACTIVE" || server.status == "SHUTOFF");
}

StatusOr<std::optional<PromotionRecord>> NovaPromotionHost::NovaRecord(const std::string& name) const {
  VS_ASSIGN_OR_RETURN(std::vector<PromotionRecord> records,
                      store::ScanProtos<PromotionRecord>(store_, failover::PromotionRecordKey("")));
  for (PromotionRecord& record : records) {
    if (record.vm_name() != name || failover::IsTerminal(record.phase())) continue;
    StatusOr<policy::DomainFacts> facts = policy::ParseDomain(record.promoted_xml());
    if (facts.ok() && facts->nova) return std::optional<PromotionRecord>(std::move(record));
  }
  return std::optional<PromotionRecord>();
}

StatusOr<std::optional<NovaServer>> NovaPromotionHost::Server(const std::string& vm_uuid, const std::string& vm_name) {
  StatusOr<NovaServer> server = api_.GetServer(vm_uuid);
  if (server.ok()) return std::optional<NovaServer>(std::move(*server));
  if (server.status().code() == Code::kNotFound) return std::optional<NovaServer>();
  // Never a refusal: a Keystone or Nova outage must not fail the promotion (Promotions retries kUnavailable).
  return Unavailable("asking Nova about " + vm_name + " (" + vm_uuid + "): " + server.status().ToString());
}

Status NovaPromotionHost::Define(const std::string& xml) {
  StatusOr<policy::DomainFacts> facts = policy::ParseDomain(xml);
  if (!facts.ok() || !facts->nova) return inner_.Define(xml);
  VS_ASSIGN_OR_RETURN(std::optional<NovaServer> server, Server(facts->uuid, facts->name));
  if (!server) {
    log_(facts->name + " (" + facts->uuid + ") carries Nova's metadata but Nova does not know it: promoted as any VM");
    return inner_.Define(xml);
  }
  log_(facts->name + " is Nova's instance " + facts->uuid + " (on " + server->host +
       " for Nova): not defined here, Nova defines it when it evacuates it to " + settings_.this_host);
  return Status::Ok();
}

StatusOr<failover::PromotedVmState> NovaPromotionHost::VmState(const std::string& name) {
  VS_ASSIGN_OR_RETURN(failover::PromotedVmState state, inner_.VmState(name));
  if (!state.running) return state;
  VS_ASSIGN_OR_RETURN(std::optional<PromotionRecord> record, NovaRecord(name));
  if (!record) return state;
  VS_ASSIGN_OR_RETURN(std::optional<NovaServer> server, Server(record->vm_uuid(), name));
  if (!server || Finished(*server)) return state;
  // Nova's spawn runs the domain before its evacuation is over: Start waits for Nova's word.
  log_(name + " runs here but Nova's evacuation of it is not over (" + Describe(*server) + "): waiting for Nova");
  state.running = false;
  return state;
}

Status NovaPromotionHost::Start(const std::string& name) {
  VS_ASSIGN_OR_RETURN(std::optional<PromotionRecord> record, NovaRecord(name));
  if (!record) return inner_.Start(name);
  VS_ASSIGN_OR_RETURN(std::optional<NovaServer> server, Server(record->vm_uuid(), name));
  if (!server) {
    // Not Nova's (Define defined it then, unless Nova forgot the instance in between): a promotion as any VM's.
    VS_ASSIGN_OR_RETURN(failover::PromotedVmState state, inner_.VmState(name));
    if (!state.defined) VS_RETURN_IF_ERROR(inner_.Define(record->promoted_xml()));
    return inner_.Start(name);
  }
  if (Finished(*server)) {
    log_("Nova has " + Vm(*record) + " on " + settings_.this_host + " already (" + Describe(*server) +
         "): not evacuated again");
    return Status::Ok();
  }
  if (server->status == "ERROR") {
    return FailedPrecondition("Nova has " + Vm(*record) + " in ERROR (" + Describe(*server) +
                              "): not evacuating it; see `openstack server show " + record->vm_uuid() +
                              "` for its fault, and reset its state to retry");
  }
  if (server->task_state.empty() && server->host != settings_.this_host) {
    VS_RETURN_IF_ERROR(Evacuate(*record, *server));
  } else {
    log_("Nova is evacuating " + Vm(*record) + " already (" + Describe(*server) + "): waiting for it, not asking again");
  }
  return WaitForNova(*record);
}

Status NovaPromotionHost::Evacuate(const PromotionRecord& record, const NovaServer& server) {
  const std::string& primary = record.primary_host();
  if (server.host != primary) {
    return FailedPrecondition("Nova has " + Vm(record) + " on " + server.host + ", neither this host (" +
                              settings_.this_host + ") nor the primary it is promoted from (" + primary +
                              "): not forcing " + server.host + " down, not evacuating");
  }
  StatusOr<ComputeService> service = api_.FindComputeService(primary);
  if (!service.ok()) {
    return service.status().Annotate("finding the nova-compute service of the dead host " + primary +
                                     " (to force it down before evacuating " + Vm(record) + ")");
  }
  if (!service->forced_down) {
    if (Status down = api_.SetForcedDown(service->id, true); !down.ok()) {
      return down.Annotate("forcing down the nova-compute service " + service->id + " of the dead host " + primary +
                           " (Nova refuses to evacuate " + Vm(record) + " from a host whose service is up)");
    }
    log_("nova-compute of " + primary + " (service " + service->id + ") forced down in Nova");
  }
  VS_ASSIGN_OR_RETURN(std::string consumer,
                      ShadowConsumerUuid(record.vm_uuid(), record.vm_name(), record.shadow_name()));
  if (Status deleted = api_.DeleteAllocation(consumer); !deleted.ok()) {
    return deleted.Annotate("deleting the Placement allocation of the shadow " + record.shadow_name() +
                            " (consumer " + consumer + ") before evacuating " + Vm(record));
  }
  if (Status evacuated = api_.Evacuate(record.vm_uuid(), settings_.this_host); !evacuated.ok()) {
    return evacuated.Annotate("asking Nova to evacuate " + Vm(record) + " from " + primary + " to " +
                              settings_.this_host);
  }
  log_("Nova asked to evacuate " + Vm(record) + " from " + primary + " to " + settings_.this_host +
       " (the shadow's reservation " + consumer + " released); Nova keeps the replica at its disk's path");
  return Status::Ok();
}

Status NovaPromotionHost::WaitForNova(const PromotionRecord& record) {
  const MonoTime deadline = clock_.Now() + settings_.evacuate_timeout;
  std::string last = "no answer yet";
  while (true) {
    StatusOr<NovaServer> server = api_.GetServer(record.vm_uuid());
    if (server.ok()) {
      last = Describe(*server);
      if (Finished(*server)) {
        log_("Nova evacuated " + Vm(record) + " to " + settings_.this_host + " (" + last + ")");
        return Status::Ok();
      }
      if (server->status == "ERROR") {
        return FailedPrecondition("Nova's evacuation of " + Vm(record) + " to " + settings_.this_host +
                                  " failed: the instance is in ERROR (" + last + "); see `openstack server show " +
                                  record.vm_uuid() + "` for its fault");
      }
      if (server->task_state.empty() && server->host != settings_.this_host) {
        // Nova's API sets the task before it answers evacuate: none now means Nova gave up and rolled back.
        return FailedPrecondition("Nova's evacuation of " + Vm(record) + " to " + settings_.this_host +
                                  " ended without moving it (" + last + "); see `openstack server event list " +
                                  record.vm_uuid() + "`");
      }
    } else if (server.status().code() == Code::kNotFound) {
      return FailedPrecondition("Nova no longer knows " + Vm(record) + " while evacuating it: " +
                                server.status().ToString());
    } else {
      last = "GetServer: " + server.status().ToString();  // polled again until the deadline
    }
    const MonoTime now = clock_.Now();
    if (now >= deadline) {
      return DeadlineExceeded("Nova has not finished evacuating " + Vm(record) + " to " + settings_.this_host +
                              " after " + std::to_string(ToMillis(settings_.evacuate_timeout) / 1000) +
                              " s (" + last + "); waiting again, not evacuating again");
    }
    clock_.SleepFor(std::min<Duration>(settings_.poll_interval, deadline - now));
  }
}

}  // namespace vs::nova
