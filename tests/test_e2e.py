"""End to end: every page of the app in a real headless Chromium, failing on any exception."""

from __future__ import annotations

import pytest

from tests import browser as br

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def app_and_browser():
    if br.chromium_path() is None:
        pytest.fail("Chromium is missing: `apt-get install -y chromium` (the README's test command does it).")
    with br.running_app() as base, br.browser() as b:
        yield base, b


@pytest.mark.parametrize("name,path", br.pages(), ids=[n for n, _ in br.pages()])
def test_page_renders_without_exception(app_and_browser, name, path):
    base, b = app_and_browser
    exceptions, errors = br.visit(b, base, path, br.SHOTS / f"{name}.png")
    assert not exceptions, f"{name} raised: {exceptions}"
    assert not errors, f"{name} showed an error: {errors}"
