#include "shadowd/notice/notice_sources.h"

#include <cstdint>
#include <optional>
#include <utility>

#include "shadowd/notice/metadata_poller.h"
#include "shadowd/notice/power_button_reader.h"

namespace vs::notice {
namespace {

// A connected reader of either kind (they share Next/Stop but no base class). The reader is shared
// between the two functions, which keep it alive.
struct ConnectedReader {
  std::function<StatusOr<std::optional<Notice>>()> next;
  std::function<void()> stop;
};

template <typename Reader>
StatusOr<ConnectedReader> Wrap(StatusOr<std::unique_ptr<Reader>> opened) {
  if (!opened.ok()) return opened.status();
  std::shared_ptr<Reader> reader = std::move(*opened);
  return ConnectedReader{.next = [reader] { return reader->Next(); }, .stop = [reader] { reader->Stop(); }};
}

// "2 s", or "250 ms" when not a whole number of seconds.
std::string Seconds(Duration d) {
  const int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms";
}

}  // namespace

class NoticeSources::PowerButtonSource {
 public:
  PowerButtonSource(std::string name, std::function<StatusOr<ConnectedReader>()> connect)
      : name(std::move(name)), connect(std::move(connect)) {}

  const std::string name;  // for the log: "acpid socket '/var/run/acpid.socket'"
  const std::function<StatusOr<ConnectedReader>()> connect;
};

NoticeSources::NoticeSources(NoticeSourcesOptions options, HttpClient& http, Clock& clock, Deliver deliver, Log log)
    : options_(std::move(options)), http_(http), clock_(clock), deliver_(std::move(deliver)), log_(std::move(log)) {
  const PowerButtonOptions press{.deadline_after_press = options_.power_button_deadline};
  if (!options_.acpid_socket.empty()) {
    power_buttons_.push_back(std::make_unique<PowerButtonSource>(
        "acpid socket '" + options_.acpid_socket + "'",
        [this, press] { return Wrap(AcpidSocketReader::Connect(options_.acpid_socket, clock_, press)); }));
  }
  if (!options_.input_device.empty()) {
    power_buttons_.push_back(std::make_unique<PowerButtonSource>(
        "input device '" + options_.input_device + "'",
        [this, press] { return Wrap(InputEventReader::Open(options_.input_device, clock_, press)); }));
  }
  auto endpoint = [this](const std::string& url) {
    return MetadataEndpoint{.base_url = url, .timeout = options_.request_timeout};
  };
  if (!options_.gce_url.empty()) {
    pollers_.push_back({"gce", std::make_unique<GcePoller>(http_, clock_, endpoint(options_.gce_url))});
  }
  if (!options_.aws_url.empty()) {
    pollers_.push_back({"aws", std::make_unique<AwsPoller>(http_, clock_, endpoint(options_.aws_url))});
  }
  if (!options_.azure_url.empty()) {
    auto azure =
        std::make_unique<AzurePoller>(http_, clock_, endpoint(options_.azure_url), options_.azure_vm_name);
    azure_ = azure.get();
    pollers_.push_back({"azure", std::move(azure)});
  }
}

NoticeSources::~NoticeSources() { Stop(); }

Status NoticeSources::Start() {
  auto positive = [](Duration d, const char* field) {
    if (d > Duration::zero()) return Status::Ok();
    return InvalidArgument(std::string("notice sources: ") + field + " is " + Seconds(d) + "; it must be positive");
  };
  VS_RETURN_IF_ERROR(positive(options_.power_button_deadline, "power_button_deadline"));
  VS_RETURN_IF_ERROR(positive(options_.poll_interval, "poll_interval"));
  VS_RETURN_IF_ERROR(positive(options_.request_timeout, "request_timeout"));
  VS_RETURN_IF_ERROR(positive(options_.reconnect_interval, "reconnect_interval"));
  if (!options_.azure_url.empty() && options_.azure_vm_name.empty()) {
    return InvalidArgument("notice sources: azure_url is set but azure_vm_name is empty; give this VM's name as "
                           "Azure knows it, so that the events of the other VMs of its scale set are ignored");
  }
  MutexLock lock(mu_);
  if (started_) return FailedPrecondition("notice sources were already started; make a new NoticeSources");
  started_ = true;
  if (stopping_) return Status::Ok();  // stopped before it started: nothing to run
  for (auto& source : power_buttons_) {
    threads_.emplace_back([this, &source = *source] { PowerButtonLoop(source); });
  }
  if (!pollers_.empty()) threads_.emplace_back([this] { PollLoop(); });
  return Status::Ok();
}

void NoticeSources::Stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
    for (auto& [source, stop_reader] : reader_stops_) stop_reader();
  }
  stop_cv_.notify_all();
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
}

Status NoticeSources::ApproveAzure(const std::string& event_id) {
  if (azure_ == nullptr) {
    return FailedPrecondition("cannot approve Azure event '" + event_id +
                              "': no Azure metadata service is configured (azure_url is empty)");
  }
  return azure_->Approve(event_id);
}

bool NoticeSources::WaitUnlessStopping(Duration d) {
  MutexLock lock(mu_);
  const auto until = std::chrono::steady_clock::now() + d;
  while (!stopping_) {
    if (stop_cv_.wait_until(mu_, until) == std::cv_status::timeout) break;
  }
  return !stopping_;
}

void NoticeSources::PowerButtonLoop(PowerButtonSource& source) {
  std::string last_failure;  // logged already; logged again only when it changes
  for (;;) {
    StatusOr<ConnectedReader> reader = source.connect();
    if (!reader.ok()) {
      if (const std::string failure = reader.status().ToString(); failure != last_failure) {
        log_(source.name + ": " + failure + " (retrying every " + Seconds(options_.reconnect_interval) +
             "; logged again only when this changes)");
        last_failure = failure;
      }
      if (!WaitUnlessStopping(options_.reconnect_interval)) return;
      continue;
    }
    // Only this thread uses the reader; Stop() reaches it through reader_stops_.
    std::optional<ConnectedReader> active = std::move(*reader);
    {
      MutexLock lock(mu_);
      if (stopping_) return;  // Stop() ran before the reader was visible to it
      reader_stops_[&source] = active->stop;
    }
    log_(source.name + ": connected, waiting for power-button presses");
    last_failure.clear();
    bool stopped = false;
    for (;;) {
      StatusOr<std::optional<Notice>> next = active->next();
      if (!next.ok()) {
        log_(source.name + ": " + next.status().ToString());
        if (next.status().code() == Code::kInvalidArgument) continue;  // one bad line; the reader goes on
        break;  // the peer closed or the device went away: this reader is finished
      }
      if (!next->has_value()) {
        stopped = true;
        break;
      }
      deliver_(**next);
    }
    {
      MutexLock lock(mu_);
      reader_stops_.erase(&source);
      active.reset();  // the reader closes before the wait below
    }
    // Waiting before reconnecting keeps a peer that accepts and closes at once from making us spin.
    if (stopped || !WaitUnlessStopping(options_.reconnect_interval)) return;
  }
}

void NoticeSources::PollLoop() {
  std::vector<std::string> last_error(pollers_.size());  // per poller; empty after a success
  auto stopping = [this] {
    MutexLock lock(mu_);
    return stopping_;
  };
  do {
    for (size_t i = 0; i < pollers_.size() && !stopping(); ++i) {
      const std::string& name = pollers_[i].name;
      StatusOr<std::vector<Notice>> notices = pollers_[i].poller->PollOnce();
      if (!notices.ok()) {
        if (std::string error = notices.status().ToString(); error != last_error[i]) {
          log_(name + " metadata: " + error + " (logged again only when this changes)");
          last_error[i] = std::move(error);
        }
        continue;
      }
      if (!last_error[i].empty()) {
        log_(name + " metadata: answers again");
        last_error[i].clear();
      }
      for (const Notice& notice : *notices) deliver_(notice);
    }
  } while (WaitUnlessStopping(options_.poll_interval));
}

}  // namespace vs::notice
