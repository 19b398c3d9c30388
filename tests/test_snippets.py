"""The code behind each view (explainer/snippets.py): every snippet runs as-is, in a fresh namespace, on the
bundled model, and its numbers equal the engine values the page charts; the pages show it."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest

import explainer as ex
from explainer import generation as gen
from explainer import lens, snippets
from explainer.sampling import probabilities, softmax

from .conftest import EIFFEL

ROOT = Path(__file__).resolve().parents[1]

# The views that have a code expander, per page: a page's call to snippets.X must name a registered view.
PAGES = {
    "pages/1_Embeddings.py": {"analogy"},
    "pages/2_Attention.py": {"attention_head"},
    "pages/3_MLP_neurons.py": {"mlp_neuron"},
    "pages/4_Logit_lens.py": {"logit_lens", "residual_norms"},
    "pages/5_Next_token.py": {"next_token"},
    "pages/6_Generate.py": {"generate", "chat"},
    "pages/7_Interventions.py": {"ablation"},
}


def run(code: str, name: str) -> dict:
    """exec a snippet in a fresh namespace, as a notebook cell would run it."""
    ns: dict = {"__name__": f"snippet_{name}"}
    exec(compile(code, f"<snippet {name}>", "exec"), ns)  # noqa: S102 - our own generated code
    return ns


def _np(x) -> np.ndarray:
    return x.detach().double().numpy() if hasattr(x, "detach") else np.asarray(x, dtype=np.float64)


# -- the registry ----------------------------------------------------------------------------------------

def _snippet_calls(path: Path) -> set[str]:
    """Every snippets.X(...) a page calls."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "snippets"):
            found.add(node.func.attr)
    return found


@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_view_with_code_has_a_registered_snippet(page):
    calls = _snippet_calls(ROOT / page)
    assert PAGES[page] <= calls, f"{page} shows no code for {PAGES[page] - calls}"
    assert calls <= set(snippets.VIEWS), f"{page} calls snippets not in snippets.VIEWS: {calls - set(snippets.VIEWS)}"
    assert "code_expander" in (ROOT / page).read_text()


def test_every_registered_snippet_is_run_by_a_test():
    tested = {name.removeprefix("test_snippet_") for name in globals() if name.startswith("test_snippet_")}
    assert set(snippets.VIEWS) <= {t.split("__")[0] for t in tested}, set(snippets.VIEWS) - tested


# -- each snippet against the page's numbers ------------------------------------------------------------

def test_snippet_attention_head(bundled, tr):
    for layer, head in ((0, 0), (7, 4), (bundled.n_layers - 1, bundled.n_heads - 1)):
        ns = run(snippets.attention_head(bundled, tr, layer, head), "attention_head")
        np.testing.assert_allclose(_np(ns["pattern"]), tr.attn[layer, head], atol=1e-5)


def test_snippet_mlp_neuron(bundled, tr):
    for layer, neuron in ((3, 17), (bundled.n_layers - 1, bundled.d_mlp - 1)):
        ns = run(snippets.mlp_neuron(bundled, tr, layer, neuron), "mlp_neuron")
        np.testing.assert_allclose(_np(ns["acts"]), tr.mlp[layer, :, neuron], atol=1e-4, rtol=1e-5)


def test_snippet_logit_lens(bundled, tr):
    pos = 4
    res = lens.logit_lens(bundled, tr, k=5, positions=[pos])
    token = int(res.ids[-1, pos, 0])                                  # the model's final guess there
    tj = lens.token_trajectory(bundled, tr, token)
    ns = run(snippets.logit_lens(bundled, tr, pos, token), "logit_lens")
    probs = _np(ns["lens"])                                           # [L+1, V]
    top = np.argsort(-probs, axis=-1)[:, :5]
    assert (top[:, 0] == res.ids[:, pos, 0]).all()
    np.testing.assert_allclose(np.take_along_axis(probs, top, -1), res.probs[:, pos], atol=1e-5)
    np.testing.assert_allclose(_np(ns["tracked"]), tj.probs[:, pos], atol=1e-5)


def test_snippet_residual_norms(bundled, tr):
    ns = run(snippets.residual_norms(bundled, tr), "residual_norms")
    np.testing.assert_allclose(_np(ns["norms"]), lens.residual_norm(tr), rtol=1e-5)


SETTINGS = [  # temperature, top-k, top-p, min-p, repetition penalty: every stage on, each alone, greedy
    (0.7, 10, 0.9, 0.05, 1.2),
    (1.0, 0, 1.0, 0.0, 1.0),
    (1.3, 0, 0.8, 0.0, 1.0),
    (0.5, 40, 1.0, 0.1, 1.0),
    (0.0, 10, 0.9, 0.0, 1.3),
]


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: "T{}-k{}-p{}-m{}-r{}".format(*s))
def test_snippet_next_token(bundled, settings):
    t, k, p, m, r = settings
    state = gen.start(bundled, EIFFEL)
    gen.advance(bundled, state, "top")
    gen.advance(bundled, state, "sample", seed=42)                    # one draw taken: the next is draw 1
    steps = [s.token_id for s in state.steps]
    dist = probabilities(state.frontier, t, k, p, m, r, state.ids)   # what the page charts
    ns = run(snippets.next_token(bundled, EIFFEL, t, k, p, m, r, steps=steps, seed=42, draw=state.draws),
             "next_token")
    np.testing.assert_allclose(_np(ns["probs"]), dist.probs, atol=1e-5)
    assert ns["new_token"] in np.flatnonzero(dist.probs > 0)          # generate() drew a token the filters kept
    if t == 0:
        assert ns["new_token"] == dist.argmax                         # greedy: the app's top token
    else:
        assert ns["token"] == gen.advance(bundled, state, "sample", gen.Settings(t, k, p, m, r), seed=42).token_id


def test_snippet_generate__greedy_equals_the_app(bundled):
    cfg = gen.GenConfig(max_new_tokens=8, temperature=0.0, top_k=50, top_p=0.95, repetition_penalty=1.2, seed=0)
    app = gen.generate(bundled, EIFFEL, cfg)
    ns = run(snippets.generate(bundled, EIFFEL, cfg.max_new_tokens, cfg.temperature, cfg.top_k, cfg.top_p,
                               None, cfg.repetition_penalty, cfg.seed), "generate")
    assert [int(i) for i in ns["new_ids"]] == [s.token_id for s in app.tokens]
    assert ns["text"] == app.text


def test_snippet_generate__stop_strings_cut_before_the_match(bundled):
    cfg = gen.GenConfig(max_new_tokens=10, temperature=0.0, top_k=None, top_p=None, stop=(" is",), seed=0)
    prompt = "The capital of France"
    app = gen.generate(bundled, prompt, cfg)
    ns = run(snippets.generate(bundled, prompt, cfg.max_new_tokens, 0.0, None, None, stop=cfg.stop), "generate")
    assert app.reason == "stop" and ns["text"] == app.text and " is" not in ns["text"]


@pytest.mark.parametrize("template", [True, False], ids=["chat-template", "plain-lines"])
def test_snippet_chat__greedy_reply_equals_the_app(bundled, template, monkeypatch):
    """The chat's code gives the reply the chat shows, with the tokenizer's template and without one."""
    if not template:
        monkeypatch.setattr(bundled.tokenizer, "chat_template", None)
    elif not getattr(bundled.tokenizer, "chat_template", None):
        pytest.fail("the bundled tokenizer was expected to carry a chat template")
    log = [{"role": "user", "content": "What is the capital of France?"},
           {"role": "assistant", "content": "Paris."},
           {"role": "user", "content": "And of Italy?"}]
    cfg = gen.GenConfig(max_new_tokens=8, temperature=0.0, top_k=None, top_p=None, repetition_penalty=1.1,
                        stop=("\n\n",), seed=0)
    ids, stops, _ = gen.chat_ids(bundled, log)
    stream = gen.Stream(bundled, list(ids), dataclasses.replace(cfg, stop=cfg.stop + stops))
    for _ in stream:
        pass
    app = stream.outcome.text.strip()
    # the page shows it for a log that already holds the reply: the snippet answers the last user message
    shown = log + [{"role": "assistant", "content": app}]
    ns = run(snippets.chat(bundled, shown, cfg.max_new_tokens, 0.0, None, None, None, cfg.repetition_penalty,
                           0, cfg.stop), "chat")
    assert ns["reply"] == app and app
    assert [int(i) for i in ns["ids"][0]] == list(ids)


@pytest.mark.parametrize("positive, negative, variants", [
    (["king", "woman"], ["man"], True), (["Paris", "Italy"], ["France"], False), (["walked", "swim"], ["walk"], True),
    (["zzqxw", "woman"], ["man"], True),                # a word the model splits: the mean of its pieces
])
def test_snippet_analogy__equals_the_page(bundled, positive, negative, variants):
    from explainer import vectors

    res = vectors.analogy(bundled, positive, negative, k=10, exclude_inputs=True, exclude_variants=variants)
    ns = run(snippets.analogy(bundled, positive, negative, 10, variants), "analogy")
    assert [int(i) for i in ns["best"].indices] == [n.id for n in res.neighbours]
    np.testing.assert_allclose(_np(ns["best"].values), [n.cosine for n in res.neighbours], atol=1e-5)
    assert sorted(ns["exclude"]) == list(res.excluded)


@pytest.mark.parametrize("heads, neurons", [([(5, 1), (7, 2), (7, 4)], [(10, 7), (10, 99)]), ([(0, 0)], []),
                                            ([], [(29, 3)]), ([], [])])
def test_snippet_ablation__equals_the_page(tr, bundled, heads, neurons):
    from explainer import interventions as iv

    res = iv.ablate(bundled, tr, heads=heads, neurons=neurons)
    ns = run(snippets.ablation(bundled, tr, res.heads, res.neurons), "ablation")
    np.testing.assert_allclose(_np(ns["before"]), softmax(res.logits_before[-1]), atol=1e-5)
    np.testing.assert_allclose(_np(ns["after"]), softmax(res.logits_after[-1]), atol=1e-5)
    assert bool(heads or neurons) == bool(np.abs(_np(ns["after"]) - _np(ns["before"])).max() > 1e-6)


def test_snippet_generate__sampling_runs(bundled):
    ns = run(snippets.generate(bundled, EIFFEL, 6, 0.7, 50, 0.95, 0.05, 1.1, 3, ("\n\n",)), "generate")
    assert 1 <= len(ns["new_ids"]) <= 6 and isinstance(ns["text"], str)


def test_snippets_keep_the_apps_truncation(bundled):
    tr = ex.trace(bundled, EIFFEL, max_tokens=5)
    assert tr.truncated
    code = snippets.attention_head(bundled, tr, 2, 1)
    assert "ids[:, -5:]" in code
    np.testing.assert_allclose(_np(run(code, "attention_head")["pattern"]), tr.attn[2, 1], atol=1e-5)


def test_settings_are_written_as_typed(bundled):
    code = snippets.next_token(bundled, EIFFEL, 0.7000000000000001, 10, 0.93, None, None)
    assert "z = x / 0.7 " in code and "1 - 0.93 " in code
    assert "torch.manual_seed" not in snippets.generate(bundled, EIFFEL, 5, 0.0)       # greedy needs no seed


# -- on the pages ------------------------------------------------------------------------------------------

def _page(path: str):
    from streamlit.testing.v1 import AppTest

    from .conftest import page_ok

    at = AppTest.from_file(f"../{path}", default_timeout=180).run()
    page_ok(at)
    assert "The code behind this view" in [e.label for e in at.expander], path
    return at


def test_the_attention_page_shows_the_code_of_its_head_and_the_code_gives_its_numbers(bundled):
    at = _page("pages/2_Attention.py")
    layer, head = int(at.session_state.att_layer), int(at.session_state.att_head)
    tr = ex.trace(bundled, at.session_state._prompt, int(at.session_state.max_tokens))
    code = [c.value.strip() for c in at.code if "output_attentions=True" in c.value]
    assert code == [snippets.attention_head(bundled, tr, layer, head).strip()]
    np.testing.assert_allclose(_np(run(code[0], "page")["pattern"]), tr.attn[layer, head], atol=1e-5)
    button = at.get("download_button")              # the pattern's table, and the sidebar's Advanced expander
    assert sorted(b.label for b in button) == ["Download this pattern (CSV)", "Download this trace (.npz)"]


def test_the_mlp_page_shows_the_code_of_its_neuron_and_the_code_gives_its_numbers(bundled):
    at = _page("pages/3_MLP_neurons.py")
    layer, neuron = int(at.session_state.mlp_layer), int(at.session_state.mlp_neuron)
    tr = ex.trace(bundled, at.session_state._prompt, int(at.session_state.max_tokens))
    code = [c.value.strip() for c in at.code if "register_forward_pre_hook" in c.value]
    assert code == [snippets.mlp_neuron(bundled, tr, layer, neuron).strip()]
    np.testing.assert_allclose(_np(run(code[0], "page")["acts"]), tr.mlp[layer, :, neuron], atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("path,needle", [("pages/4_Logit_lens.py", "output_hidden_states=True"),
                                         ("pages/5_Next_token.py", "TemperatureLogitsWarper(1.0)"),
                                         ("pages/6_Generate.py", "model.generate(")])
def test_the_other_pages_show_their_code(path, needle):
    at = _page(path)
    assert any(needle in c.value for c in at.code), path
