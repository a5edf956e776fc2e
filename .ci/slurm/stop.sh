#!/usr/bin/env bash
# Stop the daemons .ci/slurm/start.sh started, by the pids it recorded, in reverse order.
set -uo pipefail
RUN=/run/perfgraph-slurm
for d in slurmd slurmctld slurmdbd mariadbd munged; do
    f="$RUN/$d.pid"
    [ -s "$f" ] || continue
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
        echo "== stopping $d ($pid)"
        kill "$pid"
        for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -0 "$pid" 2>/dev/null && { echo "warning: $d ($pid) still running" >&2; continue; }
    fi
    rm -f "$f"
done
