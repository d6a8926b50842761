#include "shadowd/nova/nova_policy_watcher.h"

#include <utility>
#include <vector>

#include "shadowd/nova/nova_policy.h"

namespace vs::nova {

namespace {

bool SameAnswer(const std::optional<controller::ExternalPolicy>& a, const std::optional<controller::ExternalPolicy>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a) return true;
  if (a->source != b->source || a->policy.ok() != b->policy.ok()) return false;
  if (!a->policy.ok()) return a->policy.status().message() == b->policy.status().message();
  return *a->policy == *b->policy;
}

}  // namespace

NovaPolicyWatcher::NovaPolicyWatcher(OpenStackApi& api, NovaPolicyWatcherOptions options, Clock& clock,
                                     std::function<void(const std::string& vm_uuid)> on_change, Logger::Line log)
    : api_(api), options_(std::move(options)), clock_(clock), on_change_(std::move(on_change)), log_(std::move(log)) {}

NovaPolicyWatcher::~NovaPolicyWatcher() { Stop(); }

void NovaPolicyWatcher::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Run(); });
}

void NovaPolicyWatcher::Stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::optional<controller::ExternalPolicy> NovaPolicyWatcher::Lookup(const std::string& vm_uuid,
                                                                    const policy::DomainFacts& facts) {
  if (!facts.nova) return std::nullopt;
  bool wanted = false;
  std::optional<controller::ExternalPolicy> answer;
  {
    MutexLock lock(mu_);
    auto [entry, added] = entries_.try_emplace(vm_uuid);
    entry->second.asked = clock_.Now();
    wanted = added;
    answer = entry->second.answer;
  }
  if (wanted) wake_.notify_all();
  return answer;
}

std::optional<controller::ExternalPolicy> NovaPolicyWatcher::Fetch(const std::string& vm_uuid) {
  StatusOr<NovaServer> server = api_.GetServer(vm_uuid);
  if (!server.ok() && server.status().code() == Code::kNotFound) {
    return controller::ExternalPolicy{.policy = std::optional<policy::Policy>(),
                                      .source = "Nova has no instance " + vm_uuid};
  }
  if (!server.ok()) {
    if (!failing_) log_("cannot read Nova's records of instance " + vm_uuid + ": " + server.status().ToString());
    failing_ = true;
    return std::nullopt;
  }
  std::map<std::string, std::string> image_properties;
  if (!server->image_id.empty()) {
    StatusOr<std::map<std::string, std::string>> properties = api_.GetImageProperties(server->image_id);
    if (properties.ok()) {
      image_properties = std::move(properties).value();
    } else if (properties.status().code() != Code::kNotFound) {  // a deleted image names no policy
      if (!failing_) log_("cannot read the image of Nova instance " + vm_uuid + ": " + properties.status().ToString());
      failing_ = true;
      return std::nullopt;
    }
  }
  if (failing_) log_("Nova's records can be read again");
  failing_ = false;
  NovaPolicyResult result = ResolveNovaPolicy(*server, image_properties, options_.named_policies, options_.nova);
  return controller::ExternalPolicy{.policy = std::move(result.policy), .source = std::move(result.source)};
}

void NovaPolicyWatcher::RefreshOnce() {
  const MonoTime now = clock_.Now();
  std::vector<std::string> due;
  {
    MutexLock lock(mu_);
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (now - it->second.asked > options_.forget_after) {
        it = entries_.erase(it);
        continue;
      }
      if (!it->second.attempted || now - *it->second.attempted >= options_.refresh) due.push_back(it->first);
      ++it;
    }
  }
  for (const std::string& vm_uuid : due) {
    std::optional<controller::ExternalPolicy> answer = Fetch(vm_uuid);
    bool changed = false;
    {
      MutexLock lock(mu_);
      auto entry = entries_.find(vm_uuid);
      if (entry == entries_.end()) continue;  // forgotten meanwhile
      entry->second.attempted = now;
      if (!answer) continue;  // the last answer stays
      changed = !SameAnswer(entry->second.answer, answer);
      entry->second.answer = std::move(answer);
    }
    if (changed) on_change_(vm_uuid);
  }
}

void NovaPolicyWatcher::Run() {
  for (;;) {
    RefreshOnce();
    MutexLock lock(mu_);
    if (stopping_) return;
    // Woken early by a Lookup of an instance not known yet; a failed fetch is retried at the next refresh.
    wake_.wait_for(mu_, std::chrono::seconds(1));
    if (stopping_) return;
  }
}

}  // namespace vs::nova
