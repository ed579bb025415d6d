#!/bin/sh
# Run once, against the new etcd cluster, as the etcd root user's certificate holder:
# creates the `regdns` user (password from $REGDNS_ETCD_PASSWORD_FILE, the same file the
# regdns nodes read) limited to the /regdns/ prefix, a root user, and enables auth.
#   ETCDCTL_ENDPOINTS=https://10.0.0.5:2379,https://10.1.0.5:2379,https://10.2.0.5:2379 \
#   ETCDCTL_CACERT=/etc/etcd/pki/ca.pem ETCDCTL_CERT=/etc/etcd/pki/root.pem \
#   ETCDCTL_KEY=/etc/etcd/pki/root-key.pem ROOT_PASSWORD_FILE=... \
#   REGDNS_ETCD_PASSWORD_FILE=/etc/regdns/etcd-password  sh setup-auth.sh
set -eu
export ETCDCTL_API=3
: "${ROOT_PASSWORD_FILE:?path of the etcd root password}"
: "${REGDNS_ETCD_PASSWORD_FILE:?path of the regdns user password}"
PREFIX=${REGDNS_PREFIX:-/regdns/}
etcdctl user add root --new-user-password="$(cat "$ROOT_PASSWORD_FILE")"
etcdctl user add regdns --new-user-password="$(cat "$REGDNS_ETCD_PASSWORD_FILE")"
etcdctl role add regdns-rw
etcdctl role grant-permission regdns-rw readwrite --prefix=true "$PREFIX"
etcdctl user grant-role regdns regdns-rw
etcdctl auth enable
echo "etcd auth enabled; user regdns may read and write $PREFIX only"
