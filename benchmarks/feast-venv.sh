#!/usr/bin/env bash
# Feast's own virtualenv for the peers benchmark (benchmarks/peers.py runs benchmarks/feast_pit.py in it):
# feast[spark] beside the pyspark lakeforge uses, the exact versions of benchmarks/feast-constraints.txt.
#   bash benchmarks/feast-venv.sh [VENV]     (default: $FEAST_VENV, else ../feast-venv beside the clone)
# Regenerate the constraints after changing the pins below:
#   VENV/bin/pip freeze > benchmarks/feast-constraints.txt
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-${FEAST_VENV:-$(dirname "$(dirname "$here")")/feast-venv}}"
python="${PYTHON:-python3}"
if [ -f "$venv/.installed" ] && [ "$venv/.installed" -nt "$here/feast-constraints.txt" ]; then
  echo "[feast-venv] $venv is up to date"; exit 0
fi
echo "[feast-venv] creating $venv: feast[spark]==0.67.0 with pyspark==4.2.0 (versions of feast-constraints.txt)"
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet -c "$here/feast-constraints.txt" 'feast[spark]==0.67.0' 'pyspark==4.2.0'
"$venv/bin/python" -c "import feast, pyspark; print('[feast-venv] feast', feast.__version__, 'pyspark', pyspark.__version__)"
touch "$venv/.installed"
