#!/bin/bash
# pki.sh - one PKI for the cluster's hosts, in libvirt's layout (https://libvirt.org/kbase/tlscerts.html), made with
# GnuTLS's certtool.
#
#   pki.sh ca CA_DIR                       make the CA unless CA_DIR holds it: CA_DIR/cacert.pem and CA_DIR/cakey.pem
#                                          (the key stays here, never under a host's /etc/pki)
#   pki.sh host CA_DIR ROOT NAME ADDRESS   issue host NAME (its cluster name, as in shadowd.conf's [host.NAME]) with
#                                          IP ADDRESS a server and a client certificate and install them under ROOT
#                                          (/ on a real host; a lab host's private tree otherwise):
#     ROOT/etc/pki/CA/cacert.pem                                  the CA (libvirtd, virsh and shadowd)
#     ROOT/etc/pki/libvirt/servercert.pem, private/serverkey.pem  libvirtd's server side and shadowd's peer service
#     ROOT/etc/pki/libvirt/clientcert.pem, private/clientkey.pem  libvirt clients run as root and shadowd's peer client
#     ROOT/etc/pki/qemu/{ca-cert,server-cert,server-key,client-cert,client-key}.pem   QEMU (migration, NBD)
#     ROOT/etc/pki/qemu/dh-params.pem   the CA's Diffie-Hellman parameters: without them QEMU generates its own
#                                       each time it loads server credentials (every incoming migration, every
#                                       TLS backup export), in its main loop
#   pki.sh client CA_DIR DIR NAME          issue NAME (an administrator or a test harness, not a host) a client
#                                          certificate, in libvirt's per-user layout for its pkipath= URI option:
#     DIR/cacert.pem, DIR/clientcert.pem, DIR/clientkey.pem  (e.g. virsh -c 'qemu+tls://h1/system?pkipath=DIR')
#                                          The peer service refuses it (it names no host of the cluster).
#
# Every certificate names the host as its CN and as dNSName and iPAddress subject alternative names; keys are 0600,
# root's, except QEMU's, which belong to the user QEMU runs as ($VS_QEMU_USER, default libvirt-qemu: Debian's
# qemu.conf `user`), as QEMU opens them itself. The same key and certificate serve libvirt and QEMU. Keys are RSA
# (certtool's default, 3072 bits): libvirt refuses a certificate whose critical key usage lacks key encipherment,
# which certtool does not give an ECDSA key.
#
# Idempotent: an existing CA is kept; a host's certificates are kept while they verify against the CA, name NAME and
# ADDRESS and match their keys, and are issued anew otherwise (a new address, a new CA). The files' modes and owners
# are set on every run.
set -euo pipefail
die() { echo "pki: $*" >&2; exit 1; }
usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
command -v certtool >/dev/null || die "certtool not found; install GnuTLS's tools: apt-get install gnutls-bin"
DAYS=3650
QEMU_USER=${VS_QEMU_USER:-libvirt-qemu}

# certtool's own error output is kept for the message, as it says what was wrong with a file.
run_certtool() {  # run_certtool WHAT ARGS...: certtool, quiet unless it fails
  local what=$1 out; shift
  out=$(certtool "$@" 2>&1) || die "certtool failed $what: $out"
}

make_ca() {  # make_ca CA_DIR
  local dir=$1
  local key=$dir/cakey.pem cert=$dir/cacert.pem
  if [ -e "$key" ] && [ -e "$cert" ]; then
    certtool --verify --load-ca-certificate "$cert" --infile "$cert" >/dev/null 2>&1 ||
      die "$cert is not a CA certificate certtool can verify; restore it, or remove $dir to start a new PKI (every host then needs new certificates)"
    return 0
  fi
  [ -e "$key" ] && die "$dir has cakey.pem but no cacert.pem; restore the certificate, or remove $dir to start a new PKI"
  [ -e "$cert" ] && die "$dir has cacert.pem but no cakey.pem; restore the key, or remove $dir to start a new PKI"
  mkdir -p "$dir" || die "cannot make the CA's directory $dir"
  chmod 700 "$dir" || die "cannot make $dir private (chmod 700)"
  (umask 077 && run_certtool "making the CA's key $key" --generate-privkey --outfile "$key")
  local template; template=$(mktemp) || die "cannot make a temporary file for the CA's template"
  printf 'cn = "virt-shadow CA"\nca\ncert_signing_key\nexpiration_days = %s\n' "$DAYS" >"$template"
  run_certtool "making the CA's certificate $cert" --generate-self-signed --load-privkey "$key" \
    --template "$template" --outfile "$cert"
  rm -f "$template"
  echo "pki: made the CA in $dir"
}

make_dh_params() {  # make_dh_params CA_DIR: CA_DIR/dh-params.pem unless it is there
  local file=$1/dh-params.pem
  [ -s "$file" ] && return 0
  run_certtool "making Diffie-Hellman parameters $file" --generate-dh-params --bits 2048 --outfile "$file"
}

# Whether CERT with KEY is still right for NAME at ADDRESS (none when empty) under the CA CA_CERT.
cert_current() {  # cert_current CA_CERT CERT KEY NAME ADDRESS
  local ca=$1 cert=$2 key=$3 name=$4 address=$5 info
  [ -e "$cert" ] && [ -e "$key" ] || return 1
  certtool --verify --load-ca-certificate "$ca" --infile "$cert" >/dev/null 2>&1 || return 1
  info=$(certtool --certificate-info --infile "$cert" 2>/dev/null) || return 1
  sed 's/^[[:space:]]*//' <<<"$info" | grep -qxF "DNSname: $name" || return 1
  if [ -n "$address" ]; then sed 's/^[[:space:]]*//' <<<"$info" | grep -qxF "IPAddress: $address" || return 1; fi
  local cert_pub key_pub
  cert_pub=$(certtool --pubkey-info --load-certificate "$cert" 2>/dev/null | public_key_pem) || return 1
  key_pub=$(certtool --pubkey-info --load-privkey "$key" 2>/dev/null | public_key_pem) || return 1
  [ -n "$cert_pub" ] && [ "$cert_pub" = "$key_pub" ]
}
public_key_pem() { sed -n '/BEGIN PUBLIC KEY/,/END PUBLIC KEY/p'; }

issue() {  # issue CA_DIR KIND(server|client) NAME ADDRESS(or empty) CERT KEY
  local ca_dir=$1 kind=$2 name=$3 address=$4 cert=$5 key=$6 template
  cert_current "$ca_dir/cacert.pem" "$cert" "$key" "$name" "$address" && return 0
  (umask 077 && run_certtool "making $name's $kind key $key" --generate-privkey --outfile "$key")
  template=$(mktemp) || die "cannot make a temporary file for $name's $kind template"
  {
    printf 'organization = "virt-shadow"\ncn = "%s"\ndns_name = "%s"\n' "$name" "$name"
    [ -z "$address" ] || printf 'ip_address = "%s"\n' "$address"
    printf 'tls_www_%s\nencryption_key\nsigning_key\nexpiration_days = %s\n' "$kind" "$DAYS"
  } >"$template"
  run_certtool "issuing $name's $kind certificate $cert" --generate-certificate --load-privkey "$key" \
    --load-ca-certificate "$ca_dir/cacert.pem" --load-ca-privkey "$ca_dir/cakey.pem" --template "$template" \
    --outfile "$cert"
  rm -f "$template"
  echo "pki: issued $name's $kind certificate $cert"
}

install_file() {  # install_file SRC DEST MODE OWNER
  install -D -m "$3" -o "$4" -g "$(id -g "$4")" "$1" "$2" 2>/dev/null || die "cannot install $2 (mode $3, owner $4); run as root"
}

host() {  # host CA_DIR ROOT NAME ADDRESS
  local ca_dir=$1 root=$2 name=$3 address=$4
  [[ $name =~ ^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]] ||
    die "host name '$name' is not a DNS name (letters, digits, '-' and '.'); use its name in shadowd.conf"
  [[ $address =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ || $address == *:* ]] ||
    die "address '$address' is not an IP address; give the host's address in shadowd.conf"
  [ -d "$root" ] || die "root $root is not a directory; make it first (/ for this host itself)"
  [ -e "$ca_dir/cacert.pem" ] && [ -e "$ca_dir/cakey.pem" ] || die "no CA in $ca_dir; make it first: $0 ca $ca_dir"
  id -u "$QEMU_USER" >/dev/null 2>&1 ||
    die "user $QEMU_USER (QEMU's, for its keys) does not exist; install libvirt-daemon-system or set VS_QEMU_USER"
  # The issued pairs live in the PKI's directory, per host; the installed files are copies of them.
  local issued=$ca_dir/hosts/$name pki=${root%/}/etc/pki
  mkdir -p "$issued" || die "cannot make $issued"
  chmod 700 "$issued" || die "cannot make $issued private (chmod 700)"
  issue "$ca_dir" server "$name" "$address" "$issued/servercert.pem" "$issued/serverkey.pem"
  issue "$ca_dir" client "$name" "$address" "$issued/clientcert.pem" "$issued/clientkey.pem"

  install_file "$ca_dir/cacert.pem" "$pki/CA/cacert.pem" 644 root
  install_file "$issued/servercert.pem" "$pki/libvirt/servercert.pem" 644 root
  install_file "$issued/clientcert.pem" "$pki/libvirt/clientcert.pem" 644 root
  install_file "$issued/serverkey.pem" "$pki/libvirt/private/serverkey.pem" 600 root
  install_file "$issued/clientkey.pem" "$pki/libvirt/private/clientkey.pem" 600 root
  chmod 700 "$pki/libvirt/private" || die "cannot make $pki/libvirt/private private (chmod 700)"
  install_file "$ca_dir/cacert.pem" "$pki/qemu/ca-cert.pem" 644 root
  install_file "$issued/servercert.pem" "$pki/qemu/server-cert.pem" 644 root
  install_file "$issued/clientcert.pem" "$pki/qemu/client-cert.pem" 644 root
  install_file "$issued/serverkey.pem" "$pki/qemu/server-key.pem" 600 "$QEMU_USER"
  install_file "$issued/clientkey.pem" "$pki/qemu/client-key.pem" 600 "$QEMU_USER"
  make_dh_params "$ca_dir"
  install_file "$ca_dir/dh-params.pem" "$pki/qemu/dh-params.pem" 644 root
  echo "pki: $name ($address) installed under $pki"
}

client() {  # client CA_DIR DIR NAME
  local ca_dir=$1 dir=$2 name=$3
  [[ $name =~ ^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]] || die "client name '$name' must be letters, digits, '-' and '.'"
  [ -e "$ca_dir/cacert.pem" ] && [ -e "$ca_dir/cakey.pem" ] || die "no CA in $ca_dir; make it first: $0 ca $ca_dir"
  mkdir -p "$dir" || die "cannot make $dir"
  chmod 700 "$dir" || die "cannot make $dir private (chmod 700)"
  issue "$ca_dir" client "$name" "" "$dir/clientcert.pem" "$dir/clientkey.pem"
  install -m 644 "$ca_dir/cacert.pem" "$dir/cacert.pem" || die "cannot install $dir/cacert.pem"
  chmod 600 "$dir/clientkey.pem" || die "cannot make $dir/clientkey.pem private"
  echo "pki: client $name installed in $dir"
}

[ $# -ge 1 ] || usage
case $1 in
  ca) [ $# = 2 ] || usage; make_ca "$2" ;;
  host) [ $# = 5 ] || usage; host "$2" "$3" "$4" "$5" ;;
  client) [ $# = 4 ] || usage; client "$2" "$3" "$4" ;;
  *) usage ;;
esac
