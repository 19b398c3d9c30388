"""Packaging: `pip install -e .` makes `import explainer` work from any folder, and the `inside-a-gpt`
command it installs serves the app.

The install goes into a throwaway virtual environment, so the one running the tests is left alone. It is
made from the running interpreter with --system-site-packages and --without-pip, and a .pth file in it
lists the running environment's site-packages. The reason: when the tests themselves run in a virtual
environment, `python -m venv --system-site-packages` exposes the *base* interpreter's site-packages, not
that environment's, so torch, Streamlit and pip would be missing. A .pth line is a folder that `site`
appends to sys.path after the throwaway environment's own site-packages, so what the editable install
puts there (its import finder, its console script's distribution) wins, and everything else (pip too)
comes from the running environment without reinstalling gigabytes. Outside a virtual environment the
.pth lists folders --system-site-packages already exposes; `site` skips the duplicates.
"""

from __future__ import annotations

import os
import site
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import explainer.cli as cli

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    """The test's environment without anything that would put the checkout on sys.path by other means."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONNOUSERSITE"] = "1"
    env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
    return env


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A throwaway virtual environment with this checkout installed editable; returns its bin folder."""
    where = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(where)],
                   check=True, timeout=60)
    py = where / ("Scripts" if os.name == "nt" else "bin") / ("python.exe" if os.name == "nt" else "python")
    own = subprocess.run([py, "-c", "import site; print(site.getsitepackages()[0])"], check=True, text=True,
                         capture_output=True, env=_env(), timeout=60).stdout.strip()
    Path(own, "_parent_env.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    # --no-build-isolation: setuptools comes from the running environment (no download); --ignore-installed:
    # pip never uninstalls an inside-a-gpt it finds through the .pth (in the running environment).
    subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                    "--no-build-isolation", "--ignore-installed", "-e", str(ROOT)],
                   check=True, cwd=where, env=_env(), timeout=120)
    return py.parent


def test_import_explainer_from_any_folder(venv, tmp_path):
    out = subprocess.run(
        [venv / "python", "-c",
         "import importlib.metadata as m, explainer; print(explainer.__file__); "
         "print(*m.requires('inside-a-gpt'), sep='\\n')"],
        check=True, text=True, capture_output=True, cwd=tmp_path, env=_env(), timeout=120).stdout.splitlines()
    assert Path(out[0]) == ROOT / "explainer" / "__init__.py"
    # The declared dependencies are requirements.txt's loose ranges, read from it (nothing raised).
    wanted = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    by_name = lambda reqs: {r.name: r for r in map(Requirement, reqs)}  # noqa: E731 - specifier order aside
    assert by_name(out[1:]) == by_name(w for w in wanted if w)


def test_only_the_library_is_importable_from_the_install(venv, tmp_path):
    """The checkout's other folders (tests/ is a package) do not leak onto everyone's sys.path."""
    r = subprocess.run([venv / "python", "-c", "import tests"], capture_output=True, text=True, cwd=tmp_path,
                       env=_env(), timeout=60)
    assert r.returncode != 0 and "No module named 'tests'" in r.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _health(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
            return r.read().decode()
    except OSError:
        return None


def test_console_command_serves_the_app(venv, tmp_path):
    port = _free_port()
    exe = venv / ("inside-a-gpt.exe" if os.name == "nt" else "inside-a-gpt")
    log = tmp_path / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([exe, "--server.headless", "true", "--server.address", "127.0.0.1",
                                 "--server.port", str(port)],
                                cwd=tmp_path, env=_env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while (answer := _health(port)) != "ok" and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.3)
        assert answer == "ok", f"no health answer on port {port} (exit {proc.poll()}):\n{log.read_text()}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_command_passes_arguments_through():
    cmd = cli.command(["--server.port", "8600"])
    assert cmd == [sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"),
                   "--server.port", "8600"]


def test_clear_error_without_the_app_files(monkeypatch, tmp_path):
    """A regular (non-editable) install has the package but not the checkout's app files beside it."""
    (tmp_path / "explainer").mkdir()
    monkeypatch.setattr(cli, "__file__", str(tmp_path / "explainer" / "cli.py"))
    with pytest.raises(SystemExit, match=r"pip install -e \.") as err:
        cli.main([])
    assert str(tmp_path) in str(err.value)



PROBE = '''
import time
import warnings

import pytest


def _warn_from(module, category):
    exec(compile("warnings.warn('old', category)", "<probe>", "exec"),
         {"__name__": module, "warnings": warnings, "category": category})


def test_own_deprecation():
    _warn_from("explainer.models", DeprecationWarning)


def test_own_future_warning():
    _warn_from("explainer", FutureWarning)


def test_test_deprecation():
    _warn_from("tests.test_engine", DeprecationWarning)


def test_third_party_deprecation():
    _warn_from("transformers.modeling_utils", DeprecationWarning)


def test_similar_name_is_not_ours():
    _warn_from("explainers_elsewhere", DeprecationWarning)


@pytest.mark.e2e
def test_known_marker():
    pass


def test_hang():
    time.sleep(30)
'''


def test_pytest_ini_rules(tmp_path):
    """The suite's pytest.ini, run on a probe file: our own deprecations fail, third-party ones do not, an
    unknown marker is an error, and pytest-timeout is active (its limit lowered to 2 s for the hang)."""
    (tmp_path / "test_probe.py").write_text(PROBE)
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(ROOT / "pytest.ini"),
         "--rootdir", str(tmp_path), "-rA", *args], cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env=_env())
    r = run("-o", "timeout=2", "test_probe.py")
    outcome = {line.split()[1].split("::")[-1]: line.split()[0] for line in r.stdout.splitlines()
               if line.startswith(("PASSED ", "FAILED ", "ERROR "))}
    assert outcome == {"test_own_deprecation": "FAILED", "test_own_future_warning": "FAILED",
                       "test_test_deprecation": "FAILED", "test_third_party_deprecation": "PASSED",
                       "test_similar_name_is_not_ours": "PASSED", "test_known_marker": "PASSED",
                       "test_hang": "FAILED"}, r.stdout
    assert "Timeout" in r.stdout
    (tmp_path / "test_probe.py").write_text(PROBE + "\n\n@pytest.mark.e2ee\ndef test_typo():\n    pass\n")
    r = run("test_probe.py")
    assert r.returncode != 0 and "'e2ee' not found in `markers`" in r.stdout + r.stderr
