# Shared helpers of the benchmark scripts (bench.sh, bench-handshake.sh, bench-messages.sh,
# bench-idle.sh): sourced, not run. Every server they start is recorded in `pids` and killed by
# bench_cleanup; traffic goes to 127.0.0.1 only.
#
# The caller sets `repo` (the repository root) and calls bench_build, then bench_workdir DIR.
# Afterwards: $server_bin, $client_bin, $nio_bin (empty with skip_nio=1), $work (certs in
# $work/pki, tokens in $work/tokens, user bench's token in $work/token), $tick (clock ticks/s).

pids=()
bench_cert_args=()
bench_keep=${bench_keep:-0}

bench_log() { echo "$(basename "$0" .sh): $*" >&2; }

# Release builds of the server, the client and (unless skip_nio=1) the NIO baseline, in .build-nio.
# With no_build=1, the binaries built last are used as they are.
bench_build() {
    if [ "${no_build:-0}" = 0 ]; then
        bench_log "building gatehouse-server and gatehouse (release)"
        swift build -c release --product gatehouse-server >/dev/null
        swift build -c release --product gatehouse >/dev/null
    fi
    local bindir
    bindir=$(swift build -c release --show-bin-path)
    server_bin=$bindir/gatehouse-server
    client_bin=$bindir/gatehouse
    nio_bin=""
    if [ "${skip_nio:-0}" = 0 ]; then
        if [ "${no_build:-0}" = 0 ]; then
            bench_log "building the NIO baseline (release; the first build compiles BoringSSL: several minutes)"
            swift build -c release --package-path Benchmarks/NIOBaseline --scratch-path "$repo/.build-nio" >/dev/null
        fi
        nio_bin=$(swift build -c release --package-path Benchmarks/NIOBaseline --scratch-path "$repo/.build-nio" \
            --show-bin-path)/nio-baseline
    fi
}

# A temporary folder under DIR with a PKI (gen-certs.sh options in the array bench_cert_args, e.g.
# --rsa), a token file and user bench's token; removed on exit.
bench_workdir() {
    work=$(mktemp -d "${1:-${TMPDIR:-/tmp}}/gatehouse-bench.XXXXXX")
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    bash scripts/gen-certs.sh --out "$work/pki" --quiet "${bench_cert_args[@]}"
    "$server_bin" token add bench --tokens "$work/tokens" >"$work/token" 2>/dev/null
    chmod 600 "$work/token"
    tick=$(getconf CLK_TCK)
}

bench_cleanup() {
    local p
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "$bench_keep" = 1 ]; then bench_log "kept $work"; else rm -rf "$work"; fi
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# User + system clock ticks of a process.
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
wait_port() { for _ in $(seq 200); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }

# start_server IMPL CORES WORKERS FSYNC [extra server options...]: starts one server on a fresh port
# and journal, pinned to CPUs CORES (e.g. 0, or 0-1); sets $port, $pid, $srvlog. IMPL: gatehouse,
# before (the binary $before_bin), nio, or s_server. Waits until it accepts connections.
start_server() {
    local impl=$1 cores=$2 workers=$3 fsync=$4
    shift 4
    port=$(free_port)
    srvlog=$work/server-$impl-$port.log
    local journal=$work/journal-$port.jsonl
    case "$impl" in
        gatehouse | before)
            local bin=$server_bin
            [ "$impl" = before ] && bin=$before_bin
            taskset -c "$cores" "$bin" serve --host 127.0.0.1 --port "$port" --workers "$workers" \
                --cert "$work/pki/server.crt" --key "$work/pki/server.key" --tokens "$work/tokens" \
                --journal "$journal" --fsync "$fsync" --log-level warning "$@" >/dev/null 2>"$srvlog" &
            ;;
        nio)
            taskset -c "$cores" "$nio_bin" --host 127.0.0.1 --port "$port" --threads "$workers" \
                --cert "$work/pki/server.crt" --key "$work/pki/server.key" --tokens "$work/tokens" \
                --journal "$journal" --fsync "$fsync" >/dev/null 2>"$srvlog" &
            ;;
        s_server)
            taskset -c "$cores" openssl s_server -cert "$work/pki/server.crt" -key "$work/pki/server.key" \
                -accept "$port" -naccept 100000000 -quiet >/dev/null 2>"$srvlog" </dev/null &
            ;;
        *) bench_log "unknown server $impl"; exit 2 ;;
    esac
    pid=$!
    pids+=("$pid")
    wait_port "$port" || { bench_log "$impl did not start:"; cat "$srvlog" >&2; exit 1; }
}

# Stops a server with SIGTERM (graceful drain), SIGKILL after 20 s.
stop_server() {
    local p=$1
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}

# The client with the connection options of the server started last (user bench), then ARGS.
bench_client() {
    "$client_bin" "$@" --host 127.0.0.1 --port "$port" --ca "$work/pki/ca.crt" --server-name localhost \
        --user bench --token-file "$work/token"
}
