# The Kubernetes API server (kube-apiserver), built from the published k8s.io/kubernetes
# module (hack/kube/apiserver), serving HTTPS on loopback with client certificates, RBAC and
# service-account tokens, and storing in the etcd component (started first when needed).
# No scheduler, controller-manager or kubelet runs: objects are stored, validated, watched
# and authorized for real, but no pods run. See hack/kube/README.md.
# Not in the default set: `hack/infra.sh up etcd kube`.
kube_PORT="${TIMEDEAL_KUBE_PORT:-6443}"
kube_PORT_SETTING=TIMEDEAL_KUBE_PORT
KUBE_VERSION="$("$REPO_ROOT/hack/kube/build.sh" version kube)"
KUBE_BIN="$TIMEDEAL_CACHE/kube-$KUBE_VERSION/kube-apiserver"
KUBE_SERVICE_CIDR="${TIMEDEAL_KUBE_SERVICE_CIDR:-10.96.0.0/12}"
KUBE_FIRST_SERVICE_IP="${TIMEDEAL_KUBE_FIRST_SERVICE_IP:-10.96.0.1}" # the `kubernetes` Service
KUBE_KUBECONFIG="$TIMEDEAL_STATE_DIR/kubeconfig"

kube_pki() { echo "$(data_dir kube)/pki"; }

kube_install() {
  command -v openssl >/dev/null || apt_install openssl
  command -v curl >/dev/null || apt_install curl ca-certificates
  if [ ! -x "$KUBE_BIN" ]; then
    "$REPO_ROOT/hack/kube/build.sh" kube-apiserver "$(dirname "$KUBE_BIN")" ||
      die "kube: building kube-apiserver $KUBE_VERSION failed"
  fi
  "$REPO_ROOT/hack/kube/tools.sh" | sed "s/^/[infra] kube: /" >&2 || die "kube: installing kubectl and helm failed"
}

# A private key and a certificate signed by a CA of the folder. EC P-256 keys: quick to make,
# accepted by the API server, kubectl and Node's TLS alike.
kube_cert() { # dir name subject extensions-section signing-ca
  local d="$1"
  openssl req -new -config "$d/openssl.cnf" -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$d/$2.key" -subj "$3" -out "$d/$2.csr" 2>/dev/null &&
    openssl x509 -req -in "$d/$2.csr" -CA "$d/$5.crt" -CAkey "$d/$5.key" -set_serial "0x$(openssl rand -hex 16)" \
      -days 825 -extfile "$d/openssl.cnf" -extensions "$4" -out "$d/$2.crt" 2>/dev/null &&
    rm -f "$d/$2.csr"
}

kube_ca() { # dir name subject
  openssl req -x509 -config "$1/openssl.cnf" -extensions ca -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -nodes -keyout "$1/$2.key" -subj "$3" -days 3650 -out "$1/$2.crt" 2>/dev/null
}

# Made once per state folder, so the kubeconfig and tokens stay valid across restarts.
kube_certs() {
  local pki work
  pki="$(kube_pki)"
  [ -f "$pki/sa.pub" ] && return 0
  log "kube: creating a CA, serving and client certificates and the service-account key in $pki"
  work="$pki.partial"
  rm -rf "$work" && mkdir -p "$work" && chmod 700 "$work"
  cat >"$work/openssl.cnf" <<CNF
[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost, IP:$KUBE_FIRST_SERVICE_IP, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
CNF
  (
    umask 077
    kube_ca "$work" ca /CN=timedeal-local-ca &&
      kube_cert "$work" apiserver /CN=kube-apiserver server ca &&
      kube_cert "$work" admin "/O=system:masters/CN=timedeal-admin" client ca &&
      kube_ca "$work" front-proxy-ca /CN=timedeal-local-front-proxy-ca &&
      kube_cert "$work" front-proxy-client /CN=front-proxy-client client front-proxy-ca &&
      openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/sa.key" 2>/dev/null &&
      openssl pkey -in "$work/sa.key" -pubout -out "$work/sa.pub" 2>/dev/null
  ) || die "kube: openssl could not create the certificates"
  rm -rf "$pki" && mv "$work" "$pki"
}

# An admin kubeconfig with the certificates inline, so it can be copied or read by any client.
kube_write_kubeconfig() {
  local pki
  pki="$(kube_pki)"
  if ! (
    umask 077
    cat >"$KUBE_KUBECONFIG.tmp" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
  - name: timedeal-local
    cluster:
      server: https://$INFRA_HOST:$kube_PORT
      certificate-authority-data: $(base64 -w0 <"$pki/ca.crt")
users:
  - name: timedeal-admin
    user:
      client-certificate-data: $(base64 -w0 <"$pki/admin.crt")
      client-key-data: $(base64 -w0 <"$pki/admin.key")
contexts:
  - name: timedeal-local
    context:
      cluster: timedeal-local
      user: timedeal-admin
current-context: timedeal-local
KUBECONFIG
  ) || ! mv "$KUBE_KUBECONFIG.tmp" "$KUBE_KUBECONFIG"; then
    die "kube: could not write $KUBE_KUBECONFIG"
  fi
}

kube_start() {
  if ! { our_pid etcd >/dev/null && etcd_ready; }; then
    log "kube: the API server stores its objects in etcd; bringing etcd up first"
    up_one etcd
  fi
  kube_certs
  kube_write_kubeconfig
  local pki
  pki="$(kube_pki)"
  # The endpoint reconciler would publish the advertised address as the endpoint of the
  # `kubernetes` Service, and the API server refuses to start with a loopback address there;
  # it is off (nothing here routes to Services anyway). The Service itself still exists.
  start_daemon kube "$KUBE_BIN" \
    --bind-address="$INFRA_HOST" --advertise-address="$INFRA_HOST" --secure-port="$kube_PORT" \
    --etcd-servers="http://$INFRA_HOST:$etcd_PORT" \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" \
    --authorization-mode=Node,RBAC --anonymous-auth=true \
    --service-cluster-ip-range="$KUBE_SERVICE_CIDR" --endpoint-reconciler-type=none \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --requestheader-client-ca-file="$pki/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$pki/front-proxy-client.crt" --proxy-client-key-file="$pki/front-proxy-client.key" \
    --allow-privileged=true --profiling=false
}

kube_curl() { # path
  local pki; pki="$(kube_pki)"
  curl -fsS --max-time 5 --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
    "https://$INFRA_HOST:$kube_PORT$1"
}

kube_ready() { [ "$(kube_curl /readyz 2>/dev/null)" = ok ]; }

# /readyz turns ok before the system namespaces exist; wait for `default` so callers can use it.
kube_after_start() {
  local deadline=$((SECONDS + 30))
  until kube_curl /api/v1/namespaces/default >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || die "kube: the default namespace did not appear within 30s"
    sleep 0.3
  done
  log "kube: admin kubeconfig at $KUBE_KUBECONFIG (kubectl and helm in $TIMEDEAL_CACHE/bin)"
}

kube_version() { echo "${KUBE_VERSION#v}"; }
kube_address() { echo "$INFRA_HOST:$kube_PORT"; }
kube_env() { echo "KUBECONFIG=$KUBE_KUBECONFIG"; }
