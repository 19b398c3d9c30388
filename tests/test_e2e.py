"""End to end: every page of the app in a real headless Chromium, failing on any exception."""

from __future__ import annotations

import pytest

from tests import browser as br

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def chromium():
    """One Playwright per module: its sync API cannot be nested in one thread."""
    if br.chromium_path() is None:
        pytest.fail("Chromium is missing: `apt-get install -y chromium` (the README's test command does it).")
    with br.browser() as b:
        yield b


@pytest.fixture(scope="module")
def app_and_browser(chromium):
    with br.running_app() as base:
        yield base, chromium


@pytest.mark.parametrize("name,path", br.pages(), ids=[n for n, _ in br.pages()])
def test_page_renders_without_exception(app_and_browser, name, path):
    base, b = app_and_browser
    exceptions, errors = br.visit(b, base, path, br.SHOTS / f"{name}.png")
    assert not exceptions, f"{name} raised: {exceptions}"
    assert not errors, f"{name} showed an error: {errors}"


def test_first_run_converts_the_bundled_model_then_every_visit_works(chromium, tmp_path):
    """A fresh machine: the first visit de-quantises the bundled model (progress bar), later visits reuse it.
    Guards against Streamlit replaying the progress bar of a cached loader on the next visit."""
    with br.running_app(env={"EXPLAINER_CACHE": str(tmp_path)}) as base:
        for i in range(2):
            exceptions, errors = br.visit(chromium, base, "", br.SHOTS / f"first_run_{i}.png")
            assert not exceptions and not errors, (i, exceptions, errors)
    assert any(tmp_path.glob("*/model.safetensors"))
