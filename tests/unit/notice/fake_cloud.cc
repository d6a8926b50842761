#include "tests/unit/notice/fake_cloud.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string_view>
#include <thread>
#include <utility>

namespace vs::notice::test_support {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

// The api-versions of Scheduled Events that Azure accepts.
constexpr std::array<std::string_view, 6> kAzureApiVersions = {"2017-03-01", "2017-08-01", "2017-11-01",
                                                               "2019-01-01", "2019-08-01", "2020-07-01"};

std::string_view View(beast::string_view text) { return {text.data(), text.size()}; }

// "2027-01-15T08:02:00Z" (rfc1123 = false) or "Fri, 15 Jan 2027 08:02:00 GMT".
std::string FormatTime(WallTime t, bool rfc1123) {
  using namespace std::chrono;
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const sys_days day = floor<days>(t);
  const year_month_day date(day);
  const hh_mm_ss time(floor<seconds>(t - day));
  char text[64];
  const auto h = static_cast<int>(time.hours().count());
  const auto m = static_cast<int>(time.minutes().count());
  const auto s = static_cast<int>(time.seconds().count());
  if (rfc1123) {
    std::snprintf(text, sizeof text, "%s, %02u %s %04d %02d:%02d:%02d GMT", kDays[weekday(day).c_encoding()],
                  static_cast<unsigned>(date.day()), kMonths[static_cast<unsigned>(date.month()) - 1],
                  static_cast<int>(date.year()), h, m, s);
  } else {
    std::snprintf(text, sizeof text, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(date.year()),
                  static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()), h, m, s);
  }
  return text;
}

Response Answer(const Request& request, http::status status, std::string body, std::string content_type) {
  Response response(status, request.version());
  response.set(http::field::content_type, content_type);
  response.body() = std::move(body);
  return response;
}

// What the real AWS endpoint sends with a 404.
constexpr char kAws404[] =
    "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 "
    "Transitional//EN\"\n\t\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\">\n<html><head>"
    "<title>404 - Not Found</title></head><body><h1>404 - Not Found</h1></body></html>\n";

}  // namespace

// ---- FakeCloud

class FakeCloud::Impl {
 public:
  Impl() : acceptor_(ioc_) {}
  ~Impl() {
    ioc_.stop();
    if (thread_.joinable()) thread_.join();
  }

  Status Listen(const std::string& address, uint16_t port) {
    const std::string where = address + ":" + std::to_string(port);
    beast::error_code ec;
    const asio::ip::address ip = asio::ip::make_address(address, ec);
    if (ec) return InvalidArgument("FakeCloud: '" + address + "' is not an IP address");
    const tcp::endpoint endpoint(ip, port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Unavailable("FakeCloud cannot listen on " + where + ": " + ec.message() +
                         " (another fake cloud running? is that address on this host?)");
    }
    address_ = ip.is_v6() ? "[" + address + "]" : address;
    port_ = acceptor_.local_endpoint().port();
    Accept();
    thread_ = std::thread([this] { ioc_.run(); });
    return Status::Ok();
  }

  uint16_t port() const { return port_; }
  const std::string& address() const { return address_; }

  struct AzureEvent {
    std::string id;
    std::string type;
    std::string vm_name;
    std::string not_before;  // RFC 1123; empty once started
    bool started = false;
  };
  struct HostState {
    bool gce_preempted = false;
    std::string gce_maintenance = "NONE";
    std::optional<std::string> aws_instance_action;  // the JSON document
    std::optional<std::string> aws_rebalance;        // the JSON document
    std::set<std::string> aws_tokens;
    std::vector<AzureEvent> azure_events;
    std::vector<std::string> azure_approved;
    int64_t azure_incarnation = 1;
    uint64_t requests = 0;
  };

  // Runs `change` on `host`'s state under the lock.
  template <typename F>
  auto WithHost(const std::string& host, F change) {
    std::lock_guard lock(mu_);
    return change(hosts_[host]);
  }
  template <typename F>
  auto WithHost(const std::string& host, F read) const {
    std::lock_guard lock(mu_);
    const HostState nothing_set;
    auto it = hosts_.find(host);
    return read(it == hosts_.end() ? nothing_set : it->second);
  }

  std::string NextEventId() {
    std::lock_guard lock(mu_);
    char id[64];
    std::snprintf(id, sizeof id, "f4e0c0de-0000-4000-8000-%012llx", static_cast<unsigned long long>(++events_));
    return id;
  }

  Response Handle(const Request& request);

 private:
  class Session;

  void Accept();

  Response Gce(const Request& request, std::string_view path, HostState& state);
  Response Aws(const Request& request, std::string_view path, HostState& state);
  Response Azure(const Request& request, std::string_view path, std::string_view query, HostState& state);

  mutable std::mutex mu_;
  std::map<std::string, HostState> hosts_;  // guarded by mu_
  uint64_t events_ = 0;                     // guarded by mu_
  uint64_t tokens_ = 0;                     // guarded by mu_ (Handle runs under it)
  std::string address_;
  uint16_t port_ = 0;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::thread thread_;
};

// One connection: requests in turn until the client closes (keep-alive allowed, though the
// pollers send "Connection: close"), each bounded by a timeout so a silent client goes away.
class FakeCloud::Impl::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Impl& cloud) : stream_(std::move(socket)), cloud_(cloud) {}

  void Read() {
    request_ = {};
    stream_.expires_after(std::chrono::seconds(10));
    http::async_read(stream_, buffer_, request_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

 private:
  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream) return Close();
    if (ec) return;  // timeout, reset or a request Beast cannot parse: drop the connection
    response_ = cloud_.Handle(request_);
    response_.set(http::field::server, "virt-shadow FakeCloud");
    response_.keep_alive(request_.keep_alive());
    response_.prepare_payload();
    http::async_write(stream_, response_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return;
      if (!self->response_.keep_alive()) return self->Close();
      self->Read();
    });
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  Request request_;
  Response response_;
  Impl& cloud_;
};

void FakeCloud::Impl::Accept() {
  acceptor_.async_accept(ioc_, [this](beast::error_code ec, tcp::socket socket) {
    if (ec) return;  // closed: stopping
    std::make_shared<Session>(std::move(socket), *this)->Read();
    Accept();
  });
}

Response FakeCloud::Impl::Handle(const Request& request) {
  // "/HOST/path?query"
  const std::string_view target = View(request.target());
  const size_t slash = target.size() > 1 && target[0] == '/' ? target.find('/', 1) : std::string_view::npos;
  if (slash == std::string_view::npos || slash == 1) {
    return Answer(request, http::status::not_found, "FakeCloud serves /HOST/<cloud path>\n", "text/plain");
  }
  const std::string host(target.substr(1, slash - 1));
  const std::string_view path_and_query = target.substr(slash);
  const size_t question = path_and_query.find('?');
  const std::string_view path = path_and_query.substr(0, question);
  const std::string_view query =
      question == std::string_view::npos ? std::string_view() : path_and_query.substr(question + 1);

  std::lock_guard lock(mu_);
  HostState& state = hosts_[host];
  ++state.requests;
  if (path.starts_with("/computeMetadata/")) return Gce(request, path, state);
  if (path.starts_with("/latest/")) return Aws(request, path, state);
  if (path.starts_with("/metadata/")) return Azure(request, path, query, state);
  return Answer(request, http::status::not_found, "no such metadata path\n", "text/plain");
}

Response FakeCloud::Impl::Gce(const Request& request, std::string_view path, HostState& state) {
  auto answer = [&](http::status status, std::string body) {
    Response response = Answer(request, status, std::move(body), "application/text");
    response.set("Metadata-Flavor", "Google");
    return response;
  };
  if (request.count("X-Forwarded-For") > 0) {
    return answer(http::status::forbidden, "Request denied: X-Forwarded-For header present\n");
  }
  if (View(request["Metadata-Flavor"]) != "Google") {
    return answer(http::status::forbidden, "Your client does not have permission to get URL " +
                                               std::string(View(request.target())) +
                                               " from this server. Missing Metadata-Flavor:Google header.\n");
  }
  if (request.method() != http::verb::get) return answer(http::status::method_not_allowed, "");
  if (path == "/computeMetadata/v1/instance/preempted") {
    return answer(http::status::ok, state.gce_preempted ? "TRUE" : "FALSE");
  }
  if (path == "/computeMetadata/v1/instance/maintenance-event") return answer(http::status::ok, state.gce_maintenance);
  return answer(http::status::not_found, "The requested URL was not found on this server.\n");
}

Response FakeCloud::Impl::Aws(const Request& request, std::string_view path, HostState& state) {
  if (path == "/latest/api/token") {
    if (request.method() != http::verb::put) return Answer(request, http::status::method_not_allowed, "", "text/plain");
    if (request.count("X-Forwarded-For") > 0) return Answer(request, http::status::forbidden, "", "text/plain");
    const std::string ttl(View(request["X-aws-ec2-metadata-token-ttl-seconds"]));
    const bool digits = !ttl.empty() && ttl.size() <= 5 && ttl.find_first_not_of("0123456789") == std::string::npos;
    if (!digits || std::stoi(ttl) < 1 || std::stoi(ttl) > 21600) {
      return Answer(request, http::status::bad_request, "", "text/plain");
    }
    std::string token = "AQAEAFakeImdsToken" + std::to_string(++tokens_) + "==";
    state.aws_tokens.insert(token);
    Response response = Answer(request, http::status::ok, std::move(token), "text/plain");
    response.set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", ttl);
    return response;
  }
  if (request.method() != http::verb::get) return Answer(request, http::status::method_not_allowed, "", "text/plain");
  // IMDSv2 only, as shadowd hosts should be configured: no (valid) token, no answer.
  if (state.aws_tokens.count(std::string(View(request["X-aws-ec2-metadata-token"]))) == 0) {
    return Answer(request, http::status::unauthorized, "", "text/plain");
  }
  const std::optional<std::string>* document = nullptr;
  if (path == "/latest/meta-data/spot/instance-action") document = &state.aws_instance_action;
  if (path == "/latest/meta-data/events/recommendations/rebalance") document = &state.aws_rebalance;
  if (document == nullptr || !document->has_value()) {
    return Answer(request, http::status::not_found, kAws404, "text/html");
  }
  return Answer(request, http::status::ok, **document, "text/plain");
}

Response FakeCloud::Impl::Azure(const Request& request, std::string_view path, std::string_view query,
                                HostState& state) {
  auto error = [&](http::status status, const std::string& message) {
    nlohmann::json body = {{"error", message}};
    if (status == http::status::bad_request && message.find("api-version") != std::string::npos) {
      body["newest-versions"] = {"2020-07-01"};
    }
    return Answer(request, status, body.dump(), "application/json; charset=utf-8");
  };
  if (request.count("X-Forwarded-For") > 0) {
    return error(http::status::bad_request, "Bad request. Requests with X-Forwarded-For header are not allowed");
  }
  if (View(request["Metadata"]) != "true") {
    return error(http::status::bad_request, "Bad request. Required metadata header not specified");
  }
  if (path != "/metadata/scheduledevents") return error(http::status::not_found, "Not found");
  std::optional<std::string_view> version;
  for (size_t start = 0; start <= query.size();) {
    const size_t end = std::min(query.find('&', start), query.size());
    const std::string_view parameter = query.substr(start, end - start);
    if (parameter.starts_with("api-version=")) version = parameter.substr(std::strlen("api-version="));
    start = end + 1;
  }
  if (!version) {
    return error(http::status::bad_request,
                 "Bad request. api-version was not specified in the request. For more information refer to "
                 "aka.ms/azureimds");
  }
  if (std::find(kAzureApiVersions.begin(), kAzureApiVersions.end(), *version) == kAzureApiVersions.end()) {
    return error(http::status::bad_request,
                 "Bad request. api-version is invalid or was not specified in the request. For more information "
                 "refer to aka.ms/azureimds");
  }
  if (request.method() == http::verb::get) {
    nlohmann::json events = nlohmann::json::array();
    for (const AzureEvent& event : state.azure_events) {
      events.push_back({{"EventId", event.id},
                        {"EventType", event.type},
                        {"ResourceType", "VirtualMachine"},
                        {"Resources", {event.vm_name}},
                        {"EventStatus", event.started ? "Started" : "Scheduled"},
                        {"NotBefore", event.not_before},
                        {"Description", ""},
                        {"EventSource", "Platform"},
                        {"DurationInSeconds", -1}});
    }
    nlohmann::json document = {{"DocumentIncarnation", state.azure_incarnation}, {"Events", events}};
    return Answer(request, http::status::ok, document.dump(), "application/json; charset=utf-8");
  }
  if (request.method() != http::verb::post) return error(http::status::method_not_allowed, "Method not allowed");
  const nlohmann::json body = nlohmann::json::parse(request.body(), nullptr, /*allow_exceptions=*/false);
  if (!body.is_object() || !body.contains("StartRequests") || !body["StartRequests"].is_array()) {
    return error(http::status::bad_request, "Bad request. Expected {\"StartRequests\": [{\"EventId\": ...}]}");
  }
  std::vector<AzureEvent*> to_start;
  for (const nlohmann::json& start : body["StartRequests"]) {
    if (!start.is_object() || !start.contains("EventId") || !start["EventId"].is_string()) {
      return error(http::status::bad_request, "Bad request. Every StartRequest needs a string EventId");
    }
    const std::string id = start["EventId"].get<std::string>();
    auto it = std::find_if(state.azure_events.begin(), state.azure_events.end(),
                           [&id](const AzureEvent& event) { return event.id == id; });
    if (it == state.azure_events.end()) return error(http::status::bad_request, "Bad request. Unknown EventId " + id);
    to_start.push_back(&*it);
  }
  for (AzureEvent* event : to_start) {
    event->started = true;
    event->not_before.clear();
    state.azure_approved.push_back(event->id);
  }
  ++state.azure_incarnation;
  return Answer(request, http::status::ok, "", "application/json; charset=utf-8");
}

StatusOr<std::unique_ptr<FakeCloud>> FakeCloud::Start(const std::string& address, uint16_t port) {
  auto impl = std::make_unique<Impl>();
  VS_RETURN_IF_ERROR(impl->Listen(address, port));
  return std::unique_ptr<FakeCloud>(new FakeCloud(std::move(impl)));
}

FakeCloud::FakeCloud(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FakeCloud::~FakeCloud() = default;

uint16_t FakeCloud::port() const { return impl_->port(); }

std::string FakeCloud::BaseUrl(const std::string& host) const {
  return "http://" + impl_->address() + ":" + std::to_string(impl_->port()) + "/" + host;
}

void FakeCloud::SetGcePreempted(const std::string& host, bool preempted) {
  impl_->WithHost(host, [&](Impl::HostState& state) { state.gce_preempted = preempted; });
}

void FakeCloud::SetGceMaintenance(const std::string& host, const std::string& event) {
  impl_->WithHost(host, [&](Impl::HostState& state) { state.gce_maintenance = event; });
}

void FakeCloud::SetAwsInstanceAction(const std::string& host, const std::string& action, WallTime at) {
  const std::string document = nlohmann::json{{"action", action}, {"time", FormatTime(at, false)}}.dump();
  impl_->WithHost(host, [&](Impl::HostState& state) { state.aws_instance_action = document; });
}

void FakeCloud::SetAwsRebalance(const std::string& host, WallTime at) {
  const std::string document = nlohmann::json{{"noticeTime", FormatTime(at, false)}}.dump();
  impl_->WithHost(host, [&](Impl::HostState& state) { state.aws_rebalance = document; });
}

std::string FakeCloud::AddAzureEvent(const std::string& host, const std::string& type, const std::string& vm_name,
                                     WallTime not_before) {
  Impl::AzureEvent event{
      .id = impl_->NextEventId(), .type = type, .vm_name = vm_name, .not_before = FormatTime(not_before, true)};
  impl_->WithHost(host, [&](Impl::HostState& state) {
    state.azure_events.push_back(event);
    ++state.azure_incarnation;
  });
  return event.id;
}

std::vector<std::string> FakeCloud::ApprovedAzureEvents(const std::string& host) const {
  return impl_->WithHost(host, [](const Impl::HostState& state) { return state.azure_approved; });
}

void FakeCloud::ClearAll(const std::string& host) {
  impl_->WithHost(host, [](Impl::HostState& state) {
    Impl::HostState cleared;
    cleared.aws_tokens = std::move(state.aws_tokens);
    cleared.requests = state.requests;
    cleared.azure_incarnation = state.azure_incarnation + 1;
    state = std::move(cleared);
  });
}

uint64_t FakeCloud::RequestCount(const std::string& host) const {
  return impl_->WithHost(host, [](const Impl::HostState& state) { return state.requests; });
}

// ---- FakeAcpid

class FakeAcpid::Impl {
 public:
  Impl(std::string path, int listener, int stop_read, int stop_write)
      : path_(std::move(path)), listener_(listener), stop_read_(stop_read), stop_write_(stop_write) {
    thread_ = std::thread([this] { Serve(); });
  }
  ~Impl() {
    [[maybe_unused]] const ssize_t n = write(stop_write_, "x", 1);
    thread_.join();
    for (int client : clients_) close(client);
    close(listener_);
    close(stop_read_);
    close(stop_write_);
    unlink(path_.c_str());
  }

  size_t Send(const std::string& raw) {
    std::lock_guard lock(mu_);
    size_t reached = 0;
    for (int client : clients_) {
      // Non-blocking: a client that does not read must not stall the test; it simply misses the line.
      if (send(client, raw.data(), raw.size(), MSG_NOSIGNAL | MSG_DONTWAIT) == static_cast<ssize_t>(raw.size())) {
        ++reached;
      }
    }
    return reached;
  }

  size_t ConnectedClients() const {
    std::lock_guard lock(mu_);
    return clients_.size();
  }

 private:
  // Accepts clients and notices those that hang up, until stopped. Only this thread adds or closes
  // client descriptors; Send uses them under mu_.
  void Serve() {
    for (;;) {
      std::vector<pollfd> fds = {{.fd = stop_read_, .events = POLLIN}, {.fd = listener_, .events = POLLIN}};
      {
        std::lock_guard lock(mu_);
        for (int client : clients_) fds.push_back({.fd = client, .events = POLLIN});
      }
      if (poll(fds.data(), fds.size(), -1) < 0) continue;  // EINTR
      if (fds[0].revents != 0) return;
      if (fds[1].revents & POLLIN) {
        const int client = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
        if (client >= 0) {
          std::lock_guard lock(mu_);
          clients_.push_back(client);
        }
      }
      for (size_t i = 2; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        char discard[256];
        if (recv(fds[i].fd, discard, sizeof discard, MSG_DONTWAIT) > 0) continue;  // clients have nothing to say
        std::lock_guard lock(mu_);
        std::erase(clients_, fds[i].fd);
        close(fds[i].fd);
      }
    }
  }

  const std::string path_;
  const int listener_;
  const int stop_read_;
  const int stop_write_;
  mutable std::mutex mu_;
  std::vector<int> clients_;  // guarded by mu_
  std::thread thread_;
};

StatusOr<std::unique_ptr<FakeAcpid>> FakeAcpid::Start(const std::string& socket_path) {
  sockaddr_un address{.sun_family = AF_UNIX};
  if (socket_path.empty() || socket_path.size() >= sizeof address.sun_path) {
    return InvalidArgument("FakeAcpid: socket path '" + socket_path + "' must be 1 to " +
                           std::to_string(sizeof address.sun_path - 1) + " bytes");
  }
  std::memcpy(address.sun_path, socket_path.data(), socket_path.size());
  struct stat existing;
  if (lstat(socket_path.c_str(), &existing) == 0) {
    if (!S_ISSOCK(existing.st_mode)) {
      return AlreadyExists("FakeAcpid: '" + socket_path + "' exists and is not a socket; not replacing it");
    }
    unlink(socket_path.c_str());
  }
  const int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) return Internal(std::string("FakeAcpid: socket: ") + std::strerror(errno));
  if (bind(listener, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 || listen(listener, 16) != 0) {
    const std::string why = std::strerror(errno);
    close(listener);
    return Unavailable("FakeAcpid cannot listen at '" + socket_path + "': " + why);
  }
  int stop[2];
  if (pipe2(stop, O_CLOEXEC) != 0) {
    const std::string why = std::strerror(errno);
    close(listener);
    unlink(socket_path.c_str());
    return Internal("FakeAcpid: pipe: " + why);
  }
  return std::unique_ptr<FakeAcpid>(new FakeAcpid(std::make_unique<Impl>(socket_path, listener, stop[0], stop[1])));
}

FakeAcpid::FakeAcpid(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FakeAcpid::~FakeAcpid() = default;

size_t FakeAcpid::PressPowerButton() { return impl_->Send(kPowerButtonLine); }
size_t FakeAcpid::Send(const std::string& raw) { return impl_->Send(raw); }
size_t FakeAcpid::ConnectedClients() const { return impl_->ConnectedClients(); }

}  // namespace vs::notice::test_support
