// NoticeSources: runs the notice producers of this folder inside shadowd. It owns the threads that
// wait on the power button and poll the cloud metadata services, and hands every Notice they
// produce to one `deliver` callback; it decides nothing about what a notice means.
//
//   - one thread per power-button source (acpid socket, input event device): connects, loops on
//     the reader's Next(), and reconnects when the reader finishes (acpid restarted, device gone).
//     While the socket or device cannot be reached it retries every `reconnect_interval` and logs
//     the failure once, again only when the failure changes.
//   - one thread that calls PollOnce on every configured cloud poller (GCE, AWS, Azure) every
//     `poll_interval`. A poller's error is logged only when it differs from that poller's previous
//     error (a host without that cloud gets "connection refused" every poll), and its recovery once.
//
// Callbacks: `deliver` and `log` are called on those source threads, possibly from several at once
// (two power-button threads and the poll thread): they must be thread-safe, and should return
// quickly, since a slow `deliver` delays that source's next event. Neither is called after Stop()
// returns.
//
// Ownership: keeps references to the HttpClient and the Clock, which must outlive it; owns its
// pollers, readers and threads. The destructor stops.
// Thread-safety: Start and Stop from the owner's thread; ApproveAzure from any thread, concurrently
// with polling, so the HttpClient must allow concurrent Sends (BeastHttpClient does).
// Failure modes: Start returns InvalidArgument for unusable options (naming the field) and
// FailedPrecondition when called twice; every runtime failure (socket missing, metadata service
// unreachable, malformed answer) goes to `log` and the source keeps trying. Stop() wakes every
// wait at once; only a PollOnce in flight is not interrupted (HttpClient has no cancel), so against a
// metadata service that does not answer Stop() can take up to a few request_timeouts.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "shadowd/notice/http_client.h"
#include "shadowd/notice/notice.h"
#include "shadowd/notice/power_button.h"

namespace vs::notice {

class MetadataPoller;
class AzurePoller;

struct NoticeSourcesOptions {
  std::string acpid_socket;  // acpid's socket, e.g. /var/run/acpid.socket; empty = off
  std::string input_device;  // the power button's /dev/input/eventN; empty = off
  Duration power_button_deadline = PowerButtonOptions{}.deadline_after_press;
  // Base URLs of the metadata services, e.g. http://169.254.169.254; empty = that cloud is off.
  std::string gce_url;
  std::string aws_url;
  std::string azure_url;
  std::string azure_vm_name;  // this VM's name at Azure; required with azure_url (events name it)
  Duration poll_interval = std::chrono::seconds(2);
  Duration request_timeout = std::chrono::seconds(2);  // per metadata request
  // Between attempts to reach a missing acpid socket or input device.
  Duration reconnect_interval = std::chrono::seconds(2);
};

class NoticeSources {
 public:
  using Deliver = std::function<void(const Notice&)>;
  using Log = std::function<void(const std::string&)>;

  NoticeSources(NoticeSourcesOptions options, HttpClient& http, Clock& clock, Deliver deliver, Log log);
  NoticeSources(const NoticeSources&) = delete;
  NoticeSources& operator=(const NoticeSources&) = delete;
  ~NoticeSources();

  // Launches the threads of the configured sources (none when nothing is configured).
  Status Start();
  // Stops the readers and joins every thread. Idempotent.
  void Stop();

  // Lets Azure start event `event_id` (a Notice::id from the Azure source) now. FailedPrecondition
  // when Azure is not configured; otherwise AzurePoller::Approve's result.
  Status ApproveAzure(const std::string& event_id);

 private:
  class PowerButtonSource;  // one reconnecting reader, acpid or input device

  void PowerButtonLoop(PowerButtonSource& source);
  void PollLoop();
  // Waits `d` or until Stop(); false once stopping.
  bool WaitUnlessStopping(Duration d);

  const NoticeSourcesOptions options_;
  HttpClient& http_;
  Clock& clock_;
  const Deliver deliver_;
  const Log log_;

  struct NamedPoller {
    std::string name;  // "gce", "aws", "azure"
    std::unique_ptr<MetadataPoller> poller;
  };
  std::vector<NamedPoller> pollers_;
  AzurePoller* azure_ = nullptr;  // in pollers_ when configured
  std::vector<std::unique_ptr<PowerButtonSource>> power_buttons_;

  Mutex mu_;
  CondVar stop_cv_;
  bool started_ VS_GUARDED_BY(mu_) = false;
  bool stopping_ VS_GUARDED_BY(mu_) = false;
  // How Stop() stops the reader each power-button source has connected (none while it reconnects).
  std::map<const PowerButtonSource*, std::function<void()>> reader_stops_ VS_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
};

}  // namespace vs::notice
