# shellcheck shell=bash
# Sourced by k8s-up.sh and node-up.sh: free ports, the test PKI (openssl), kubeconfigs,
# detached daemons and etcd. The caller defines log() and sources k8s/paths.sh first.

# free_ports N [HOST]: prints N distinct free TCP ports on HOST (default 127.0.0.1). All
# sockets are held open until every port is chosen so the kernel cannot hand out the same
# port twice; the (small) window between closing them and the servers binding is accepted.
free_ports() {
    python3 - "$1" "${2:-127.0.0.1}" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((sys.argv[2], 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# --- certificates --------------------------------------------------------------------

# RSA everywhere: every client kvop's tests use (kubectl, kube-rs with rustls or openssl)
# accepts it, and generation of 2048-bit keys is fast enough (~0.1 s each).
new_key() { openssl genrsa -out "$1" 2048 2>/dev/null; }

make_ca() {
    local pki="$1"
    new_key "$pki/ca.key"
    openssl req -x509 -new -key "$pki/ca.key" -out "$pki/ca.crt" -days 3650 \
        -subj "/CN=kvop-test-ca" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

# sign_cert PKI NAME SUBJECT EXTENSIONS: key + certificate signed by the test CA.
sign_cert() {
    local pki="$1" name="$2" subject="$3" extensions="$4"
    new_key "$pki/$name.key"
    openssl req -new -key "$pki/$name.key" -subj "$subject" -out "$pki/$name.csr" 2>/dev/null
    openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
        -CAcreateserial -days 3650 -out "$pki/$name.crt" \
        -extfile <(printf '%s\n' "$extensions") 2>/dev/null
    rm -f "$pki/$name.csr"
}

# One-line base64 of a file (GNU `base64 -w0` is not portable).
b64() { base64 <"$1" | tr -d '\n'; }

# write_kubeconfig FILE SERVER PKI USER: credentials are embedded, so the file stays
# valid when copied and clients that resolve relative paths differently agree.
write_kubeconfig() {
    local file="$1" server="$2" pki="$3" user="$4"
    cat >"$file" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: kvop-test
  cluster:
    server: ${server}
    certificate-authority-data: $(b64 "$pki/ca.crt")
users:
- name: ${user}
  user:
    client-certificate-data: $(b64 "$pki/$user.crt")
    client-key-data: $(b64 "$pki/$user.key")
contexts:
- name: kvop-test
  context:
    cluster: kvop-test
    user: ${user}
    namespace: default
current-context: kvop-test
YAML
    chmod 600 "$file"
}

# start_daemon NAME LOG PIDFILE CMD...: runs CMD detached (own session, stdin from
# /dev/null, output to LOG) so that `$(k8s-up.sh DIR)` returns and a Ctrl-C in the
# caller's terminal does not hit it; k8s-down.sh stops it by the recorded PID.
start_daemon() {
    local name="$1" logfile="$2" pidfile="$3"
    shift 3
    setsid "$@" </dev/null >"$logfile" 2>&1 &
    echo $! >"$pidfile"
    log "started $name (pid $!)"
}

start_etcd() {
    local dir="$1" client_port="$2" peer_port="$3"
    start_daemon etcd "$dir/etcd.log" "$dir/etcd.pid" \
        "$ETCD_BIN" \
        --name=kvop-test \
        --data-dir="$dir/etcd-data" \
        --listen-client-urls="http://127.0.0.1:${client_port}" \
        --advertise-client-urls="http://127.0.0.1:${client_port}" \
        --listen-peer-urls="http://127.0.0.1:${peer_port}" \
        --initial-advertise-peer-urls="http://127.0.0.1:${peer_port}" \
        --initial-cluster="kvop-test=http://127.0.0.1:${peer_port}" \
        --unsafe-no-fsync \
        --log-level=warn
}
