#include "shadowd/virt/libvirt_error.h"

#include <cerrno>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <string>

namespace vs::virt {
namespace {

Code CodeFor(int vir_code) {
  switch (vir_code) {
    case VIR_ERR_NO_DOMAIN:
    case VIR_ERR_NO_STORAGE_VOL:
    case VIR_ERR_NO_STORAGE_POOL:
    case VIR_ERR_NO_DOMAIN_CHECKPOINT:
    case VIR_ERR_NO_DOMAIN_SNAPSHOT:
    case VIR_ERR_NO_DOMAIN_METADATA:
      return Code::kNotFound;
    case VIR_ERR_XML_ERROR:
    case VIR_ERR_XML_DETAIL:
    case VIR_ERR_INVALID_ARG:
    case VIR_ERR_CONFIG_UNSUPPORTED:
      return Code::kInvalidArgument;
    case VIR_ERR_OPERATION_INVALID:
    case VIR_ERR_OPERATION_UNSUPPORTED:
    case VIR_ERR_NO_SUPPORT:
    case VIR_ERR_MIGRATE_UNSAFE:
    case VIR_ERR_OPERATION_DENIED:  // read-only connection
      return Code::kFailedPrecondition;
    case VIR_ERR_OPERATION_TIMEOUT:
    case VIR_ERR_AGENT_UNRESPONSIVE:
      return Code::kDeadlineExceeded;
    case VIR_ERR_SYSTEM_ERROR:
    case VIR_ERR_NO_CONNECT:
    case VIR_ERR_RPC:
    case VIR_ERR_AUTH_UNAVAILABLE:
      return Code::kUnavailable;
    case VIR_ERR_OPERATION_ABORTED:
    case VIR_ERR_OPERATION_FAILED:  // e.g. "domain is already being migrated": a concurrent job won
      return Code::kAborted;
    case VIR_ERR_DOM_EXIST:
      return Code::kAlreadyExists;
    case VIR_ERR_CHECKPOINT_INCONSISTENT:  // a bitmap QEMU reloaded as inconsistent after a crash
      return Code::kDataLoss;
    default:
      return Code::kInternal;
  }
}

}  // namespace

Code CodeForLibvirtError(int domain, int code) {
  if (domain == VIR_FROM_RPC) return Code::kUnavailable;
  return CodeFor(code);
}

Status LastLibvirtError(std::string_view what) {
  virErrorPtr err = virGetLastError();
  if (err == nullptr) return Internal(std::string(what) + ": unknown libvirt error");
  Code code = CodeForLibvirtError(err->domain, err->code);
  // A system error carries its errno in int1: a file or folder that is not there is NotFound, not a host that
  // cannot be reached (e.g. the folder of an image already removed). RPC errors were translated above.
  if (code == Code::kUnavailable && err->code == VIR_ERR_SYSTEM_ERROR && err->int1 == ENOENT) code = Code::kNotFound;
  Status status(code, std::string(what) + ": " + (err->message ? err->message : "no message"));
  virResetLastError();
  return status;
}

}  // namespace vs::virt
