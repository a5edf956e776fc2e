#!/usr/bin/env bash
# Install a one-node SLURM (Debian's slurm-wlm 22.05 + munge), its accounting (slurmdbd on
# MariaDB: the executor plugin tracks jobs with `sacct` and checks accounts with `sacctmgr`),
# and snakemake-executor-plugin-slurm into the project's venv. Needs root. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../.."

PLUGIN_VERSION="${PLUGIN_VERSION:-2.8.0}"
PACKAGES=(slurm-wlm slurmdbd munge mariadb-server)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "== apt-get install ${missing[*]}"
    apt-get update -qq
    # The packages' postinst scripts must not start the services: start.sh starts them, with
    # its own configuration, and stops exactly what it started.
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        trap 'rm -f "$policy"' EXIT
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ -x .venv/bin/pip ]; then
    torch_before=$(.venv/bin/python -c 'import torch; print(torch.__version__)' 2>/dev/null || echo none)
    if ! .venv/bin/python -c "import snakemake_executor_plugin_slurm" 2>/dev/null; then
        echo "== pip install snakemake-executor-plugin-slurm==${PLUGIN_VERSION}"
        .venv/bin/pip install --quiet "snakemake-executor-plugin-slurm==${PLUGIN_VERSION}"
    fi
    torch_after=$(.venv/bin/python -c 'import torch; print(torch.__version__)' 2>/dev/null || echo none)
    if [ "$torch_before" != "$torch_after" ]; then
        echo "error: installing the SLURM plugin changed torch ($torch_before -> $torch_after)" >&2
        exit 1
    fi
else
    echo "error: no .venv to install the SLURM plugin into: run 'make install' first" >&2
    exit 1
fi
