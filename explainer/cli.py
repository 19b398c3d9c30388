"""The `inside-a-gpt` console command: start the app with Streamlit, passing any extra arguments through.

    inside-a-gpt                          # serves http://localhost:8501
    inside-a-gpt --server.port 8600       # any `streamlit run` option

The app (streamlit_app.py, pages/, assets/, .streamlit/) is not part of the installed package: it lives in
the checkout, beside the explainer folder, which an editable install (`pip install -e .`) keeps in place.
Streamlit reads the app's .streamlit/config.toml from the script's folder, so any working folder will do.
This module imports nothing from Streamlit; Streamlit starts in the process this one becomes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

APP_FILE = "streamlit_app.py"


def app_path() -> Path:
    """streamlit_app.py of the checkout this package was installed from (editable), or an error that says
    how to get one."""
    root = Path(__file__).resolve().parent.parent
    app = root / APP_FILE
    if not app.is_file() or not (root / "pages").is_dir():
        raise SystemExit(
            f"inside-a-gpt: the app's files are not beside the explainer package ({root} has no {APP_FILE} "
            "and pages/). They are not part of a regular install: clone the repository and install it "
            "editable with `pip install -e .`, or run `bash run.sh app` in the checkout.")
    return app


def command(args: Sequence[str]) -> list[str]:
    """The `streamlit run` command line for the app, with args passed through."""
    return [sys.executable, "-m", "streamlit", "run", str(app_path()), *args]


def main(argv: Sequence[str] | None = None) -> int:
    cmd = command(sys.argv[1:] if argv is None else argv)
    if os.name == "posix":
        # Become Streamlit: signals (Ctrl-C, a service manager's SIGTERM) reach the server itself and no
        # parent process is left waiting.
        os.execv(cmd[0], cmd)
    return subprocess.call(cmd)  # Windows has no real exec


if __name__ == "__main__":
    sys.exit(main())
