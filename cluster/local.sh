#!/usr/bin/env bash
# Start, inspect and stop a multi-node Ray cluster on ONE machine, for trying
# multi-node behaviour (trial placement, shared results storage, resume) without
# a cloud account.
#
#   cluster/local.sh start  [--workers N] [--port P] [--cpus C] [--resources JSON]
#                           [--gpus G] [--head-cpus H] [--object-store-memory BYTES]
#                           [--port-base B] [--dashboard-port D] [--state-dir DIR]
#   cluster/local.sh status [--port P] [--state-dir DIR]
#   cluster/local.sh env    [--port P]            # print the exports a client needs
#   cluster/local.sh stop   [--port P] [--state-dir DIR]
#
# Layout: one head (`ray start --head`) plus N worker nodes, each a separate
# `ray start --address=127.0.0.1:P` with its own temp dir, its own port ranges
# and its own resources. Every process binds to 127.0.0.1. Nodes start in the
# current directory, and trial processes run there: start the cluster from the
# directory you run `harma` from (the repository root) so relative study paths
# (results/, data/, checkpoints/) mean the same thing in the driver and in trials.
#
#   --workers N      worker nodes besides the head (default 1)
#   --port P         GCS port of the head; the cluster address is 127.0.0.1:P (default 6379)
#   --cpus C         logical CPUs per worker node (default 1)
#   --resources JSON custom resources per worker node (default '{"worker_node": 1, "trial_slot": 1}':
#                    studies can pin trials to worker nodes; studies/smoke.yaml asks for trial_slot);
#                    each worker also gets "local_worker_<i>": 1, the head gets "head_node": 1
#   --gpus G         GPUs per worker node; worker i sees devices (i-1)*G .. i*G-1 through
#                    CUDA_VISIBLE_DEVICES (default 0; the head never advertises GPUs)
#   --head-cpus H    logical CPUs on the head (default 1; 0 keeps all trials off the head)
#   --object-store-memory BYTES  per node (default 200 MiB; Ray's minimum is 75 MiB)
#   --port-base B    node i uses ports B+100*i .. B+100*i+99 (default P+20000)
#   --dashboard-port D  head dashboard, bound to 127.0.0.1 (default 8265; needs ray[default])
#   --state-dir DIR  pids, logs and per-node Ray temp dirs (default /tmp/harma-ray-<uid>-<P>)
#
# Loopback: on Linux `ray start` swaps 127.0.0.1 for the host's LAN address, and the
# switch that stops it (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0) also refuses worker
# nodes. So nodes are started through cluster/ray_loopback.py (the `ray` CLI with the
# node IP pinned to 127.0.0.1) and every process, clients included, gets
# RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0; `cluster/local.sh env` prints what clients need.
#
# Each node is started as `setsid ray start --block ...`: the blocking `ray start`
# process leads a new session, and every Ray process of that node (gcs_server,
# raylet, dashboard, workers) lives inside that session. `stop` signals only the
# sessions whose leader pids this script recorded under the state dir, so other
# Ray clusters on the machine (yours or other users') are never touched; there is
# no `ray stop` here on purpose.
#
# Token authentication stays on: RAY_AUTH_MODE=token for every node and for the
# clients. The token is read from RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or
# ~/.ray/auth_token (generated with mode 0600 on first start if none exists).
set -euo pipefail

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

# ---------------------------------------------------------------- defaults ---
CMD="${1:-}"
[[ $# -gt 0 ]] && shift
WORKERS=1
PORT=6379
WORKER_CPUS=1
WORKER_GPUS=0
HEAD_CPUS=1
RESOURCES='{"worker_node": 1, "trial_slot": 1}'
OBJECT_STORE_MEMORY=$((200 * 1024 * 1024))   # 200 MiB per node (Ray's minimum is 75 MiB)
PORT_BASE=""
DASHBOARD_PORT=8265
STATE_DIR=""
RAY_BIN="${RAY_BIN:-ray}"
PYTHON_BIN="${PYTHON_BIN:-$(command -v python || command -v python3 || echo python)}"

while [[ $# -gt 0 ]]; do
    case "$1" in
        --workers) WORKERS="$2"; shift 2 ;;
        --port) PORT="$2"; shift 2 ;;
        --cpus) WORKER_CPUS="$2"; shift 2 ;;
        --gpus) WORKER_GPUS="$2"; shift 2 ;;
        --head-cpus) HEAD_CPUS="$2"; shift 2 ;;
        --resources) RESOURCES="$2"; shift 2 ;;
        --object-store-memory) OBJECT_STORE_MEMORY="$2"; shift 2 ;;
        --port-base) PORT_BASE="$2"; shift 2 ;;
        --dashboard-port) DASHBOARD_PORT="$2"; shift 2 ;;
        --state-dir) STATE_DIR="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "local.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
done

is_int() { [[ "$1" =~ ^[0-9]+$ ]]; }
for pair in "workers:$WORKERS" "port:$PORT" "cpus:$WORKER_CPUS" "gpus:$WORKER_GPUS" "head-cpus:$HEAD_CPUS" \
            "object-store-memory:$OBJECT_STORE_MEMORY" "dashboard-port:$DASHBOARD_PORT"; do
    is_int "${pair#*:}" || { echo "local.sh: --${pair%%:*} must be a non-negative integer" >&2; exit 2; }
done

# Per-node port block: node i (0 = head) owns PORT_BASE + 100*i .. + 99.
#   +0 node manager, +1 object manager, +2 dashboard agent http, +3 dashboard agent
#   grpc, +4 runtime env agent, +5 metrics export, +10..+99 worker processes.
# Default base keeps clear of Linux's ephemeral range (32768+) for up to 60 workers.
PORT_BASE="${PORT_BASE:-$((PORT + 20000))}"
is_int "$PORT_BASE" || { echo "local.sh: --port-base must be an integer" >&2; exit 2; }
STATE_DIR="${STATE_DIR:-${TMPDIR:-/tmp}/harma-ray-$(id -u)-$PORT}"
STATE_DIR="$(realpath -m "$STATE_DIR")"   # Unix socket paths under it must stay < 108 chars
ADDRESS="127.0.0.1:$PORT"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# The same settings for every process this script starts (nodes and its own clients):
#   RAY_AUTH_MODE=token                  token auth on (ray start does not turn it on by itself)
#   RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0  keep 127.0.0.1 as 127.0.0.1 (else Ray swaps in the LAN IP)
#   RAY_USAGE_STATS_ENABLED=0            no usage-stats reporting
export RAY_AUTH_MODE="${RAY_AUTH_MODE:-token}"
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
export RAY_USAGE_STATS_ENABLED=0

log() { echo "[local.sh] $*"; }

# ---------------------------------------------------------------- helpers ---
ensure_token() {
    [[ "$RAY_AUTH_MODE" == "token" ]] || {
        log "WARNING: RAY_AUTH_MODE=$RAY_AUTH_MODE: anyone who can reach 127.0.0.1 can run code on this cluster"
        return 0
    }
    if [[ -n "${RAY_AUTH_TOKEN:-}" ]]; then
        return 0
    fi
    if [[ -n "${RAY_AUTH_TOKEN_PATH:-}" ]]; then
        [[ -s "$RAY_AUTH_TOKEN_PATH" ]] || { echo "local.sh: RAY_AUTH_TOKEN_PATH=$RAY_AUTH_TOKEN_PATH is missing or empty" >&2; exit 1; }
        return 0
    fi
    if [[ ! -s "$HOME/.ray/auth_token" ]]; then
        log "generating a Ray auth token in ~/.ray/auth_token (mode 0600)"
        (umask 077 && "$RAY_BIN" get-auth-token --generate >/dev/null)
    fi
    chmod 600 "$HOME/.ray/auth_token"
}

# Worker i's resources: the user's JSON plus a per-node name (local_worker_<i>).
worker_resources() {
    "$PYTHON_BIN" - "$RESOURCES" "$1" <<'PY'
import json, sys
res = json.loads(sys.argv[1])
if not isinstance(res, dict):
    raise SystemExit("local.sh: --resources must be a JSON object")
res[f"local_worker_{sys.argv[2]}"] = 1
print(json.dumps(res))
PY
}

port_flags() {  # $1 = node index
    local b=$((PORT_BASE + 100 * $1))
    echo "--node-manager-port=$b --object-manager-port=$((b + 1))" \
         "--dashboard-agent-listen-port=$((b + 2)) --dashboard-agent-grpc-port=$((b + 3))" \
         "--runtime-env-agent-port=$((b + 4)) --metrics-export-port=$((b + 5))" \
         "--min-worker-port=$((b + 10)) --max-worker-port=$((b + 99))"
}

pid_alive() { kill -0 "$1" 2>/dev/null; }

# Pids of every process in session $1 (the setsid'd `ray start --block`).
session_pids() { ps -e -o pid=,sid= | awk -v s="$1" '$2 == s { print $1 }'; }

cmdline_of() { tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null; }

# Session $1 is ours if one of its processes names our node temp dir $2 on its
# command line (the `ray start` leader, raylet, gcs_server, agents all do). This
# guards against a recorded pid having been reused by an unrelated process.
is_our_session() {  # $1 = session id (leader pid), $2 = node temp dir
    local p
    for p in $(session_pids "$1"); do
        case "$(cmdline_of "$p")" in *"=$2 "* | *"$2/"*) return 0 ;; esac
    done
    return 1
}

start_node() {  # $1 = name, $2.. = extra ray start flags
    local name="$1"; shift
    local dir="$STATE_DIR/$name"
    mkdir -p "$dir"
    # ray_loopback.py = the `ray` CLI with the node IP pinned to 127.0.0.1 (see its docstring).
    setsid "$PYTHON_BIN" "$SCRIPT_DIR/ray_loopback.py" start --block \
        --node-ip-address=127.0.0.1 \
        --temp-dir="$dir" \
        --object-store-memory="$OBJECT_STORE_MEMORY" \
        --disable-usage-stats \
        "$@" >"$STATE_DIR/$name.log" 2>&1 < /dev/null &
    local pid=$!
    echo "$pid" >"$STATE_DIR/$name.pid"
    # `ray start --block` prints this line once the node is up, then blocks.
    local deadline=$((SECONDS + 90))
    until grep -q "Ray runtime started" "$STATE_DIR/$name.log" 2>/dev/null; do
        if ! pid_alive "$pid" || ((SECONDS >= deadline)); then
            echo "local.sh: $name did not start; last lines of $STATE_DIR/$name.log:" >&2
            tail -n 20 "$STATE_DIR/$name.log" >&2 || true
            return 1
        fi
        sleep 0.5
    done
    [[ "$(ps -o sid= -p "$pid" | tr -d ' ')" == "$pid" ]] || {
        echo "local.sh: $name (pid $pid) does not lead its own session; is setsid available?" >&2
        return 1
    }
    log "started $name (session $pid, log $STATE_DIR/$name.log)"
}

wait_for_nodes() {  # $1 = expected alive node count; one short-lived driver polls the GCS
    local want="$1"
    for f in "$STATE_DIR"/*.pid; do
        pid_alive "$(cat "$f")" || { echo "local.sh: $(basename "$f" .pid) exited; see ${f%.pid}.log" >&2; return 1; }
    done
    "$PYTHON_BIN" - "$ADDRESS" "$want" <<'PY'
import sys, time
import ray
address, want = sys.argv[1], int(sys.argv[2])
ray.init(address=address, log_to_driver=False, logging_level="ERROR")
deadline = time.time() + 90
alive = 0
while time.time() < deadline:
    alive = sum(1 for n in ray.nodes() if n["Alive"])
    if alive >= want:
        sys.exit(0)
    time.sleep(1)
sys.exit(f"local.sh: only {alive} of {want} nodes alive after 90 s")
PY
}

# ---------------------------------------------------------------- commands ---
cmd_start() {
    local f
    for f in "$STATE_DIR"/*.pid; do
        [[ -e "$f" ]] || continue
        if is_our_session "$(cat "$f")" "$STATE_DIR/$(basename "$f" .pid)"; then
            echo "local.sh: $STATE_DIR already runs a cluster; run 'cluster/local.sh stop --port $PORT' first" >&2
            exit 1
        fi
        rm -f "$f"   # stale record (machine rebooted, or the node died)
    done
    # Ray's Unix sockets live at <state dir>/<node>/session_<date>_<pid>/sockets/plasma_store,
    # and Linux caps a socket path at 107 bytes.
    local longest="$STATE_DIR/worker$WORKERS/session_0000-00-00_00-00-00_000000_4194304/sockets/plasma_store"
    if ((${#longest} > 107)); then
        echo "local.sh: state dir $STATE_DIR is too long for Ray's socket paths (keep it under" \
             "$((${#STATE_DIR} - ${#longest} + 107)) characters); pass a shorter --state-dir" >&2
        exit 2
    fi
    local last=$((PORT_BASE + 100 * WORKERS + 99))
    ((last < 65536)) || { echo "local.sh: port block ends at $last > 65535; lower --port-base" >&2; exit 2; }
    "$PYTHON_BIN" -c "import ray" 2>/dev/null || {
        echo "local.sh: '$PYTHON_BIN' cannot import ray; install harma[tune] or set PYTHON_BIN" >&2
        exit 1
    }
    ensure_token
    mkdir -p "$STATE_DIR"
    chmod 700 "$STATE_DIR"

    # Ray Client (ray[client]) would listen on 10001 by default; move it into
    # the head's port block when it is installed (the flag errors otherwise).
    local client_flag=()
    if "$PYTHON_BIN" -c "from ray._private.utils import get_ray_client_dependency_error as e; raise SystemExit(e() is not None)" 2>/dev/null; then
        client_flag=(--ray-client-server-port=$((PORT_BASE + 6)))
    fi
    # shellcheck disable=SC2046
    start_node head --head "${client_flag[@]}" --port="$PORT" \
        --dashboard-host=127.0.0.1 --dashboard-port="$DASHBOARD_PORT" \
        --num-cpus="$HEAD_CPUS" --num-gpus=0 --resources='{"head_node": 1}' \
        $(port_flags 0) || { cmd_stop; exit 1; }

    local i
    for ((i = 1; i <= WORKERS; i++)); do
        if ((WORKER_GPUS > 0)); then
            CUDA_VISIBLE_DEVICES=$(seq -s, $(((i - 1) * WORKER_GPUS)) $((i * WORKER_GPUS - 1)))
            export CUDA_VISIBLE_DEVICES
        fi
        # shellcheck disable=SC2046
        start_node "worker$i" --address="$ADDRESS" \
            --num-cpus="$WORKER_CPUS" --num-gpus="$WORKER_GPUS" \
            --resources="$(worker_resources "$i")" \
            $(port_flags "$i") || { cmd_stop; exit 1; }
    done
    wait_for_nodes $((WORKERS + 1)) || { cmd_stop; exit 1; }
    log "cluster up: 1 head + $WORKERS worker node(s) at $ADDRESS; trials run in $PWD"
    log "clients need:  $(cmd_env | tr '\n' ' ')"
    log "then e.g.:     harma study run studies/smoke.yaml --address $ADDRESS"
}

cmd_env() {
    echo "export RAY_AUTH_MODE=$RAY_AUTH_MODE"
    echo "export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0"
    [[ -n "${RAY_AUTH_TOKEN_PATH:-}" ]] && echo "export RAY_AUTH_TOKEN_PATH=$RAY_AUTH_TOKEN_PATH"
    echo "export RAY_ADDRESS=$ADDRESS"
}

cmd_status() {
    local f
    for f in "$STATE_DIR"/*.pid; do
        [[ -e "$f" ]] || { echo "local.sh: no cluster recorded in $STATE_DIR"; return 1; }
        local pid; pid=$(cat "$f")
        if pid_alive "$pid"; then state="running"; else state="gone"; fi
        echo "$(basename "$f" .pid): session $pid $state, $(session_pids "$pid" | wc -l) process(es)"
    done
    "$RAY_BIN" status --address="$ADDRESS"
}

cmd_stop() {
    local f pid name names=()
    # Workers first, head last, so raylets do not spend the grace period
    # reconnecting to a GCS that is already gone.
    for f in "$STATE_DIR"/worker*.pid "$STATE_DIR"/head.pid; do
        [[ -e "$f" ]] && names+=("$(basename "$f" .pid)")
    done
    if ((${#names[@]} == 0)); then
        log "nothing recorded in $STATE_DIR"
        return 0
    fi
    for name in "${names[@]}"; do
        pid=$(cat "$STATE_DIR/$name.pid")
        if is_our_session "$pid" "$STATE_DIR/$name"; then
            # SIGTERM to the blocking `ray start` (if it is still alive); Ray's reaper
            # then SIGTERMs the node's process group. Raylet-spawned workers sit in
            # their own process groups but stay in the session: whatever is left in
            # the session after the grace period gets SIGKILL.
            kill -TERM "$pid" 2>/dev/null || true
            local deadline=$((SECONDS + 20))
            while [[ -n "$(session_pids "$pid")" ]] && ((SECONDS < deadline)); do sleep 0.5; done
            local left; left=$(session_pids "$pid")
            if [[ -n "$left" ]]; then
                log "$name: SIGKILL to $(echo "$left" | wc -l) leftover process(es)"
                # shellcheck disable=SC2086
                kill -KILL $left 2>/dev/null || true
            fi
            log "stopped $name"
        else
            log "$name: no process of session $pid is running (or it is not ours); skipping"
        fi
        rm -f "$STATE_DIR/$name.pid"
    done
}

case "$CMD" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) cmd_env ;;
    -h|--help|help|"") usage ;;
    *) echo "local.sh: unknown command '$CMD' (start|stop|status|env)" >&2; exit 2 ;;
esac
