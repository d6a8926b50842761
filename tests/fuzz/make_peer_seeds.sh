#!/bin/bash
# make_peer_seeds.sh - writes the seed corpus of peer_fuzz.cc into tests/fuzz/corpus/peer/: one well-formed request
# per peer call, each the two header bytes (call, caller: see peer_fuzz.cc) and the request in protobuf wire format,
# encoded by protoc from the text below. UUIDs starting 6 are VMs whose shadow h1 placed on this host (h2), 8 a VM
# with only a replica record naming h3 (peer_fuzz.cc's WhatThisHostKnows). Rerun it after a change to proto/ or to
# the input format, and commit the result.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
proto=$here/../../proto
out=$here/corpus/peer
command -v protoc >/dev/null ||
  { echo "make_peer_seeds: protoc is not installed (package protobuf-compiler)" >&2; exit 1; }
mkdir -p "$out"

vm=6f9619ff-8b86-d011-b42d-00c04fc964ff
recorded=8a5d6c1e-6f0a-4c43-9a39-5f2f1c3d2a10
vda=/var/lib/libvirt/images/web-vda.qcow2
vdb=/var/lib/libvirt/images/web-vdb.raw

# seed NAME CALL CALLER MESSAGE: the text proto on stdin. CALL and CALLER as peer_fuzz.cc reads bytes 0 and 1.
seed() {
  local name=$1 call=$2 caller=$3 message=$4
  { printf "\\x$(printf %02x "$call")\\x$(printf %02x "$caller")"
    protoc --encode="virtshadow.v1.$message" -I "$proto" "$proto/peer.proto"; } >"$out/$name"
}
# Callers: 0 unauthenticated, 1 h1, 2 h2, 3 h3.

seed get_replica 0 1 GetReplicaRequest <<END
vm_uuid: "$vm" replica_paths: "$vda" replica_paths: "$vdb"
END
seed apply_round 1 1 ApplyRoundRequest <<END
vm_uuid: "$vm" primary_host: "h1" base_checkpoint: "vs-1" round { checkpoint: "vs-2" taken_unix_ms: 1800000000000 }
disks { target: "vda" replica_path: "$vda" format: "qcow2" virtual_size: 10737418240
        source_uri: "nbd://10.0.0.1:10809/vda" mode: ROUND_MODE_INCREMENTAL
        dirty_context: "qemu:dirty-bitmap:backup-vda" }
disks { target: "vdb" replica_path: "$vdb" format: "raw" virtual_size: 1073741824
        source_uri: "nbd://10.0.0.1:10809/vdb" mode: ROUND_MODE_FULL }
END
# At the cap: two disks of 1 TiB, together exactly the 2 TiB a round may carry (one byte more is refused).
seed apply_round_at_the_size_cap 1 1 ApplyRoundRequest <<END
vm_uuid: "$vm" primary_host: "h1" base_checkpoint: "vs-1" round { checkpoint: "vs-2" }
disks { target: "vda" replica_path: "$vda" format: "qcow2" virtual_size: 1099511627776
        source_uri: "nbd://10.0.0.1:10809/vda" mode: ROUND_MODE_INCREMENTAL
        dirty_context: "qemu:dirty-bitmap:backup-vda" }
disks { target: "vdb" replica_path: "$vdb" format: "raw" virtual_size: 1099511627776
        source_uri: "nbd://10.0.0.1:10809/vdb" mode: ROUND_MODE_FULL }
END
# A resync of a 64 MiB + 1 byte disk: 1025 digests, one per 64 KiB block; at about 8 KiB it also raises libFuzzer's
# input length limit (the largest seed's size, else 4096 bytes) above the 4096-byte path limit.
seed apply_round_resync 1 0 ApplyRoundRequest <<END
vm_uuid: "$vm" primary_host: "h1" round { checkpoint: "vs-3" }
disks { target: "vdb" replica_path: "$vdb" format: "raw" virtual_size: 67108865
        source_uri: "nbd://10.0.0.1/vdb" mode: ROUND_MODE_RESYNC
        $(for i in $(seq 1 1025); do printf 'source_digests: %d ' "$((i * 2654435761))"; done) }
END
seed finish_round_commit 2 1 FinishRoundRequest <<END
vm_uuid: "$vm" checkpoint: "vs-2" commit: true
round { checkpoint: "vs-2" taken_unix_ms: 1800000000000 mode: ROUND_MODE_INCREMENTAL bytes_sent: 65536 digest: 42 }
END
seed finish_round_discard 2 3 FinishRoundRequest <<END
vm_uuid: "$recorded" checkpoint: "vs-2" commit: false
END
seed replica_digests 3 1 ReplicaDigestsRequest <<END
vm_uuid: "$vm" replica_path: "$vdb" format: "raw"
END
seed check_switchover 4 1 CheckSwitchoverRequest <<END
vm_uuid: "$vm" vcpus: 4 memory_kib: 4194304
END
seed prepare_switchover 5 1 PrepareSwitchoverRequest <<END
vm_uuid: "$vm"
disks { target: "vda" base_path: "$vda" top_path: "$vda.vs-top-1800000000000" format: "qcow2" }
disks { target: "vdb" base_path: "$vdb" top_path: "$vdb.vs-top-1800000000000" format: "raw" }
END
seed complete_switchover 6 1 CompleteSwitchoverRequest <<END
vm_uuid: "$vm" vm_name: "web" origin_host: "h1" source_checkpoints: "vs-1" source_checkpoints: "vs-2"
disks { target: "vda" base_path: "$vda" top_path: "$vda.vs-top-1800000000000" format: "qcow2" }
END
seed complete_switchover_guest_failed 6 0 CompleteSwitchoverRequest <<END
vm_uuid: "$vm" vm_name: "web" origin_host: "h3" guest_failed: "no block or network I/O for 30 s"
END
seed abort_switchover 7 1 AbortSwitchoverRequest <<END
vm_uuid: "$vm"
disks { target: "vda" base_path: "$vda" top_path: "$vda.vs-top-1800000000000" format: "qcow2" }
END
seed query_promotion 8 1 PromotionQueryRequest <<END
vm_uuid: "$vm" asking_host: "h1"
END
seed discard_stale_copy 9 3 DiscardStaleCopyRequest <<END
vm_uuid: "$recorded" asking_host: "h3"
END
echo "make_peer_seeds: $(ls "$out" | wc -l) seeds in $out"
