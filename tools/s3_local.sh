#!/usr/bin/env bash
# A local S3 server for trying and testing deepconv's object storage: moto's standalone server over TLS (litdata's
# obstore transfers refuse plain HTTP) with a throwaway CA and a certificate for 127.0.0.1.
#   tools/s3_local.sh start [DIR]   # writes DIR/env (default /tmp/deepconv-s3): `source DIR/env`, then s3://... works
#   tools/s3_local.sh stop [DIR]    # stops the server started there
#   tools/s3_local.sh status [DIR]  # exit 0 when it answers
# Needs openssl and `pip install 'moto[server]'` (in the dev extra). Idempotent: start on a running server is a no-op.
set -euo pipefail
cmd=${1:-}
dir=${2:-${DEEPCONV_S3_DIR:-/tmp/deepconv-s3}}
port=${DEEPCONV_S3_PORT:-9443}

answers() {  # the server in $dir/env answers over TLS with the CA written there
    [ -f "$dir/env" ] && (. "$dir/env" && python3 -c 'import ssl, sys, urllib.request
urllib.request.urlopen(sys.argv[1], context=ssl.create_default_context(cafile=sys.argv[2]), timeout=3)' \
        "$AWS_ENDPOINT_URL" "$AWS_CA_BUNDLE" 2>/dev/null)
}

case "$cmd" in
start)
    if answers; then echo "S3 server already running: source $dir/env"; exit 0; fi
    command -v moto_server >/dev/null || { echo "moto_server not found: pip install 'moto[server]'" >&2; exit 1; }
    mkdir -p "$dir"
    cd "$dir"
    if [ ! -f srv.crt ]; then
        openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=deepconv test CA" \
            -keyout ca.key -out ca.crt 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout srv.key -out srv.csr 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' > srv.ext
        openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -extfile srv.ext \
            -out srv.crt 2>/dev/null
    fi
    nohup moto_server -H 127.0.0.1 -p "$port" -c srv.crt -k srv.key > server.log 2>&1 &
    echo $! > server.pid
    cat > env <<EOF
export AWS_ENDPOINT_URL=https://127.0.0.1:$port
export AWS_CA_BUNDLE=$dir/ca.crt
export SSL_CERT_FILE=$dir/ca.crt
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_DEFAULT_REGION=us-east-1
EOF
    for _ in $(seq 50); do answers && { echo "S3 server on https://127.0.0.1:$port: source $dir/env"; exit 0; }
        sleep 0.2; done
    echo "the S3 server did not answer on port $port (see $dir/server.log)" >&2; exit 1 ;;
stop)
    if [ -f "$dir/server.pid" ]; then kill "$(cat "$dir/server.pid")" 2>/dev/null || true; rm -f "$dir/server.pid"; fi
    rm -f "$dir/env"; echo "S3 server stopped" ;;
status)
    answers && echo "running: source $dir/env" || { echo "not running" >&2; exit 1; } ;;
*)
    echo "usage: $0 start|stop|status [DIR]" >&2; exit 2 ;;
esac
