#include "bench/bench_lab.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace vs::lab {
namespace {

using namespace std::chrono_literals;
constexpr char kImageDir[] = "/var/lib/libvirt/images";

}  // namespace

BenchLab::BenchLab(Options options) : options_(std::move(options)) {
  const std::string up = "scripts/lab.sh up " + std::to_string(options_.min_hosts);
  hosts_ = Must(ReadInventory(), "lab inventory (is the lab up? " + up + ")");
  runtime_ = Must(virt::LibvirtRuntime::Start(), "libvirt");
  for (const LabHost& h : hosts_) conns_.push_back(Must(runtime_->Connect(h.uri, *clock_), h.uri));
  if (hosts_.size() < options_.min_hosts) {
    Die("the lab needs " + std::to_string(options_.min_hosts) + " hosts: " + up);
  }
}

void BenchLab::Reconnect(size_t i) {
  conns_[i] = Must(runtime_->Connect(hosts_[i].uri, *clock_), hosts_[i].uri);
}

bool BenchLab::IsOwn(const std::string& name) const {
  // An empty prefix would match every domain of the lab, other benches' and tests' included.
  return !options_.prefix.empty() && name.starts_with(options_.prefix);
}

void BenchLab::CleanUp() const {
  auto remove_domains = [&](bool shadows) {
    bool any = false;
    for (const auto& conn : conns_) {
      auto names = conn->ListDomainNames();
      if (!names.ok()) continue;
      for (const std::string& name : *names) {
        if (!IsOwn(name) || name.ends_with("-shadow") != shadows) continue;
        any = true;
        (void)conn->DestroyDomain(name);
        (void)conn->UndefineDomain(name);
      }
    }
    return any;
  };
  if (remove_domains(false)) {
    WaitUntil([&] {
      for (const auto& conn : conns_) {
        auto names = conn->ListDomainNames();
        if (names.ok() && std::any_of(names->begin(), names->end(), [&](const std::string& n) { return IsOwn(n); })) {
          return false;
        }
      }
      return true;
    }, 120s);
  }
  remove_domains(true);
  RemoveImages(options_.prefix);
}

void BenchLab::RemoveImages(const std::string& name_prefix) const {
  if (name_prefix.empty()) return;
  for (const LabHost& host : hosts_) {
    std::error_code ignored;
    for (const auto& entry : std::filesystem::directory_iterator(HostPath(host, kImageDir), ignored)) {
      if (entry.path().filename().string().starts_with(name_prefix)) std::filesystem::remove(entry.path(), ignored);
    }
  }
}

void BenchLab::Die(const std::string& what) const {
  std::fprintf(stderr, "%s: %s\n", options_.tool.c_str(), what.c_str());
  CleanUp();
  if (options_.on_die) options_.on_die();
  std::exit(1);
}

void BenchLab::Must(const Status& status, const std::string& what) const {
  if (!status.ok()) Die(what + ": " + status.ToString());
}

void BenchLab::MustRun(const std::string& command) const {
  CommandResult r = RunCommand(command);
  if (r.exit_code != 0) Die(command + " -> " + std::to_string(r.exit_code) + ": " + r.output);
}

double Median(std::vector<double> values) {
  values.erase(std::remove_if(values.begin(), values.end(), [](double x) { return std::isnan(x); }), values.end());
  if (values.empty()) return NAN;
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

double RecordField(const nlohmann::json& record, const char* key) {
  if (!record.contains(key)) return 0;
  const nlohmann::json& v = record[key];
  if (v.is_string()) return std::stod(v.get<std::string>());
  if (v.is_boolean()) return v.get<bool>() ? 1 : 0;
  return v.get<double>();
}

}  // namespace vs::lab
