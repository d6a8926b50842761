// NovaPolicyWatcher: which protection policy Nova's records name for each Nova instance on this host (its flavor's
// extra spec, its image's property, its own metadata: nova_policy.h), kept in memory for the controller, which must
// not wait on Nova (ControllerOptions::external_policy).
//
// The controller asks Lookup for an untagged Nova instance whenever it judges it. An instance not known yet is
// answered "unknown" (nullopt) and fetched at once on the watcher's thread; every known one is fetched again every
// `refresh` (a flavor cannot change under a server, but `openstack server set --property` and image properties
// can), and a failed fetch is tried again after `refresh` too. Whenever an instance's answer is new or changed, `on_change(vm_uuid)` is called (from the watcher's thread:
// the caller posts it to the controller's loop, which judges the VM again). An instance the controller has not
// asked about for `forget_after` is dropped.
//
// Nova unreachable: the last answer stays (a protected VM stays protected), and the error is logged once until a
// fetch works again. An instance Nova does not know (404) is not protected by it.
//
// Ownership: borrows the OpenStack client and the clock, which must outlive it. Thread-safety: Lookup from any
// thread; RefreshOnce from one thread at a time (the watcher's own, or a test's when Start was not called).
// Failure modes: none escape; fetch errors are logged and retried at the next refresh.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "common/clock.h"
#include "common/logger.h"
#include "common/thread_annotations.h"
#include "shadowd/controller/controller.h"
#include "shadowd/nova/nova_options.h"
#include "shadowd/nova/openstack_api.h"
#include "shadowd/policy/policy.h"

namespace vs::nova {

struct NovaPolicyWatcherOptions {
  NovaOptions nova;
  std::map<std::string, policy::Policy> named_policies;  // [policy.NAME] of shadowd.conf
  Duration refresh = std::chrono::seconds(30);
  Duration forget_after = std::chrono::minutes(10);
};

class NovaPolicyWatcher {
 public:
  NovaPolicyWatcher(OpenStackApi& api, NovaPolicyWatcherOptions options, Clock& clock,
                    std::function<void(const std::string& vm_uuid)> on_change, Logger::Line log);
  ~NovaPolicyWatcher();  // stops the thread
  NovaPolicyWatcher(const NovaPolicyWatcher&) = delete;
  NovaPolicyWatcher& operator=(const NovaPolicyWatcher&) = delete;

  void Start() VS_EXCLUDES(mu_);
  void Stop() VS_EXCLUDES(mu_);

  // The answer for a Nova instance (facts.nova set), or nullopt for a domain Nova does not manage and while the
  // answer is not known yet (it is fetched then).
  std::optional<controller::ExternalPolicy> Lookup(const std::string& vm_uuid, const policy::DomainFacts& facts)
      VS_EXCLUDES(mu_);

  // Fetches every instance asked about and not known yet, and every known one due for a refresh.
  void RefreshOnce() VS_EXCLUDES(mu_);

 private:
  struct Entry {
    std::optional<controller::ExternalPolicy> answer;
    std::optional<MonoTime> attempted;  // the last fetch, whether it worked or not
    MonoTime asked{};
  };
  // Nova's answer for one instance; nullopt when Nova could not be asked (the last answer stays).
  std::optional<controller::ExternalPolicy> Fetch(const std::string& vm_uuid);
  void Run() VS_EXCLUDES(mu_);

  OpenStackApi& api_;
  const NovaPolicyWatcherOptions options_;
  Clock& clock_;
  const std::function<void(const std::string&)> on_change_;
  const Logger::Line log_;

  Mutex mu_;
  CondVar wake_;
  std::map<std::string, Entry> entries_ VS_GUARDED_BY(mu_);
  bool stopping_ VS_GUARDED_BY(mu_) = false;
  bool failing_ = false;  // the last fetch failed (logged once); the refreshing thread's only
  std::thread thread_;
};

}  // namespace vs::nova
