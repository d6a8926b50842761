// ReplicationTarget: which VM a round replicates and to which host; a value shared by the replicator and the
// round queue.
#pragma once

#include <string>

namespace vs::replication {

struct ReplicationTarget {
  std::string vm_uuid;
  std::string vm_name;
  std::string shadow_host;
};

}  // namespace vs::replication
