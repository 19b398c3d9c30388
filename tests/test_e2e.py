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


PROJECTORS = [(1280, 720), (1920, 1080)]   # a school projector's usual modes
MIN_CELL_PX = 8                            # the smallest heatmap cell a class can read at 1280 px
# Charts whose cells are smaller, each with the chart that zooms into the part that matters
ZOOMED = {"att_overview": "att_layer_zoom", "att_head_map": "att_head_zoom", "mm_values": "mm_values_zoom"}


@pytest.mark.parametrize("name,path", br.pages(), ids=[n for n, _ in br.pages()])
def test_page_renders_without_exception(app_and_browser, name, path):
    """Every page at both projector sizes: no exception, no error; the whole page is kept as a screenshot
    ({name}.png at 1280×720, then the same page resized, {name}_1920x1080.png) to be looked at as a class
    would see it. At 1280×720 every heatmap or image cell is at least MIN_CELL_PX on screen, or its chart has a
    zoomed view on the page whose cells are; and no metric's label or number is cut short."""
    base, b = app_and_browser
    (w, h), (w2, h2) = PROJECTORS
    cells: dict[str, float] = {}
    cut: list[str] = []

    def inspect(page) -> None:
        cells.update(br.cell_sizes(page))
        cut.extend(br.truncated_text(page))

    exceptions, errors = br.visit(b, base, path, br.SHOTS / f"{name}.png", width=w, height=h,
                                  also=((br.SHOTS / f"{name}_{w2}x{h2}.png", w2, h2),), inspect=inspect)
    assert not exceptions, f"{name} raised: {exceptions}"
    assert not errors, f"{name} showed an error: {errors}"
    assert not cut, f"{name}: cut short at {w} px: {cut}"
    small = {k: px for k, px in cells.items() if px < MIN_CELL_PX}
    assert not small.keys() - ZOOMED.keys(), f"{name}: cells under {MIN_CELL_PX} px with no zoomed view: {small}"
    for k in small:
        assert cells.get(ZOOMED[k], 0) >= MIN_CELL_PX, f"{name}: {k}'s zoom {ZOOMED[k]}: {cells.get(ZOOMED[k])}"


COMPARE = "prompt=The%20doctor%20said%20that%20he&compare=The%20doctor%20said%20that%20she"


@pytest.mark.parametrize("name,path", br.pages(), ids=[n for n, _ in br.pages()])
def test_every_page_in_compare_mode(app_and_browser, name, path):
    """Every page opened with a second prompt in its link (compare mode): no exception, no error; the pages with a
    compare mode draw their side-by-side charts (compare_{name}.png, to be looked at)."""
    base, b = app_and_browser
    exceptions, errors = br.visit(b, base, f"{path}?{COMPARE}", br.SHOTS / f"compare_{name}.png", width=1280,
                                  height=720)
    assert not exceptions, f"{name} raised in compare mode: {exceptions}"
    assert not errors, f"{name} showed an error in compare mode: {errors}"


def test_cell_sizes_are_read_from_the_screen(chromium):
    """The cell-size check reads what plotly drew: a 600-px-wide heatmap of 60 columns has cells of 6 to 10 px,
    one of 300 columns 1.2 to 2 px (a plot area narrower than the page by its margins and colour bar)."""
    page = chromium.new_page(viewport={"width": 800, "height": 600})
    try:
        import plotly.graph_objects as go

        for n, most in ((60, 10), (300, 2)):
            fig = go.Figure(go.Heatmap(z=[list(range(n))] * 3)).update_layout(width=600, height=300)
            page.set_content(fig.to_html(include_plotlyjs=True, full_html=True))   # inlined: no network
            page.wait_for_function("() => document.querySelector('.js-plotly-plot')?._fullLayout")
            (px,) = br.cell_sizes(page).values()
            assert most * 0.6 < px <= most, (n, px)
    finally:
        page.close()



def test_first_run_converts_the_bundled_model_then_every_visit_works(chromium, tmp_path):
    """A fresh machine: the first visit de-quantises the bundled model (progress bar), later visits reuse it.
    Guards against Streamlit replaying the progress bar of a cached loader on the next visit."""
    with br.running_app(env={"EXPLAINER_CACHE": str(tmp_path)}) as base:
        for i in range(2):
            exceptions, errors = br.visit(chromium, base, "", br.SHOTS / f"first_run_{i}.png")
            assert not exceptions and not errors, (i, exceptions, errors)
    assert any(tmp_path.glob("*/model.safetensors"))


def test_a_hub_models_download_shows_its_size_and_progress(chromium, tiny_gpt2, tmp_path):
    """A link to a Hub model on a server that has never fetched it, against a slow local stand-in for the
    Hub (tests/fake_hub.py): the page shows the download's size and its bytes so far in a progress bar
    (hub_download.png, to be looked at), then the model's page with no error."""
    from explainer.anatomy import human_bytes
    from tests.fake_hub import FakeHub

    repo = tmp_path / "repo"
    tiny_gpt2.model.save_pretrained(repo)
    tiny_gpt2.tokenizer.save_pretrained(repo)
    hub = FakeHub({"org/tiny-gpt2": repo}, seconds_per_mb=0.8)
    env = {"HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_HUB_CACHE": str(tmp_path / "cache")}
    try:
        with br.running_app(env=env) as base:
            page = chromium.new_page(viewport={"width": 1280, "height": 720})
            page.goto(f"{base}/?model=org/tiny-gpt2", wait_until="domcontentloaded")
            bar = page.locator("[data-testid='stProgress']").filter(has_text="Downloading org/tiny-gpt2: ")
            bar.first.wait_for(timeout=60_000)
            said = bar.first.inner_text()
            for _ in range(40):                                         # until a megabyte or more has come
                if "MB of" in said or not bar.count():
                    break
                page.wait_for_timeout(250)
                said = bar.first.inner_text() if bar.count() else said
            page.screenshot(path=str(br.SHOTS / "hub_download.png"))
            size = sum(f.stat().st_size for f in repo.iterdir() if f.suffix in (".json", ".safetensors", ".txt"))
            assert f" of {human_bytes(size)}" in said, (said, size)
            br.wait_idle(page)
            assert not page.locator("[data-testid='stException']").all_inner_texts()
            assert not page.locator("[data-testid='stAlertContentError']").all_inner_texts()
            assert "model.safetensors" in hub.fetched() and "?model=org" in page.url
            page.close()
    finally:
        hub.close()


def _click_nav(page, title: str) -> None:
    """Click a page in the app's own sidebar navigation (a JS click: Streamlit marks the sidebar inert while
    a run is in flight, which Playwright's click waits on forever)."""
    links = page.locator("[data-testid='stSidebarNavLink']")
    for i in range(links.count()):
        if links.nth(i).inner_text().strip().endswith(title):
            links.nth(i).evaluate("e => e.click()")
            page.wait_for_timeout(1500)
            br.wait_idle(page)
            return
    raise AssertionError(f"no navigation link {title!r}: {links.all_inner_texts()}")


def test_a_link_is_the_first_request_to_a_fresh_server(chromium, bundled):
    """A teacher's link to Next token, opened in a fresh browser as the very first request to a freshly started
    server: the app's own navigation, the linked settings, and the entropy explainer.sampling computes for
    them; still so after going to another page through the sidebar and back."""
    from urllib.parse import parse_qs, urlencode, urlparse

    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    from explainer import sampling, trace

    prompt = "Once upon a time there was a"
    query = {"prompt": prompt, "temperature": "2.5", "top_k": "0", "top_p": "1", "seed": "7"}
    want = sampling.probabilities(trace(bundled, prompt).next_token_logits(), 2.5, 0, 1.0).entropy
    with br.running_app() as base:                                    # nobody has opened "/" on this server
        context = chromium.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        try:
            page.goto(f"{base}/Next_token?{urlencode(query)}", wait_until="domcontentloaded")
            br.wait_idle(page)
            for visit in ("first request", "after Attention and back"):
                nav = page.locator("[data-testid='stSidebarNav']").inner_text()
                assert "Inside the model" in nav and "Word vectors" in nav and "streamlit app" not in nav, nav
                # the metric named Entropy, waited for: a first run on a fresh server can still be drawing it
                entropy = page.locator("[data-testid='stMetric']").filter(has_text="Entropy")
                try:
                    entropy.first.wait_for(timeout=30_000)
                except PlaywrightTimeout:
                    pass    # the assertion below shows what the page has instead
                metrics = page.locator("[data-testid='stMetric']").all_inner_texts()
                assert any(f"{want:.2f} bits" in m for m in metrics if "Entropy" in m), (visit, metrics, want)
                assert {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()} == query, page.url
                page.screenshot(path=str(br.SHOTS / f"link_{visit.split()[0]}.png"))
                if visit == "first request":
                    _click_nav(page, "Attention")
                    assert urlparse(page.url).path == "/Attention"
                    _click_nav(page, "Next token")
            assert not page.locator("[data-testid='stException']").all_inner_texts()
        finally:
            context.close()


def test_clicking_a_tab_writes_it_to_the_link_and_the_link_reopens_it(app_and_browser):
    """Word vectors' tabs: a click on “Dot vs cosine” puts `tab=similarity` in the address bar (with the
    other parameters kept), and opening that address in a fresh browser opens that tab."""
    from urllib.parse import parse_qs, urlparse

    base, b = app_and_browser

    def selected(page) -> str:
        return page.locator("[role='tab'][aria-selected='true']").first.inner_text().strip()

    context = b.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        page.goto(f"{base}/Embeddings?prompt=Hello+world", wait_until="domcontentloaded")
        br.wait_idle(page)
        assert selected(page) == "Word map"
        page.locator("[role='tab']", has_text="Dot vs cosine").first.evaluate("e => e.click()")
        page.wait_for_timeout(1000)
        br.wait_idle(page)
        query = {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}
        assert query.get("tab") == "similarity" and query.get("prompt") == "Hello world", page.url
        link = page.url
    finally:
        context.close()
    context = b.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        page.goto(link, wait_until="domcontentloaded")
        br.wait_idle(page)
        assert selected(page) == "Dot vs cosine"
        page.screenshot(path=str(br.SHOTS / "tab_from_link.png"))
        assert not page.locator("[data-testid='stException']").all_inner_texts()
    finally:
        context.close()


CELL_JS = """([key, q, k]) => {
  const gd = document.querySelector(`.st-key-${key} .js-plotly-plot`);
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, r = gd.getBoundingClientRect();
  return [r.left + xa._offset + xa.l2p(k), r.top + ya._offset + ya.l2p(q)];
}"""


def test_clicking_a_cell_of_the_head_map_selects_its_row_token(app_and_browser):
    """Attention in Chromium: a real mouse click on cell (query 2, key 1) of the head's map puts `token=2` in the
    link, and the page reads that row out (the selected token every page shares); a click on a role map's cell
    opens that head (`layer`, `head` in the link)."""
    base, b = app_and_browser
    page = b.new_page(viewport={"width": 1280, "height": 720})
    try:
        page.goto(f"{base}/Attention?prompt=The%20cat%20sat%20on%20the%20mat&layer=3&head=2",
                  wait_until="domcontentloaded")
        br.wait_idle(page)
        page.locator(".st-key-att_head_map").scroll_into_view_if_needed()
        page.wait_for_function("() => document.querySelector('.st-key-att_head_map .js-plotly-plot')?._fullLayout")
        x, y = page.evaluate(CELL_JS, ["att_head_map", 2, 1])
        page.mouse.move(x, y)
        page.mouse.click(x, y)
        page.wait_for_function("() => location.search.includes('token=2')", timeout=60_000)
        br.wait_idle(page)
        assert "Token 2, “␣sat” (the outlined row)" in page.locator("[data-testid='stMain']").inner_text()
        page.screenshot(path=str(br.SHOTS / "head_map_click.png"))
        page.locator(".st-key-att_role_induction").scroll_into_view_if_needed()    # a role map's cell opens a head
        page.wait_for_function("() => document.querySelector('.st-key-att_role_induction .js-plotly-plot')"
                               "?._fullLayout")
        x, y = page.evaluate(CELL_JS, ["att_role_induction", 4, 7])      # head 4 (rows) of layer 7 (columns)
        page.mouse.move(x, y)
        page.mouse.click(x, y)
        page.wait_for_function("() => location.search.includes('layer=7') && location.search.includes('head=4')",
                               timeout=60_000)
        br.wait_idle(page)
        assert not page.locator("[data-testid='stException']").all_inner_texts()
    finally:
        page.close()


def _open_code(page, has_text: str, shot: str) -> str:
    """Open the code expander whose title holds `has_text` once the page has run (a rerun would close it again),
    screenshot it, and return its code."""
    expander = page.locator("[data-testid='stExpander']", has_text=has_text)
    expander.wait_for(state="attached", timeout=120_000)
    br.wait_idle(page)
    summary = expander.locator("summary")
    summary.scroll_into_view_if_needed()
    summary.click()
    code = expander.locator("[data-testid='stCode']")
    code.wait_for(timeout=30_000)
    summary.scroll_into_view_if_needed()
    page.screenshot(path=str(br.SHOTS / shot))
    return code.inner_text()


def test_an_analogy_in_two_spaces_and_the_chats_code(app_and_browser):
    """Word vectors in Chromium: the analogies tab draws each answer's rank in the model and in GloVe
    (analogy_ranks.png); Generate's chat answers a typed message, and its code expander shows the chat template
    and the generate() call (chat_code.png)."""
    base, b = app_and_browser
    page = b.new_page(viewport={"width": 1280, "height": 720})
    try:
        page.goto(f"{base}/Embeddings?tab=analogies", wait_until="domcontentloaded")
        br.wait_idle(page)
        ranks = page.locator(".st-key-emb_an_ranks")
        ranks.scroll_into_view_if_needed()
        page.wait_for_function("() => document.querySelector('.st-key-emb_an_ranks .js-plotly-plot')?._fullLayout")
        names = page.evaluate("() => document.querySelector('.st-key-emb_an_ranks .js-plotly-plot').data"
                              ".map(d => d.name).filter(Boolean)")
        assert any("GloVe" in n for n in names) and len(names) == 2
        assert "queen" in ranks.inner_text()
        ranks.screenshot(path=str(br.SHOTS / "analogy_ranks.png"))
        page.goto(f"{base}/Generate?template=chat&temperature=0", wait_until="domcontentloaded")
        br.wait_idle(page)
        box = page.locator("[data-testid='stChatInputTextArea']")
        box.fill("What is the capital of France?")
        box.press("Enter")
        text = _open_code(page, "The last reply as one model.generate", "chat_code.png")
        assert "apply_chat_template" in text and "What is the capital of France?" in text and "do_sample=False" in text
        assert not page.locator("[data-testid='stException']").all_inner_texts()
    finally:
        page.close()


def test_the_code_behind_qk_the_map_anatomy_and_the_word_vectors(app_and_browser):
    """The code expanders added for the last views, opened in Chromium: Attention §3's four steps (qk_code.png),
    a Model map box's values (map_code.png), Anatomy's counts (anatomy_code.png), and Word vectors' dot vs
    cosine (similarity_code.png); each holds that view's own settings."""
    base, b = app_and_browser
    page = b.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(f"{base}/Attention?layer=7&head=4", wait_until="domcontentloaded")
        br.wait_idle(page)
        text = _open_code(page, "the four steps from its queries", "qk_code.png")
        assert "AttentionInterface.register" in text and "layer = 7" in text and "head = 4" in text
        _open_map(page, f"{base}/Model_map?box=unembed")
        text = _open_code(page, "Unembedding at", "map_code.png")
        assert "out.logits[0, pos]" in text
        page.goto(f"{base}/Anatomy", wait_until="domcontentloaded")
        br.wait_idle(page)
        text = _open_code(page, "counted from its configuration", "anatomy_code.png")
        assert 'torch.device("meta")' in text and "from_config" in text
        page.goto(f"{base}/Embeddings?tab=similarity", wait_until="domcontentloaded")
        br.wait_idle(page)
        text = _open_code(page, "Dot products, cosines and lengths", "similarity_code.png")
        assert "cosine = dot / torch.outer(norms, norms)" in text
        assert not page.locator("[data-testid='stException']").all_inner_texts()
    finally:
        page.close()


BOX_JS = """([key, id]) => {
  const gd = document.querySelector(`.st-key-${key} .js-plotly-plot`);
  const t = gd.data.find(d => Array.isArray(d.customdata) && d.customdata.includes(id));
  const i = t.customdata.indexOf(id);
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, r = gd.getBoundingClientRect();
  return [r.left + xa._offset + xa.d2p(t.x[i]), r.top + ya._offset + ya.d2p(t.y[i])];
}"""


def _open_map(page, url: str) -> None:
    """Open a Model map link and wait until its diagram is drawn (scrolled into view)."""
    page.goto(url, wait_until="domcontentloaded")
    br.wait_idle(page)
    page.locator(".st-key-map_diagram").scroll_into_view_if_needed()
    page.wait_for_function("() => document.querySelector('.st-key-map_diagram .js-plotly-plot')?._fullLayout")


def _click_box(page, box: str) -> None:
    """A real mouse click on a box of the map; waits until the link names it and the page has run."""
    x, y = page.evaluate(BOX_JS, ["map_diagram", box])
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    page.wait_for_function(f"() => location.search.includes('box={box}')", timeout=60_000)
    br.wait_idle(page)


def test_clicking_a_box_of_the_model_map_shows_its_values(app_and_browser):
    """Model map in Chromium: a real mouse click on the unembedding's box puts `box=unembed` in the link and the
    page shows that part's values below the map."""
    base, b = app_and_browser
    page = b.new_page(viewport={"width": 1280, "height": 720})
    try:
        _open_map(page, f"{base}/Model_map")
        _click_box(page, "unembed")
        assert "What the model predicts after" in page.locator("[data-testid='stMain']").inner_text()
        assert not _map_text_fits(page), _map_text_fits(page)       # every box's text inside it, at 1280 px
        _open_map(page, f"{base}/Model_map?open_block=1&layer=3")                            # one block open
        assert not _map_text_fits(page), _map_text_fits(page)
        page.locator(".st-key-map_diagram").scroll_into_view_if_needed()
        page.screenshot(path=str(br.SHOTS / "model_map_open_block.png"))
        assert not page.locator("[data-testid='stException']").all_inner_texts()
    finally:
        page.close()


GROWN_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].map(gd => {
  const key = [...(gd.closest('[class*="st-key-"]')?.classList || [])].find(c => c.startsWith('st-key-'));
  const m = gd.layout.margin || {}, s = gd._fullLayout._size;
  return [key && key.slice(7), ['l', 'r', 't', 'b'].map(k => Math.round(s[k] - (m[k] ?? 0)))];
})"""
# The charts a prompt change redraws on Attention and the logit lens, whose labels decide their margins
PRESET = {"att_overview", "att_layer_zoom", "att_head_map", "att_head_zoom", "att_step_raw", "att_step_masked",
          "att_step_scaled", "att_step_pattern", "att_values", "att_z", "att_parts", "lens_grid", "lens_norm"}


def test_a_charts_margins_already_hold_its_labels(app_and_browser):
    """figures.common.preset_margins against Chromium: on Attention and the logit lens at 128 tokens, Plotly's
    automargin grows no margin of the charts a prompt change redraws (each is drawn once, not twice), so the
    estimate holds the token labels, titles, colour bars and legends as the browser measures them."""
    base, b = app_and_browser
    words = ("the cat sat on the mat while a dog slept by the warm fire and the children read ") * 8
    page = b.new_page(viewport={"width": 1280, "height": 720})
    try:
        grown = {}
        for path in ("Attention", "Logit_lens"):
            page.goto(f"{base}/{path}?prompt={words.replace(' ', '%20')}", wait_until="domcontentloaded")
            br.wait_idle(page)
            page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')].every(g => g._fullLayout)")
            for key, growth in page.evaluate(GROWN_JS):
                if key in PRESET and max(growth) > 1:
                    grown[key] = growth
        assert not grown, f"automargin grew these margins (l, r, t, b px): {grown}"
    finally:
        page.close()


BOX_TEXT_JS = """([key, boxW, boxH]) => {
  const gd = document.querySelector(`.st-key-${key} .js-plotly-plot`);
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const w = boxW * xa._length / (xa.range[1] - xa.range[0]), h = boxH * ya._length / (ya.range[1] - ya.range[0]);
  const texts = [];
  gd._fullLayout.annotations.forEach((a, i) => {
    if (!a.text || a.showarrow || a.xanchor === 'left') return;     // arrows, and the open block's title
    const r = gd.querySelector(`.annotation[data-index="${i}"] .annotation-text-g`).getBoundingClientRect();
    texts.push([a.text.replace(/<br>/g, ' / ').replace(/<[^>]+>/g, ''), r.width, r.height]);
  });
  return [w, h, texts];
}"""


def _map_text_fits(page) -> list[str]:
    """Every box's text on the model map, measured on screen: those wider or taller than their box."""
    from explainer.figures.model_map import BOX_H, BOX_W

    page.wait_for_function("() => document.querySelector('.st-key-map_diagram .js-plotly-plot')?._fullLayout")
    w, h, texts = page.evaluate(BOX_TEXT_JS, ["map_diagram", BOX_W, BOX_H])
    assert texts
    return [f"{t!r}: {tw:.0f}×{th:.0f} px in a {w:.0f}×{h:.0f} box" for t, tw, th in texts if tw > w - 4 or th > h - 2]


def test_the_model_map_of_a_tiny_gpt2_shows_its_learned_positions(app_and_browser, tiny_gpt2, tmp_path):
    """Model map in Chromium for a tiny GPT-2 opened from a local folder by the link: the learned position
    embedding is a box of the diagram beside the token embedding, and its click target works
    (model_map_tiny_gpt2.png, to be looked at)."""
    from urllib.parse import quote

    folder = tmp_path / "tiny-gpt2"
    tiny_gpt2.model.save_pretrained(folder)
    tiny_gpt2.tokenizer.save_pretrained(folder)
    base, b = app_and_browser
    page = b.new_page(viewport={"width": 1280, "height": 720})
    try:
        _open_map(page, f"{base}/Model_map?model={quote(str(folder))}")
        ids = page.evaluate("() => document.querySelector('.st-key-map_diagram .js-plotly-plot').data"
                            ".flatMap(d => Array.isArray(d.customdata) ? d.customdata : [])")
        assert {"embed", "pos", "unembed"} <= set(ids)
        page.screenshot(path=str(br.SHOTS / "model_map_tiny_gpt2.png"))
        assert not _map_text_fits(page), _map_text_fits(page)       # 7 boxes across at 1280 px
        _click_box(page, "pos")
        assert not page.locator("[data-testid='stException']").all_inner_texts()
        assert not page.locator("[data-testid='stAlertContentError']").all_inner_texts()
    finally:
        page.close()


def test_a_view_becomes_a_step_its_file_downloads_and_an_upload_runs(app_and_browser, tmp_path):
    """A teacher's own lesson in Chromium: on Attention (layer 3, head 2) "Add this view as a step" in the sidebar,
    "Edit it on the home page", download the file (it parses to that step); a malformed upload is named with its file
    and step; the downloaded file uploaded again runs on its page with the player (editor_1280.png, own_run.png)."""
    from explainer import lessons

    base, b = app_and_browser
    context = b.new_context(viewport={"width": 1280, "height": 720}, accept_downloads=True)
    page = context.new_page()
    click = lambda sel: page.locator(sel).first.evaluate("e => e.click()")  # noqa: E731
    try:
        page.goto(f"{base}/Attention?layer=3&head=2", wait_until="domcontentloaded")
        br.wait_idle(page)
        page.get_by_text("My lesson").first.click()
        click(".st-key-own_add button")
        br.wait_idle(page)
        assert "Step 1 of “My lesson”: Attention." in page.locator("[data-testid='stSidebar']").inner_text()
        click(".st-key-own_edit button")
        br.wait_idle(page)
        page.locator(".st-key-own_lesson").scroll_into_view_if_needed()
        page.screenshot(path=str(br.SHOTS / "editor_1280.png"))
        shows = page.locator("[class*='st-key-own_'][class*='_section']")   # what the projector shows of the step
        assert shows.count() == 1
        shows.first.scroll_into_view_if_needed()
        page.screenshot(path=str(br.SHOTS / "editor_step_1280.png"))
        with page.expect_download() as d:
            click(".st-key-own_download button")
        saved = tmp_path / d.value.suggested_filename
        d.value.save_as(saved)
        lesson = lessons.parse(saved.read_bytes(), "my-lesson")
        assert [(s.view, dict(s.state)) for s in lesson.steps] == [("Attention", {"layer": "3", "head": "2"})]
        bad = tmp_path / "broken.toml"
        bad.write_text(saved.read_text().replace('view = "Attention"', 'view = "Kitchen"'))
        upload = page.locator("[data-testid='stFileUploader'] input[type=file]")
        upload.set_input_files(str(bad))
        br.wait_idle(page)
        errors = page.locator("[data-testid='stAlertContentError']").all_inner_texts()
        assert any("broken.toml: step 1 (“Attention”), view: 'Kitchen'" in e for e in errors), errors
        page.locator("[data-testid='stFileUploader'] input[type=file]").set_input_files(str(saved))
        br.wait_idle(page)
        assert page.locator(".st-key-own_lesson").count() == 1
        click(".st-key-own_run button")
        br.wait_idle(page)
        assert "/Attention?" in page.url and "lesson=my-lesson-2" in page.url, page.url
        assert "Step 1 of 1" in page.locator(".st-key-player").inner_text()
        page.screenshot(path=str(br.SHOTS / "own_run.png"))
        assert not page.locator("[data-testid='stException']").all_inner_texts()
    finally:
        context.close()


# The page scrolls when some scrolling container (Streamlit's main area, or the document) holds more than it shows.
SCROLL_JS = """() => {
  const els = [document.scrollingElement, ...document.querySelectorAll('[data-testid="stMain"], section.main, '
               + '[data-testid="stAppViewContainer"], [data-testid="stAppScrollToBottomContainer"]')];
  let most = 0;
  for (const e of els) if (e) most = Math.max(most, e.scrollHeight - e.clientHeight);
  return most;
}"""
BODY_PX_JS = """() => { const p = document.querySelector('.st-key-player [data-testid="stMarkdownContainer"] p');
  return p ? parseFloat(getComputedStyle(p).fontSize) : 0; }"""
# The scale the presenter view gave the step's section to fit the screen (ui._FIT_JS), 1 when it fits as it is.
FIT_JS = """() => { const e = document.querySelector('.st-key-present_section');
  return e && e.dataset.fit ? parseFloat(e.dataset.fit) : null; }"""
# Below this a section's 14 px chart labels read under 11 px: lay the section out again (lowest measured: 0.76).
FIT_FLOOR = 0.72


def _settled_fit(page) -> tuple[float, float]:
    """(px the page scrolls, the section's scale) once the fitting script has had its time: read every 500 ms (the
    script's own period) until two readings agree on the scale, then that scale and the more the two scroll. A
    scale that keeps changing fails here; it once swung between 0.73 and 0.76, the page scrolling at one of them."""
    page.wait_for_timeout(800)
    seen = [(page.evaluate(SCROLL_JS), page.evaluate(FIT_JS))]
    for _ in range(4):          # a chart still arriving changes the scale once; a swing keeps changing it
        page.wait_for_timeout(500)
        seen.append((page.evaluate(SCROLL_JS), page.evaluate(FIT_JS)))
        if seen[-1][1] == seen[-2][1]:
            return max(seen[-1][0], seen[-2][0]), seen[-1][1]
    raise AssertionError(f"the presenter view's scale did not settle: {seen}")


def test_lesson_one_in_presenter_view_by_the_keyboard(app_and_browser, capsys):
    """Lesson one (order = 1) in presenter view at 1280×720, driven only by → from the first step to the last: no
    exception on any step, the step's page each time, a screenshot of every step (lesson_NN.png, what the
    projector shows), and per step whether the page scrolls (printed; the goal is none at 1280×720)."""
    from explainer import lessons

    base, b = app_and_browser
    lesson = min(lessons.load_all().lessons, key=lambda x: x.order)
    page = b.new_page(viewport={"width": 1280, "height": 720})
    rows = []
    try:
        page.goto(f"{base}/?lesson={lesson.name}&step=1&present=1", wait_until="domcontentloaded")
        br.wait_idle(page)
        for s in lesson.steps:
            if s.number > 1:
                page.keyboard.press("ArrowRight")
                page.get_by_text(f"Step {s.number} of {len(lesson.steps)}").first.wait_for(timeout=240_000)
                br.wait_idle(page)
            head = page.locator(".st-key-player").first.inner_text()
            assert f"Step {s.number} of {len(lesson.steps)}" in head, (s.number, head)
            assert f"step={s.number}" in page.url and "present=1" in page.url, page.url
            assert not page.locator("[data-testid='stSidebar']").is_visible()
            exceptions = page.locator("[data-testid='stException']").all_inner_texts()
            assert not exceptions, (s.number, exceptions)
            over, fit = _settled_fit(page)
            page.screenshot(path=str(br.SHOTS / f"lesson_{s.number:02d}.png"))
            rows.append((s.number, s.view, over, page.evaluate(BODY_PX_JS), fit))
        n = len(lesson.steps)
        for key, to in (("ArrowLeft", n - 1), ("PageUp", n - 2), ("PageDown", n - 1)):   # a clicker sends PageUp/Down
            page.keyboard.press(key)
            page.get_by_text(f"Step {to} of {n}").first.wait_for(timeout=240_000)
            br.wait_idle(page)
        page.keyboard.press("r")                                         # R reveals the step's answer
        page.locator("[data-testid='stAlertContentSuccess']").first.wait_for(timeout=240_000)
        assert "Answer:" in page.locator("[data-testid='stAlertContentSuccess']").first.inner_text()
        br.wait_idle(page)
        page.set_viewport_size({"width": 1920, "height": 1080})
        page.wait_for_timeout(1000)
        big = page.evaluate(BODY_PX_JS)
        page.screenshot(path=str(br.SHOTS / "lesson_1920x1080.png"))
    finally:
        page.close()
    with capsys.disabled():
        print(f"\n{lesson.name} in presenter view at 1280×720 (scroll: px of the page below the window)")
        for n, view, over, px, fit in rows:
            print(f"  step {n:2d} {view:12s} {'scrolls ' + str(over) + ' px' if over > 2 else 'fits'}  body {px:g} px"
                  f"  section at {fit:.2f}")
        print(f"  at 1920×1080: body text {big:g} px")
    assert all(px >= 20 for *_, px, _ in rows), rows
    assert big >= 24, big
    assert all(over <= 2 for _, _, over, _, _ in rows), rows          # no vertical scroll at 1280×720
    assert all(fit is not None and fit >= FIT_FLOOR for *_, fit in rows), rows


def test_every_built_in_step_fits_a_projector_without_scrolling(app_and_browser, capsys):
    """Every step of every built-in lesson in presenter view, opened by its link, at 1280×720, and the first step
    of each at 1920×1080: no exception, no vertical scroll, the step's section drawn (its container present) at a
    scale of at least FIT_FLOOR; each 1280×720 step's screenshot is present_<lesson>_<NN>.png."""
    from explainer import lessons

    base, b = app_and_browser
    rows = []
    for width, height in ((1280, 720), (1920, 1080)):
        page = b.new_page(viewport={"width": width, "height": height})
        try:
            for lesson in lessons.load_all().lessons:
                for s in lesson.steps if width == 1280 else lesson.steps[:1]:
                    page.goto(f"{base}/?lesson={lesson.name}&step={s.number}&present=1", wait_until="domcontentloaded")
                    br.wait_idle(page)
                    exceptions = page.locator("[data-testid='stException']").all_inner_texts()
                    assert not exceptions, (lesson.name, s.number, exceptions)
                    for name in s.section:
                        assert page.locator(f".st-key-section-{name}").count() >= 1, (lesson.name, s.number, name)
                    over, fit = _settled_fit(page)
                    if width == 1280:
                        page.screenshot(path=str(br.SHOTS / f"present_{lesson.name}_{s.number:02d}.png"))
                    rows.append((f"{lesson.name} {s.number}", width, over, fit))
        finally:
            page.close()
    with capsys.disabled():
        print("\nbuilt-in steps in presenter view (scroll px, the section's scale)")
        for name, width, over, fit in rows:
            print(f"  {name:28s} {width:4d}  {'scrolls ' + str(over) + ' px' if over > 2 else 'fits'}  at {fit}")
    assert all(over <= 2 for _, _, over, _ in rows), [r for r in rows if r[2] > 2]
    small = [r for r in rows if r[3] is None or r[3] < FIT_FLOOR]
    assert not small, small
