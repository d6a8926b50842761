// Shared test data of the lifecycle tests: one representative record per state and the constants
// the expected commands are written with. Values are literals (the shadow UUID was computed once,
// independently, with Python's uuid.uuid5), never derived from the code under test.
#pragma once

#include <chrono>
#include <ostream>
#include <string>

#include "shadowd/lifecycle/lifecycle.h"

namespace vs::lifecycle {

// gtest prints commands through this (found by argument-dependent lookup).
inline void PrintTo(const Command& command, std::ostream* os) { *os << ToString(command); }

namespace fixtures {

namespace v1 = virtshadow::v1;
using namespace std::chrono_literals;

inline const WallTime kNow = WallTime(std::chrono::seconds(1'800'000'000));
inline constexpr Duration kGrace = 10min;

inline const std::string kVmUuid = "6f9619ff-8b86-d011-b42d-00c04fc964ff";
inline const std::string kShadowUuid = "7f3bc091-3ce0-5dab-9b24-f4d1a600a56e";  // uuid5(ns, kVmUuid + "/0")
inline const std::string kVmName = "web";
inline const std::string kShadowName = "web-shadow";
inline const std::string kPrimary = "hostA";
inline const std::string kTarget = "hostB";

inline const std::string kPolicyA = R"(<policy enabled="yes" vcpus="50%" memory="50%"/>)";
inline const ShadowSize kSizeA{2, 2 * 1024 * 1024};
inline const std::string kPolicyB = R"(<policy enabled="yes" vcpus="1" memory="1GiB"/>)";
inline const ShadowSize kSizeB{1, 1024 * 1024};

inline std::int64_t UnixMs(WallTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

inline void SetShadow(v1::VmRecord& r, const std::string& host, v1::ShadowState state) {
  v1::ShadowAssignment* a = r.add_shadows();
  a->set_index(0);
  a->set_host(host);
  a->set_domain_uuid(kShadowUuid);
  a->set_domain_name(kShadowName);
  a->set_state(state);
}

// The representative record of `state` used by the table test:
//   NoRecord      blank, VM running
//   PolicyInvalid VM running, tag invalid
//   Unplaced      VM running and tagged with policy A
//   Unprotected   as Unplaced, one failure so far, retry due 1 s before kNow
//   Placing       shadow on hostB being defined
//   Protected     shadow defined on hostB
//   GracePeriod   VM stopped, shadow kept, deadline 1 s before kNow
//   Releasing     VM stopped (not wanted), shadow being released
//   Released      VM stopped and untagged
inline v1::VmRecord RecordIn(v1::ProtectionState state) {
  v1::VmRecord r = NewVmRecord(kVmUuid, kVmName, kPrimary, /*vm_running=*/true);
  if (state == v1::PROTECTION_STATE_UNSPECIFIED) return r;
  r.set_state(state);
  r.set_version(7);
  r.set_updated_at_unix_ms(UnixMs(kNow - 1h));
  if (state == v1::PROTECTION_STATE_POLICY_INVALID) {
    r.set_last_error("vcpus='0' is not a count");
    return r;
  }
  r.set_tagged(true);
  r.set_policy_xml(kPolicyA);
  r.mutable_shadow_size()->set_vcpus(kSizeA.vcpus);
  r.mutable_shadow_size()->set_memory_kib(kSizeA.memory_kib);
  switch (state) {
    case v1::PROTECTION_STATE_UNPROTECTED:
      r.set_retry_count(1);
      r.set_retry_backoff_ms(2000);
      r.set_next_retry_unix_ms(UnixMs(kNow - 1s));
      r.set_unprotected_reason("no host has 2 GiB free");
      break;
    case v1::PROTECTION_STATE_PLACING: SetShadow(r, kTarget, v1::SHADOW_STATE_DEFINING); break;
    case v1::PROTECTION_STATE_PROTECTED: SetShadow(r, kTarget, v1::SHADOW_STATE_DEFINED); break;
    case v1::PROTECTION_STATE_GRACE_PERIOD:
      r.set_vm_running(false);
      r.set_grace_deadline_unix_ms(UnixMs(kNow - 1s));
      SetShadow(r, kTarget, v1::SHADOW_STATE_DEFINED);
      break;
    case v1::PROTECTION_STATE_RELEASING:
      r.set_vm_running(false);
      SetShadow(r, kTarget, v1::SHADOW_STATE_RELEASING);
      break;
    case v1::PROTECTION_STATE_RELEASED:
      r.set_vm_running(false);
      r.set_tagged(false);
      break;
    default: break;
  }
  return r;
}

}  // namespace fixtures
}  // namespace vs::lifecycle
