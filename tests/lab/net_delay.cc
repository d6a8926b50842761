// vs-netdelay: netem's "delay DELAY JITTER" done in user space, for `lab.sh jitter` on kernels built without
// sch_netem (and without sch_fq, whose earliest-departure times would be the other way to delay in the kernel).
//
// It binds to a netfilter queue of the network namespace it runs in (lab.sh puts an iptables NFQUEUE rule on the
// host's eth0 ingress) and accepts each queued packet after its own delay, drawn uniformly from
// [DELAY - JITTER, DELAY + JITTER] as netem draws it without a distribution table. Like netem's, a packet drawn a
// shorter delay than the one before it leaves first (reordering). Only the packet's metadata crosses to user
// space (NFQNL_COPY_META), and GSO packets are queued whole, so that a bulk TCP stream costs one verdict per
// 64 KiB rather than per segment.
//
// On SIGTERM or SIGINT every held packet is accepted at once before exiting, so that stopping it drops nothing.
// It prints "ready" on stdout once bound (lab.sh waits for that before adding the iptables rule), and at exit how
// many packets it delayed and how late after their drawn delay it let them through at worst (its own scheduling:
// on a loaded machine the real delay is the drawn one plus that).
//
// Usage: vs-netdelay --queue N --delay-ms D --jitter-ms J
// glibc's headers before the kernel's: linux/netfilter.h takes glibc's struct in_addr only when it comes first.
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/netlink.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <queue>
#include <random>
#include <string>
#include <vector>

namespace {

using Steady = std::chrono::steady_clock;

volatile sig_atomic_t stop_requested = 0;
void RequestStop(int) { stop_requested = 1; }

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "vs-netdelay: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

// One nfnetlink message being built: netlink header, nfgenmsg for queue `queue`, then attributes.
class Message {
 public:
  Message(uint16_t type, uint16_t queue, uint16_t flags) : buffer_(NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg))) {
    auto* header = reinterpret_cast<nlmsghdr*>(buffer_.data());
    header->nlmsg_type = static_cast<uint16_t>((NFNL_SUBSYS_QUEUE << 8) | type);
    header->nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | flags);
    auto* gen = reinterpret_cast<nfgenmsg*>(buffer_.data() + NLMSG_HDRLEN);
    gen->nfgen_family = AF_UNSPEC;
    gen->version = NFNETLINK_V0;
    gen->res_id = htons(queue);
  }
  template <typename T>
  Message& Add(uint16_t type, const T& value) {
    const size_t at = buffer_.size();
    buffer_.resize(at + NLA_ALIGN(NLA_HDRLEN + sizeof(T)));
    auto* attr = reinterpret_cast<nlattr*>(buffer_.data() + at);
    attr->nla_type = type;
    attr->nla_len = static_cast<uint16_t>(NLA_HDRLEN + sizeof(T));
    std::memcpy(buffer_.data() + at + NLA_HDRLEN, &value, sizeof(T));
    return *this;
  }
  void Send(int fd) {
    reinterpret_cast<nlmsghdr*>(buffer_.data())->nlmsg_len = static_cast<uint32_t>(buffer_.size());
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (sendto(fd, buffer_.data(), buffer_.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) < 0) {
      Die("sending to the netfilter queue");
    }
  }

 private:
  std::vector<char> buffer_;
};

// Sends a configuration message and waits for the kernel's acknowledgement, so that a refusal is seen here.
void Configure(int fd, Message message, const char* what) {
  message.Send(fd);
  char reply[8192];
  const ssize_t got = recv(fd, reply, sizeof(reply), 0);
  if (got < 0) Die(what);
  const auto* header = reinterpret_cast<const nlmsghdr*>(reply);
  if (header->nlmsg_type == NLMSG_ERROR) {
    const int error = reinterpret_cast<const nlmsgerr*>(NLMSG_DATA(header))->error;
    if (error != 0) {
      errno = -error;
      Die(what);
    }
  }
}

void Accept(int fd, uint16_t queue, uint32_t packet_id) {
  Message(NFQNL_MSG_VERDICT, queue, 0)
      .Add(NFQA_VERDICT_HDR, nfqnl_msg_verdict_hdr{htonl(NF_ACCEPT), htonl(packet_id)})
      .Send(fd);
}

struct Held {
  Steady::time_point due;
  uint32_t packet_id;
  bool operator>(const Held& other) const { return due > other.due; }
};

// The packet ids of the NFQNL_MSG_PACKET messages in one datagram from the kernel.
std::vector<uint32_t> PacketIds(const char* data, size_t size) {
  std::vector<uint32_t> ids;
  for (auto* header = reinterpret_cast<const nlmsghdr*>(data); NLMSG_OK(header, size);
       header = NLMSG_NEXT(header, size)) {
    if ((header->nlmsg_type & 0xff) != NFQNL_MSG_PACKET) continue;
    const char* attrs = reinterpret_cast<const char*>(NLMSG_DATA(header)) + NLMSG_ALIGN(sizeof(nfgenmsg));
    int left = static_cast<int>(header->nlmsg_len) - static_cast<int>(attrs - reinterpret_cast<const char*>(header));
    for (auto* attr = reinterpret_cast<const nlattr*>(attrs); left >= static_cast<int>(NLA_HDRLEN) &&
                                                              attr->nla_len >= NLA_HDRLEN && attr->nla_len <= left;
         left -= NLA_ALIGN(attr->nla_len),
                    attr = reinterpret_cast<const nlattr*>(reinterpret_cast<const char*>(attr) +
                                                           NLA_ALIGN(attr->nla_len))) {
      if ((attr->nla_type & NLA_TYPE_MASK) != NFQA_PACKET_HDR) continue;
      nfqnl_msg_packet_hdr packet;
      std::memcpy(&packet, reinterpret_cast<const char*>(attr) + NLA_HDRLEN, sizeof(packet));
      ids.push_back(ntohl(packet.packet_id));
    }
  }
  return ids;
}

}  // namespace

int main(int argc, char** argv) {
  long queue = -1, delay_ms = -1, jitter_ms = -1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    long* target = flag == "--queue" ? &queue : flag == "--delay-ms" ? &delay_ms : flag == "--jitter-ms" ? &jitter_ms
                                                                                                          : nullptr;
    if (target != nullptr) *target = std::strtol(argv[i + 1], nullptr, 10);
  }
  if (queue < 0 || queue > 65535 || delay_ms < 0 || jitter_ms < 0 || jitter_ms > delay_ms) {
    std::fprintf(stderr, "usage: vs-netdelay --queue N --delay-ms D --jitter-ms J (0 <= J <= D)\n");
    return 2;
  }
  const auto queue_num = static_cast<uint16_t>(queue);

  const int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd < 0) Die("opening a netfilter netlink socket");
  // Bursts (a replication round's NBD reads) must not overflow the socket: a lost message is a lost packet.
  const int buffer_bytes = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buffer_bytes, sizeof(buffer_bytes));
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) < 0) Die("binding the netlink socket");

  Configure(fd, Message(NFQNL_MSG_CONFIG, queue_num, NLM_F_ACK).Add(NFQA_CFG_CMD, nfqnl_msg_config_cmd{NFQNL_CFG_CMD_BIND, 0, 0}),
            "binding the queue (is another vs-netdelay bound to it?)");
  Configure(fd, Message(NFQNL_MSG_CONFIG, queue_num, NLM_F_ACK).Add(NFQA_CFG_PARAMS, nfqnl_msg_config_params{0, NFQNL_COPY_META}),
            "asking for metadata only");
  // 20 ms of a fast stream is thousands of packets: the kernel's default of 1024 held at once would drop some.
  Configure(fd, Message(NFQNL_MSG_CONFIG, queue_num, NLM_F_ACK).Add(NFQA_CFG_QUEUE_MAXLEN, htonl(65536)),
            "setting the queue length");
  Configure(fd,
            Message(NFQNL_MSG_CONFIG, queue_num, NLM_F_ACK)
                .Add(NFQA_CFG_FLAGS, htonl(NFQA_CFG_F_GSO))
                .Add(NFQA_CFG_MASK, htonl(NFQA_CFG_F_GSO)),
            "queueing GSO packets whole");

  struct sigaction on_stop{};
  on_stop.sa_handler = RequestStop;
  sigaction(SIGTERM, &on_stop, nullptr);
  sigaction(SIGINT, &on_stop, nullptr);
  std::printf("ready\n");
  std::fflush(stdout);

  std::mt19937_64 random(std::random_device{}());
  std::uniform_int_distribution<long> delay_us((delay_ms - jitter_ms) * 1000, (delay_ms + jitter_ms) * 1000);
  std::priority_queue<Held, std::vector<Held>, std::greater<Held>> held;
  std::vector<char> buffer(1 << 16);
  uint64_t delayed = 0;
  Steady::duration late_total{}, late_max{};
  while (!stop_requested) {
    int timeout_ms = -1;
    if (!held.empty()) {
      const auto wait = std::chrono::ceil<std::chrono::milliseconds>(held.top().due - Steady::now()).count();
      timeout_ms = static_cast<int>(std::max<long>(0, wait));
    }
    pollfd ready{fd, POLLIN, 0};
    if (poll(&ready, 1, timeout_ms) < 0 && errno != EINTR) Die("waiting for packets");
    if (ready.revents & POLLIN) {
      const ssize_t got = recv(fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
      if (got < 0 && errno == ENOBUFS) {
        std::fprintf(stderr, "vs-netdelay: the kernel dropped queue messages (socket buffer full)\n");
      } else if (got < 0 && errno != EAGAIN && errno != EINTR) {
        Die("receiving packets");
      }
      const auto now = Steady::now();
      for (uint32_t id : PacketIds(buffer.data(), got > 0 ? static_cast<size_t>(got) : 0)) {
        held.push({now + std::chrono::microseconds(delay_us(random)), id});
      }
    }
    const auto now = Steady::now();
    while (!held.empty() && held.top().due <= now) {
      Accept(fd, queue_num, held.top().packet_id);
      const auto late = now - held.top().due;
      late_total += late;
      late_max = std::max(late_max, late);
      ++delayed;
      held.pop();
    }
  }
  for (; !held.empty(); held.pop()) Accept(fd, queue_num, held.top().packet_id);
  using Ms = std::chrono::duration<double, std::milli>;
  std::printf("delayed %llu packets by %ld +- %ld ms, released late by %.2f ms on average, %.2f ms at worst\n",
              static_cast<unsigned long long>(delayed), delay_ms, jitter_ms,
              delayed > 0 ? Ms(late_total).count() / static_cast<double>(delayed) : 0.0, Ms(late_max).count());
  return 0;
}
