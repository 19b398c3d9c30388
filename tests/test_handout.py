"""The lesson handout (explainer/handout.py): a figure for every built-in step whose numbers are the engine's,
one self-contained HTML document per lesson, and that document in Chromium with the network blocked."""

from __future__ import annotations

import json
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from plotly.offline import get_plotlyjs

from explainer import content, defaults, generation, handout, heads, interventions, lens, lessons, makemore, vectors
from explainer.anatomy import count_parameters
from explainer.capture import trace
from explainer.sampling import probabilities, softmax, top_k
from explainer.tokens import encode
from tests import browser as br
from tests.conftest import plotly_array

ROOT = Path(__file__).resolve().parents[1]
BUILTIN = lessons.load_all()
STEPS = [(lesson, s) for lesson in BUILTIN.lessons for s in lesson.steps]


def _fig(fig) -> dict:
    return json.loads(fig.to_json())


def _x(trace_dict) -> np.ndarray:
    return plotly_array(trace_dict["x"]).astype(float)


@pytest.fixture(scope="module")
def memo() -> dict:
    return {}


def test_the_builtin_lessons_are_loaded():
    assert not BUILTIN.errors
    assert len(BUILTIN.lessons) >= 6 and len(STEPS) >= 50


@pytest.mark.parametrize(("lesson", "step"), STEPS, ids=[f"{lesson.name}-{s.number}" for lesson, s in STEPS])
def test_every_builtin_step_gets_a_figure_with_the_engines_numbers(bundled, memo, lesson, step):
    fig = handout.step_figure(bundled, step, memo)
    assert fig is not None, step.view
    d = _fig(fig)
    assert d["data"], "an empty figure"
    assert len(fig.to_json()) < 400_000, "a handout figure should stay light"
    st = step.state
    view = step.view
    if view in ("Next_token", "Generate", "Home"):
        # an independent forward pass over the prompt (not the trace the handout used)
        if view == "Generate":
            tmpl = content.TEMPLATES[st.get("template", defaults.GENERATE["template"])]
            ids = (generation.chat_ids(bundled, [{"role": "user", "content": handout.CHAT_EXAMPLE}])[0] if tmpl.chat
                   else encode(bundled, step.prompt, defaults.MAX_TOKENS).ids)
            D = defaults.GENERATE
            temp = float(st.get("temperature", tmpl.temperature))
        else:
            ids = encode(bundled, step.prompt, defaults.MAX_TOKENS).ids
            D = defaults.NEXT_TOKEN
            temp = float(st.get("temperature", D["temperature"]))
        logits = generation.next_logits(bundled, ids)
        if view == "Home":
            p = softmax(logits)
            want = p[top_k(p, 10)][::-1]
            got = _x(d["data"][0])
        else:
            dist = probabilities(logits, temp, int(st.get("top_k", D["top_k"])), float(st.get("top_p", D["top_p"])),
                                 D["min_p"], D["repetition_penalty"], ids)
            want = dist.probs[dist.top(defaults.NEXT_TOKEN["show"])][::-1]
            got = _x(d["data"][1])                  # the solid bars: what a draw uses
        np.testing.assert_allclose(got, want, atol=2e-4)
    elif view == "Attention":
        tr = trace(bundled, step.prompt, defaults.MAX_TOKENS)
        layer, head = heads.looking_back_head(tr.attn)
        layer, head = int(st.get("layer", layer)), int(st.get("head", head))
        z = plotly_array(d["data"][0]["z"]).astype(float)
        want = np.where(np.tril(np.ones_like(tr.attn[layer, head], dtype=bool)), tr.attn[layer, head], np.nan)
        np.testing.assert_allclose(z, want, atol=6e-4)      # rounded to 3 decimals for the browser
        assert d["layout"]["title"]["text"] == f"Layer {layer}, head {head}"
    elif view == "MLP_neurons":
        tr = trace(bundled, step.prompt, defaults.MAX_TOKENS)
        layer = int(st.get("layer", defaults.mlp_layer(bundled.n_layers)))
        cols = [int(x[1:]) for x in d["data"][0]["x"]]
        assert len(cols) == defaults.MLP["mlp_n"]
        z = plotly_array(d["data"][0]["z"]).astype(float)
        np.testing.assert_allclose(z, tr.mlp[layer][:, cols], rtol=1e-5, atol=1e-5)
        peak = np.abs(tr.mlp[layer][1:]).max(axis=0)        # the first token left out of the ranking (default)
        assert peak[cols].min() >= np.sort(peak)[-len(cols)] - 1e-6
    elif view == "Logit_lens":
        tr = trace(bundled, step.prompt, defaults.MAX_TOKENS)
        res = lens.logit_lens(bundled, tr, k=1)
        lo, hi = defaults.lens_window(tr.n_tokens)
        z = plotly_array(d["data"][0]["z"]).astype(float)
        np.testing.assert_allclose(z, res.probs[:, lo:hi + 1, 0], atol=1e-4)
    elif view == "Embeddings" and st.get("tab") == "analogies":
        a, b, c = content.ANALOGY_PRESETS[st["an_preset"]]
        res = vectors.analogy(bundled, [a, c], [b], k=defaults.EMBEDDINGS["an_k"], exclude_inputs=True,
                              exclude_variants=True)
        np.testing.assert_allclose(_x(d["data"][0])[::-1], [n.cosine for n in res.neighbours], atol=1e-6)
        if step.question is not None:                 # the answer revealed is the top bar
            assert lessons.answer(step.question, bundled, memo).numbers["token_id"] == res.neighbours[0].id
    elif view == "Interventions":
        tr = trace(bundled, step.prompt, defaults.MAX_TOKENS)
        hs = interventions.attribution(bundled, tr).top_heads(defaults.N_SUGGEST)   # the page's default heads
        cmp = interventions.compare(bundled, interventions.ablate(bundled, step.prompt, hs), k=8)
        np.testing.assert_allclose(_x(d["data"][0])[::-1], cmp.before, atol=1e-4)
        np.testing.assert_allclose(_x(d["data"][1])[::-1], cmp.after, atol=1e-4)
    elif view == "Anatomy":
        values = dict(zip(d["data"][0]["ids"], d["data"][0]["values"]))
        assert values["root"] == count_parameters(bundled.config).total
    elif view == "Tiny_LM_lab" and not any(k.startswith("lab_of_") or k in ("lab_n", "lab_temp", "lab_prefix",
                                                                              "lab_sample_seed") for k in st):
        # The lab's default training run, made here by hand: the handout's dev curve is the same run's.
        L = defaults.LAB
        cfg = makemore.MLPConfig(int(st.get("lab_block", L["lab_block"])), int(st.get("lab_embd", L["lab_embd"])),
                                 int(st.get("lab_hidden", L["lab_hidden"])))
        dev = next(t for t in d["data"] if t["name"].startswith("dev"))
        steps = plotly_array(dev["x"])
        assert steps[0] == 0 and steps[-1] == int(st.get("lab_steps", L["lab_steps"]))
        if (cfg.n_embd, cfg.n_hidden) == (2, 100):      # one run by hand is enough (1-2 s)
            model = makemore.CharMLP(cfg, seed=L["lab_seed"])
            data = makemore.load_data(cfg.block_size, seed=42)
            hist = makemore.train_to_end(model, data, steps=L["lab_steps"], lr=L["lab_lr"],
                                         batch_size=L["lab_batch"], eval_every=L["lab_every"], seed=L["lab_seed"])
            np.testing.assert_allclose(plotly_array(dev["y"]).astype(float), [h.dev_loss for h in hist], rtol=1e-6)


# -- the document -------------------------------------------------------------------------------------------

class _Doc(HTMLParser):
    """Scripts (inline text), plotly divs, and the visible text of an HTML document."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.scripts: list[dict] = []
        self.plot_divs: list[str] = []
        self.text: list[str] = []
        self.tags: list[str] = []
        self._in_script: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "script":
            self._in_script = {"attrs": a, "text": ""}
            self.scripts.append(self._in_script)
        if tag == "div" and "plotly-graph-div" in (a.get("class") or ""):
            self.plot_divs.append(a.get("id", ""))

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = None

    def handle_data(self, data):
        if self._in_script is not None:
            self._in_script["text"] += data
        else:
            self.text.append(data)

    @property
    def visible(self) -> str:
        return " ".join(" ".join(self.text).split())


def _norm(s: str) -> str:
    return " ".join(s.split())


@pytest.fixture(scope="module")
def lesson_one() -> lessons.Lesson:
    return next(lesson for lesson in BUILTIN.lessons if lesson.order == 1)


@pytest.fixture(scope="module")
def built(bundled, lesson_one) -> tuple[str, list[tuple[int, int]], float]:
    calls: list[tuple[int, int]] = []
    t0 = time.perf_counter()
    doc = handout.build(lesson_one, bundled, progress=lambda i, n: calls.append((i, n)))
    return doc, calls, time.perf_counter() - t0


def test_the_handout_holds_every_step_and_plotly_once(bundled, lesson_one, built):
    doc, calls, seconds = built
    p = _Doc()
    p.feed(doc)
    n = len(lesson_one.steps)
    plotly_js = [s for s in p.scripts if "src" not in s["attrs"] and len(s["text"]) > 1_000_000]
    assert len(plotly_js) == 1 and plotly_js[0]["text"] == get_plotlyjs()
    assert doc.index(get_plotlyjs()) < doc.index("<body")               # in the head
    assert not [s for s in p.scripts if "src" in s["attrs"]], "no script is fetched"
    rest = doc.replace(get_plotlyjs(), "")             # plotly.js itself names URLs it never fetches here
    assert "<link" not in rest and "http://" not in rest and "https://" not in rest
    assert len(p.plot_divs) == n == len(set(p.plot_divs))
    text = p.visible
    for s in lesson_one.steps:
        assert _norm(f"Step {s.number} · {s.title}") in text
        if s.question is not None:
            assert _norm(s.question.text) in text
            assert _norm(lessons.answer(s.question, bundled).text) in text
        for t in s.tries:
            assert _norm(t) in text
    assert _norm(lesson_one.title) in text and _norm(lesson_one.summary) in text
    assert lesson_one.level in text and f"{lesson_one.minutes} minutes" in text and bundled.label in text
    assert calls == [(i, n) for i in range(n + 1)]
    assert len(doc.encode()) < 8_000_000, "a lesson's handout should be a few MB"
    print(f"\n{lesson_one.name}: {len(doc.encode()) / 1e6:.2f} MB, built in {seconds:.1f} s")


def test_raw_html_in_a_narration_is_escaped(bundled):
    src = """title = "Escapes"
summary = "A narration with HTML in it."
level = "test"
minutes = 5
model = "bundled"

[[steps]]
title = "Anatomy <b>bold</b>"
view = "Anatomy"
narration = \"\"\"Some **Markdown**, then <script>alert("x")</script> and <img src=x onerror=alert(1)>.
A [link](javascript:alert(1)).\"\"\"
try = ["<i>try</i> this"]
"""
    lesson = lessons.parse(src, "escapes")
    doc = handout.build(lesson, bundled)
    body = doc[doc.index("<body"):]
    p = _Doc()
    p.feed(body)
    assert all("alert" not in s["text"] for s in p.scripts)              # the only scripts are the figure's
    assert "<script>alert" not in body and "<img" not in body and "<b>bold" not in body and "<i>try" not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body
    assert "<strong>Markdown</strong>" in body
    assert 'href="javascript:' not in body
    assert "Anatomy &lt;b&gt;bold&lt;/b&gt;" in body


def test_lesson_file_is_the_toml_as_loaded():
    for lesson in BUILTIN.lessons:
        data = handout.lesson_file(lesson)
        assert data == (lessons.LESSONS_DIR / f"{lesson.name}.toml").read_bytes()
        assert lessons.parse(data, lesson.name) == lesson


# -- in Chromium, offline ---------------------------------------------------------------------------------------

@pytest.mark.e2e
def test_the_handout_opens_offline_in_chromium(built, lesson_one, tmp_path):
    if br.chromium_path() is None:
        pytest.fail("Chromium is missing: `apt-get install -y chromium`.")
    doc = built[0]
    path = tmp_path / f"{lesson_one.name}-handout.html"
    path.write_text(doc, encoding="utf-8")
    url = path.as_uri()
    requests, errors = [], []
    with br.browser() as b:
        page = b.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))

        def route(r):
            if r.request.url == url:
                r.continue_()
            else:
                requests.append(r.request.url)
                r.abort()
        page.route("**/*", route)
        page.goto(url)
        n = len(lesson_one.steps)
        page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {n}",
                               timeout=60_000)
        page.wait_for_timeout(1000)
        drawn = page.evaluate("() => [...document.querySelectorAll('.js-plotly-plot')]"
                              ".filter(g => g._fullLayout && g.querySelector('.main-svg')).length")
        br.SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(br.SHOTS / "handout.png"), full_page=True)
    assert requests == [], f"the handout asked for {requests}"
    assert drawn == n
    assert errors == []


def test_the_ui_buttons_draw_without_building(bundled):
    """The two download buttons for the lesson player: drawn without building the handout (it is made on
    the click), named after the lesson."""
    from streamlit.testing.v1 import AppTest

    def script():
        from explainer import lessons, ui
        lesson = lessons.load_all().lessons[0]
        lm = ui.get_model("bundled")
        ui.lesson_download(lesson)
        ui.handout_download(lesson, lm)

    t0 = time.perf_counter()
    at = AppTest.from_function(script, default_timeout=120).run()
    assert not at.exception
    buttons = at.get("download_button")
    assert len(buttons) == 2
    assert [b.proto.label for b in buttons] == ["Download the lesson file (.toml)", "Download the handout (HTML)"]
    assert time.perf_counter() - t0 < 30          # no handout was built to draw them
