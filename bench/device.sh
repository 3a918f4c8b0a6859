#!/usr/bin/env bash
# The thesis grid (make reproduce's two sweeps, 740 runs x 50 epochs) on whatever device JAX
# sees: prints seconds per member-epoch and the whole grid's wall time, writes
# bench/device.json. Made for a machine with JAX and no TensorFlow, e.g. a GPU host:
#   python3 -m venv venv && venv/bin/pip install -e '.[jax-gpu]' && PYTHON=venv/bin/python bash bench/device.sh
# A smoke run on a CPU (one seed, one epoch, few images; bench/device.py lists the knobs):
#   AEEXP_DEVICE_EPOCHS=1 AEEXP_DEVICE_SEEDS=0 AEEXP_DEVICE_TRAIN_LIMIT=1024 \
#   AEEXP_DEVICE_TEST_LIMIT=1000 bash bench/device.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
SHARED_MNIST="$(cd .. && pwd)/shared/data/mnist.npz"
if [ -z "${AEEXP_DATA:-}" ] && [ -f "$SHARED_MNIST" ]; then
  export AEEXP_DATA="$SHARED_MNIST"
fi
if "$PYTHON" -c 'import importlib.util as u, sys; sys.exit(u.find_spec("tensorflow") is None)'; then
  echo "bench/device.sh: TensorFlow is installed here too; the JAX engine does not import it" >&2
fi
exec "$PYTHON" bench/device.py "$@"
