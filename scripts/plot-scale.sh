#!/usr/bin/env bash
# Draws docs/perf/*.png from docs/perf/scale.csv (scripts/plot_scale.py), in a venv of
# its own with matplotlib (made on first use under /var/tmp).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${PLOT_VENV:-/var/tmp/workos-sync-plot}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q matplotlib==3.9.2
fi
"$VENV/bin/python" scripts/plot_scale.py "$@"
