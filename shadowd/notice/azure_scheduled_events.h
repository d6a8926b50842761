// Azure Scheduled Events (api-version 2020-07-01), parsed (pure):
//
//   GET {base}/metadata/scheduledevents?api-version=2020-07-01   ("Metadata: true") ->
//     {"DocumentIncarnation": N, "Events": [{"EventId": "...", "EventType": "Preempt", "ResourceType":
//      "VirtualMachine", "Resources": ["vm1"], "EventStatus": "Scheduled", "NotBefore": "Mon, 19 Sep 2016
//      18:29:47 GMT", "Description": "...", "EventSource": "Platform", "DurationInSeconds": -1}]}
//   POST the same URL with AzureStartRequestBody(id) to let the platform proceed early.
//
// Preempt (spot eviction) and Terminate (deletion, scale-in) become preemption notices; Reboot,
// Redeploy, Freeze and any other type produce none and are only named in the detail of the notices
// that are produced. The deadline is NotBefore; when it is empty, absent or unreadable it is
// kAzureDefaultNotice after `now` (Azure's minimum notice for a preemption) and the detail says
// so, because an eviction must not be lost over a bad timestamp. The notice id is the EventId.
//
// Azure delivers the events of every VM in the same availability set or scale-set placement group
// to all of them: with a non-empty `vm_name`, events whose Resources do not list it (compared
// case-insensitively, as Azure names are) are dropped; with an empty one every event counts.
// Ownership and thread-safety: pure functions of values. Failure modes: InvalidArgument naming the field that is
// missing, of the wrong type, or (EventId) empty, over 128 characters or not visible ASCII, with the event's index.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "shadowd/notice/notice.h"

namespace vs::notice {

inline constexpr Duration kAzureDefaultNotice = std::chrono::seconds(30);

StatusOr<std::vector<Notice>> ParseAzureScheduledEvents(std::string_view body, std::string_view vm_name, WallTime now);

// {"StartRequests":[{"EventId":"<event_id>"}]}, with the id escaped as JSON requires.
std::string AzureStartRequestBody(std::string_view event_id);

}  // namespace vs::notice
