#!/usr/bin/env bash
# CI step: install and start a one-node SLURM on loopback, run the workflow on the tiny config
# through workflow/profiles/slurm, and check its dataset against a local run's
# (tests/cluster/test_slurm.py). A few minutes. Stops the daemons afterwards if it started them.
set -euo pipefail
cd "$(dirname "$0")/../.."

was_up=false
[ -s /run/perfgraph-slurm/slurmctld.pid ] && kill -0 "$(cat /run/perfgraph-slurm/slurmctld.pid)" 2>/dev/null && was_up=true
.ci/slurm/install.sh
.ci/slurm/start.sh
$was_up || trap .ci/slurm/stop.sh EXIT
PERFGRAPH_SLURM=1 .venv/bin/python -m pytest tests/cluster -q -rA "$@"
