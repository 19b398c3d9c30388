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
    "pages/0_Model_map.py": {"map_box"},
    "pages/1_Embeddings.py": {"analogy", "neighbours", "word_map", "direction", "similarity", "in_context"},
    "pages/2_Attention.py": {"attention_head", "qk_steps", "head_writes", "word_order", "head_roles", "induction"},
    "pages/3_MLP_neurons.py": {"mlp_layer", "mlp_token", "mlp_neuron"},   # and the curated neuron's, from ui
    "pages/4_Logit_lens.py": {"lens_grid", "logit_lens", "residual_norms"},
    "pages/5_Next_token.py": {"next_token", "timeline"},
    "pages/6_Generate.py": {"generate", "chat", "batch"},
    "pages/7_Interventions.py": {"knockout", "ablation", "attribution"},
    "pages/8_Anatomy.py": {"parameters"},
    "pages/9_Tiny_LM_lab.py": {"lab_lr", "lab_train", "lab_overfit"},
}


# Every snippet starts by loading its model and tokenizer. Within this module a load is done for real once per
# path and arguments, by the snippet's own from_pretrained line, and handed back to the next snippet that asks for
# the same: the snippets leave the model as they found it (hooks removed, eager attention set back, inference
# only), and some eighty loads of the bundled model would cost a minute of CI.
_LOADED: dict = {}


def _load_once(load):
    def once(*args, **kwargs):
        key = (load.__self__.__name__, args, tuple(sorted(kwargs.items(), key=lambda kv: kv[0])))
        if key not in _LOADED:
            _LOADED[key] = load(*args, **kwargs)
        return _LOADED[key]
    return once


@pytest.fixture(scope="module", autouse=True)
def _loads_shared():
    yield
    _LOADED.clear()                                                   # the models go with this module


def run(code: str, name: str) -> dict:
    """exec a snippet in a fresh namespace, as a notebook cell would run it (model loads shared, see above)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ns: dict = {"__name__": f"snippet_{name}"}
    classes = (AutoModelForCausalLM, AutoTokenizer)
    own = [cls.__dict__.get("from_pretrained") for cls in classes]   # None: inherited, as in transformers 5
    for cls in classes:
        cls.from_pretrained = _load_once(cls.from_pretrained)
    try:
        exec(compile(code, f"<snippet {name}>", "exec"), ns)  # noqa: S102 - our own generated code
    finally:
        for cls, original in zip(classes, own):
            if original is None:
                del cls.from_pretrained
            else:
                cls.from_pretrained = original
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


def _finite_equal(got, want, **tol) -> None:
    """Equal where `want` is finite, and infinite exactly where it is (the causal mask's −∞)."""
    got, want = _np(got), np.asarray(want, np.float64)
    assert (np.isfinite(got) == np.isfinite(want)).all()
    np.testing.assert_allclose(got[np.isfinite(want)], want[np.isfinite(want)], **tol)


def _check_qk(lm, tr, layer: int, head: int) -> None:
    from explainer import heads

    steps = heads.qk_steps(lm, tr, layer, head)                       # what the page's four heatmaps show
    ns = run(snippets.qk_steps(lm, tr, layer, head), "qk_steps")
    scale = float(np.abs(steps.raw).max())
    _finite_equal(ns["raw"], steps.raw, rtol=1e-5, atol=1e-6 * scale)
    _finite_equal(ns["scaled"], steps.scaled, rtol=1e-5, atol=1e-6 * scale)
    _finite_equal(ns["masked"], steps.masked, rtol=1e-5, atol=1e-6 * scale)
    np.testing.assert_allclose(_np(ns["pattern"]), steps.pattern, atol=1e-5)
    np.testing.assert_allclose(_np(ns["pattern"]), tr.attn[layer, head], atol=1e-5)   # the model's own pattern
    assert ns["group"] == steps.group


def _check_head_writes(lm, tr, layer: int, head: int) -> None:
    from explainer import attention_out

    ho = attention_out.head_outputs(lm, tr, layer, check=False)       # what the page's §4 charts show
    ns = run(snippets.head_writes(lm, tr, layer, head), "head_writes")
    np.testing.assert_allclose(_np(ns["values"]), ho.value(head), atol=1e-5)
    np.testing.assert_allclose(_np(ns["z"]), ho.z[head], atol=1e-5)
    np.testing.assert_allclose(_np(ns["parts"]), ho.parts, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(_np(ns["norms"]), ho.part_norms(-1), rtol=1e-4, atol=1e-5)


def _check_parameters(lm) -> None:
    from explainer import anatomy

    pc = anatomy.count_parameters(lm.config)                          # the page's counts, by formula
    ns = run(snippets.parameters(lm), "parameters")                   # the tensors themselves, counted
    assert ns["total"] == pc.total == sum(p.numel() for p in lm.model.parameters())
    assert (ns["attention"], ns["mlp"], ns["norms"]) == (pc.attention_per_layer, pc.mlp_per_layer,
                                                           pc.norms_per_layer)
    assert (ns["embedding"], ns["tied"], ns["matrices"]) == (pc.embedding, pc.tied, pc.n_matrices)


def _check_head_roles(lm) -> None:
    from explainer import heads

    scores = heads.head_scores(lm)                                    # §6's three maps
    ns = run(snippets.head_roles(lm), "head_roles")
    for role in heads.ROLES:
        np.testing.assert_allclose(_np(ns[role]), scores[role], atol=1e-5, err_msg=role)


def _check_induction(lm, layer: int, head: int) -> None:
    from explainer import heads

    demo = heads.induction_demo(lm)                                   # the induction head at work
    ns = run(snippets.induction(lm, layer, head), "induction")
    np.testing.assert_allclose(_np(ns["pattern"]), demo.attn[layer, head], atol=1e-6)
    assert abs(float(ns["hit"]) - demo.hit(layer, head)) < 1e-6
    assert abs(float(ns["rest"]) - demo.first_copy_rest(layer, head)) < 1e-6


def _check_word_order(lm) -> None:
    from explainer import positions

    pos = positions.positions(lm)                                     # §5
    ns = run(snippets.word_order(lm, pos), "word_order")
    np.testing.assert_allclose(_np(ns["similarity"]), pos.similarity, atol=1e-5)
    if isinstance(pos, positions.Rotary):
        np.testing.assert_allclose(_np(ns["degrees"]), pos.degrees_per_token, rtol=1e-5)
        np.testing.assert_allclose(_np(ns["wavelength"]), pos.wavelength, rtol=1e-5)


def test_snippet_head_roles(bundled):
    _check_head_roles(bundled)


def test_snippet_induction(bundled):
    _check_induction(bundled, 17, 3)


def test_snippet_word_order(bundled):
    _check_word_order(bundled)


@pytest.mark.parametrize("layer, head", [(0, 0), (7, 4), (29, 8)])
def test_snippet_qk_steps(bundled, tr, layer, head):
    _check_qk(bundled, tr, layer, head)


@pytest.mark.parametrize("layer, head", [(3, 5), (29, 8)])
def test_snippet_head_writes(bundled, tr, layer, head):
    _check_head_writes(bundled, tr, layer, head)


def test_snippet_parameters(bundled):
    _check_parameters(bundled)


def test_snippet_attention_parameters_and_map__every_family(tiny, tmp_path):
    """Loaded from a folder as a student would: GPT-2's fused c_attn, Conv1D and learned positions, Llama's
    rotary halves and grouped keys, GPT-J's interleaved rotary and parallel block, NeoX's partial rotary and fused
    query_key_value."""
    tiny.model.save_pretrained(tmp_path)
    tiny.tokenizer.save_pretrained(tmp_path)
    lm = ex.load_model(str(tmp_path), device="cpu")
    tr = ex.trace(lm, EIFFEL)
    assert lm.arch.family == tiny.arch.family
    _check_qk(lm, tr, 1, 3)
    _check_head_writes(lm, tr, 1, 2)
    _check_parameters(lm)
    _check_head_roles(lm)
    _check_induction(lm, 1, 2)
    _check_word_order(lm)
    from explainer.model_map import model_map, part_values

    mm = model_map(lm, tr)                                            # every box, parallel blocks included
    for part in (*mm.before, *mm.block(1), *mm.after):
        got = _np(run(snippets.map_box(lm, tr, part, 3), f"map_box {part.key}")["values"])
        want = part_values(lm, tr, part, 3)
        assert got.shape == want.shape, part.key
        np.testing.assert_allclose(got, want, atol=1e-5, err_msg=part.key)


def test_snippet_map_box(bundled, tr):
    """One box of every kind (tokens to softmax, inside the first block and the last): the snippet's values at a
    token equal what the page draws for that box (model_map.part_values)."""
    from explainer.model_map import model_map, part_values

    mm = model_map(bundled, tr)
    parts, seen = [], set()
    for part in (*mm.before, *mm.block(0), *mm.after):                # one of each way of reading a box
        how = (part.kind, part.module is None, part.hook is None)
        if how not in seen:
            seen.add(how)
            parts.append(part)
    parts.append(mm.get(f"blocks.{mm.n_layers - 1}.attn.k"))          # and deep in the model
    assert {p.kind for p in parts} == {p.kind for p in mm}
    for part in parts:
        got = _np(run(snippets.map_box(bundled, tr, part, 4), f"map_box {part.key}")["values"])
        want = part_values(bundled, tr, part, 4)
        assert got.shape == want.shape, part.key
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5, err_msg=part.key)


def test_snippet_map_box__learned_positions(tiny_gpt2, tmp_path):
    from explainer.model_map import model_map, part_values

    tiny_gpt2.model.save_pretrained(tmp_path)
    tiny_gpt2.tokenizer.save_pretrained(tmp_path)
    lm = ex.load_model(str(tmp_path), device="cpu")
    tr = ex.trace(lm, EIFFEL)
    mm = model_map(lm, tr)
    for key in ("pos", "blocks.1.attn.q", "blocks.1.attn.z", "blocks.1.add_attn"):
        part = mm.get(key)
        got = _np(run(snippets.map_box(lm, tr, part, 2), f"map_box {key}")["values"])
        np.testing.assert_allclose(got, part_values(lm, tr, part, 2), atol=1e-5, err_msg=key)


def test_snippet_mlp_neuron(bundled, tr):
    for layer, neuron in ((3, 17), (bundled.n_layers - 1, bundled.d_mlp - 1)):
        ns = run(snippets.mlp_neuron(bundled, tr, layer, neuron), "mlp_neuron")
        np.testing.assert_allclose(_np(ns["acts"]), tr.mlp[layer, :, neuron], atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("skip", [True, False], ids=["first-left-out", "every-token"])
def test_snippet_mlp_layer(bundled, skip):
    from explainer import mlp

    tr = ex.trace(bundled, "The Eiffel Tower is in the city of Paris, which has 2 million people.")
    ns = run(snippets.mlp_layer(bundled, tr, 3, 20, skip), "mlp_layer")
    top = mlp.top_neurons(tr, 3, 20, skip_first=skip)                 # §1's heatmap
    assert [int(i) for i in ns["top"].indices] == top.neurons.tolist()
    np.testing.assert_allclose(_np(ns["top"].values), top.score, rtol=1e-5)
    hist = mlp.activation_histogram(tr, 3, skip_first=skip)           # §4's histogram
    assert _np(ns["counts"]).tolist() == hist.counts.tolist()
    np.testing.assert_allclose(_np(ns["edges"]), hist.edges, atol=1e-9)
    np.testing.assert_allclose(_np(ns["activity"]), mlp.layer_activity(tr, skip_first=skip), atol=1e-5)


def test_snippet_mlp_token(bundled, tr):
    from explainer import mlp

    for layer, pos in ((5, 4), (bundled.n_layers - 1, tr.n_tokens - 1)):
        ns = run(snippets.mlp_token(bundled, tr, layer, pos), "mlp_token")
        tn = mlp.top_neurons_at(tr, layer, pos, n=10)                 # §2's bars
        assert [int(i) for i in ns["top"].indices] == tn.neurons.tolist()
        np.testing.assert_allclose(_np(ns["at"][ns["top"].indices]), tn.acts, atol=1e-4, rtol=1e-5)


def test_snippet_lens_grid(bundled, tr):
    long = ex.trace(bundled, EIFFEL + " France, and the Louvre is in the same city, near the river")
    assert long.n_tokens > 16
    for t, positions in ((tr, range(tr.n_tokens)), (tr, [2, 5, 7]), (long, range(3, 17)),   # a window: a range
                         (long, [*range(1, 12), 14])):                  # long but not one span: listed
        res = lens.logit_lens(bundled, t, k=1)                         # what the grid draws
        code = snippets.lens_grid(bundled, t, positions)
        assert ("positions = range(3, 17)" in code) == (positions == range(3, 17))
        ns = run(code, "lens_grid")
        assert (_np(ns["guess"]) == res.ids[:, list(positions), 0]).all()
        np.testing.assert_allclose(_np(ns["prob"]), res.probs[:, list(positions), 0], atol=1e-5)


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


def test_snippet_timeline(bundled):
    """Steps under different settings, greedy and sampled, with and without the filters and the penalty."""
    state = gen.start(bundled, EIFFEL)
    gen.advance(bundled, state, "top")
    gen.advance(bundled, state, "sample", gen.Settings(1.3, 20, 0.9, None, 1.2), seed=3)
    gen.advance(bundled, state, "top", gen.Settings(0.0, None, None, None, 1.5))
    gen.advance(bundled, state, "sample", gen.Settings(0.8, None, None, 0.05, None), seed=9)
    ns = run(snippets.timeline(bundled, EIFFEL, state.steps, keep=len(state.prompt_ids)), "timeline")
    np.testing.assert_allclose(ns["prob"], [s.prob for s in state.steps], atol=1e-6)
    np.testing.assert_allclose(ns["entropy"], [s.entropy for s in state.steps], atol=1e-5)


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


def test_snippet_neighbours(bundled):
    from explainer import vectors

    for word in ("king", "zzqxw"):
        wt, nb = vectors.neighbours(bundled, word, k=10)
        ns = run(snippets.neighbours(bundled, wt.word, 10), "neighbours")
        assert [int(i) for i in ns["best"].indices] == [n.id for n in nb]
        np.testing.assert_allclose(_np(ns["best"].values), [n.cosine for n in nb], atol=1e-5)


def test_snippet_similarity(bundled):
    from explainer import vectors, words

    wv = vectors.word_vectors(bundled, words.split_words("king, queen, man, woman, zzqxw, king"))
    sim = vectors.similarity(wv.vectors)
    ns = run(snippets.similarity(bundled, [w.word for w in wv.words]), "similarity")
    for name in ("dot", "cosine", "norms"):
        np.testing.assert_allclose(_np(ns[name]), getattr(sim, name), atol=1e-6, err_msg=name)


@pytest.mark.parametrize("align", [False, True], ids=["pca", "aligned"])
@pytest.mark.parametrize("k", [2, 3])
def test_snippet_word_map(bundled, align, k):
    from explainer import wordmaps

    wm = wordmaps.word_map(bundled, "man → woman, king → queen, boy → girl, uncle, aunt, zzqxw", k, align_arrows=align)
    shown = [w.word for w in wm.vectors.words]
    arrows = [(shown[i], shown[j]) for i, j in wm.arrows] if align else []
    ns = run(snippets.word_map(bundled, shown, k, arrows), "word_map")
    np.testing.assert_allclose(_np(ns["coords"]), wm.pca.coords, atol=1e-6)


def test_snippet_direction(bundled):
    from explainer import vectors, wordmaps, words

    pairs = words.parse_items("man → woman\nking → queen\nhe → she").pairs
    d = wordmaps.direction(bundled, pairs)
    wv = vectors.word_vectors(bundled, [*words.split_words("nurse, doctor, engineer"), *(w for p in pairs for w in p)])
    proj = wordmaps.project(d, wv.vectors, wv.words)
    ns = run(snippets.direction(bundled, [(a.word, b.word) for a, b in d.pairs], [w.word for w in wv.words]),
             "direction")
    np.testing.assert_allclose(_np(ns["position"]), proj.position, atol=1e-6)
    np.testing.assert_allclose(_np(ns["cosine"]), proj.cosine, atol=1e-6)


@pytest.mark.parametrize("centered", [False, True], ids=["plain", "centred"])
def test_snippet_in_context(bundled, centered):
    from explainer import residual

    sentences = ["I sat on the river bank.", "The bank raised its interest rates.", "She took money from the Bank."]
    ca = residual.in_context(bundled, [ex.trace(bundled, s) for s in sentences], "bank", centered=centered)
    ns = run(snippets.in_context(bundled, sentences, "bank", centered), "in_context")
    np.testing.assert_allclose(_np(ns["cosine"]), ca.cosine, atol=1e-5)
    np.testing.assert_allclose(_np(ns["coords"]), ca.coords, atol=1e-5)


@pytest.mark.parametrize("heads, neurons", [([(5, 1), (7, 2), (7, 4)], [(10, 7), (10, 99)]), ([(0, 0)], []),
                                            ([], [(29, 3)]), ([], [])])
def test_snippet_ablation__equals_the_page(tr, bundled, heads, neurons):
    from explainer import interventions as iv

    res = iv.ablate(bundled, tr, heads=heads, neurons=neurons)
    ns = run(snippets.ablation(bundled, tr, res.heads, res.neurons), "ablation")
    np.testing.assert_allclose(_np(ns["before"]), softmax(res.logits_before[-1]), atol=1e-5)
    np.testing.assert_allclose(_np(ns["after"]), softmax(res.logits_after[-1]), atol=1e-5)
    assert bool(heads or neurons) == bool(np.abs(_np(ns["after"]) - _np(ns["before"])).max() > 1e-6)


def test_snippet_attribution(bundled, tr):
    from explainer import interventions as iv

    for target in (None, int(tr.token_ids[1])):                      # the prediction, and another token
        attr = iv.attribution(bundled, tr, target)                    # what §3's heatmap draws
        ns = run(snippets.attribution(bundled, tr, target), "attribution")
        assert ns["target"] == attr.target_id
        assert abs(float(ns["logp"].detach()) - attr.logprob) < 1e-5
        np.testing.assert_allclose(_np(ns["heads"]), attr.heads, atol=1e-4 * float(np.abs(attr.heads).max()))
        np.testing.assert_allclose(_np(ns["neurons"]), attr.neurons, atol=1e-4 * float(np.abs(attr.neurons).max()))


def test_snippet_knockout(bundled):
    from explainer import heads
    from explainer import interventions as iv

    ko = iv.knockout_copying(bundled, heads.head_scores(bundled))     # the named experiment's numbers
    ns = run(snippets.knockout(bundled, ko.heads), "knockout")
    assert abs(ns["before"] - ko.copying) < 1e-6 and abs(ns["without"] - ko.without_induction) < 1e-6
    np.testing.assert_allclose(ns["random"], ko.without_random, atol=1e-6)


@pytest.mark.parametrize("side", ["left", "right"])
def test_snippet_batch(bundled, side):
    from explainer import generation

    prompts = ["The capital of France is", "Once upon a time", "1, 2, 3, 4,"]
    check = generation.compare_batch(bundled, prompts, side)          # the table the page shows
    ns = run(snippets.batch(bundled, check.batch), "batch")
    assert _np(ns["ids"]).tolist() == check.batch.ids.tolist() and _np(ns["mask"]).tolist() == check.batch.mask.tolist()
    assert [int(t) for t in ns["top"]] == [r.top_id for r in check.rows]
    np.testing.assert_allclose(_np(ns["probs"].max(-1).values), [r.prob for r in check.rows], atol=1e-5)
    assert [int(a.argmax()) for a in ns["alone"]] == [r.alone_id for r in check.rows]


# -- the Tiny LM lab: its own model, trained in the snippet exactly as the page trains it ------------------------

@pytest.fixture(scope="module")
def names():
    from explainer import makemore as mm

    return mm.load_data(3, seed=42)


def test_snippet_lab_lr(names):
    from explainer import makemore as mm

    sweep = mm.lr_finder(mm.MLPConfig(3, 2, 100), names, batch_size=32)
    ns = run(snippets.lab_lr(3, 2, 100, 32), "lab_lr")
    np.testing.assert_allclose(ns["losses"], sweep.losses[:sweep.n_run], rtol=1e-6)
    assert ns["suggested"] == pytest.approx(sweep.suggested, rel=1e-9)


def test_snippet_lab_train(names):
    """A Train press and a Train more press with other settings, as the page records them; then §4's names."""
    from explainer import makemore as mm

    model = mm.CharMLP(mm.MLPConfig(3, 2, 100), seed=4)
    hist = mm.train_to_end(model, names, steps=800, lr=0.1, batch_size=32, eval_every=200, seed=4)
    hist += mm.train_to_end(model, names, steps=300, lr=0.2, batch_size=64, eval_every=200, seed=4 + 800,
                            start_step=800)
    calls = [(800, 0.1, 32, 4), (300, 0.2, 64, 804)]
    ns = run(snippets.lab_train(3, 2, 100, 4, calls, 12, 0.8, 3, "em"), "lab_train")
    assert ns["train_loss"] == pytest.approx(hist[-1].train_loss, abs=1e-6)
    assert ns["dev_loss"] == pytest.approx(hist[-1].dev_loss, abs=1e-6)
    assert ns["names"] == mm.sample(model, 12, seed=3, temperature=0.8)
    np.testing.assert_allclose(_np(ns["next_char"]), mm.next_char_probs(model, "em"), atol=1e-7)


def test_snippet_lab_overfit(names):
    from explainer import makemore as mm

    res = mm.overfit_demo(names, n_names=40, n_hidden=200)
    ns = run(snippets.lab_overfit(3, 40, 200), "lab_overfit")
    assert ns["steps"] == res.steps.tolist()
    np.testing.assert_allclose(ns["train"], res.train, atol=1e-6)
    np.testing.assert_allclose(ns["dev"], res.dev, atol=1e-6)


def test_the_lab_shows_the_code_of_its_run():
    at = _page("pages/9_Tiny_LM_lab.py")
    run_ = at.session_state.lab_run
    shown = {c.value.strip() for c in at.code}
    cfg = run_["cfg"]
    want = snippets.lab_train(cfg.block_size, cfg.n_embd, cfg.n_hidden, run_["seed"], run_["calls"],
                              int(at.session_state.lab_n), float(at.session_state.lab_temp),
                              int(at.session_state.lab_sample_seed), at.session_state.lab_prefix)
    assert want.strip() in shown and len(run_["calls"]) == 1                      # the first model, trained on opening
    assert snippets.lab_lr(cfg.block_size, cfg.n_embd, cfg.n_hidden, 32).strip() in shown
    assert any("Xfew, Yfew" in c for c in shown)


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
    shown = {c.value.strip() for c in at.code}
    code = [c for c in shown if "looks most at" in c]
    assert code == [snippets.attention_head(bundled, tr, layer, head).strip()]
    from explainer.positions import positions

    assert snippets.head_roles(bundled).strip() in shown
    assert snippets.word_order(bundled, positions(bundled)).strip() in shown
    assert snippets.qk_steps(bundled, tr, layer, head).strip() in shown                # §3, for the head shown
    assert snippets.head_writes(bundled, tr, layer, head).strip() in shown             # §4
    np.testing.assert_allclose(_np(run(code[0], "page")["pattern"]), tr.attn[layer, head], atol=1e-5)
    button = at.get("download_button")              # the pattern's table, and the sidebar's Advanced expander
    assert sorted(b.label for b in button) == ["Download this pattern (CSV)", "Download this trace (.npz)"]


def test_the_mlp_page_shows_the_code_of_its_neuron_and_the_code_gives_its_numbers(bundled):
    at = _page("pages/3_MLP_neurons.py")
    layer, neuron = int(at.session_state.mlp_layer), int(at.session_state.mlp_neuron)
    tr = ex.trace(bundled, at.session_state._prompt, int(at.session_state.max_tokens))
    shown = {c.value.strip() for c in at.code}
    code = [c for c in shown if "acts = caught[\"post\"]" in c and repr(tr.text) in c]   # §3, on the prompt
    assert code == [snippets.mlp_neuron(bundled, tr, layer, neuron).strip()]
    n, skip, pos = int(at.session_state.mlp_n), bool(at.session_state.mlp_skip), int(at.session_state.mlp_pos)
    assert snippets.mlp_layer(bundled, tr, layer, n, skip).strip() in shown                # §1
    assert snippets.mlp_token(bundled, tr, layer, pos).strip() in shown                    # §2
    from explainer import content

    c_layer, c_neuron, _, example = content.CURATED_NEURON[bundled.name]                    # the neuron with a job
    curated = snippets.mlp_neuron(bundled, ex.trace(bundled, example), c_layer, c_neuron).strip()
    assert curated in shown and repr(example) in curated
    np.testing.assert_allclose(_np(run(code[0], "page")["acts"]), tr.mlp[layer, :, neuron], atol=1e-4, rtol=1e-5)


def test_the_word_vectors_page_shows_the_code_of_every_tab(bundled):
    """Every tab's expander, filled in with the tab's own words; the neighbours' code gives the page's ranking."""
    from explainer import vectors

    at = _page("pages/1_Embeddings.py")
    shown = [c.value for c in at.code]
    for needle in ("PCA(n_components=k", "cosine = dot / torch.outer", "position = 2 * (X - mid)",
                   "torch.einsum(\"ild,jld->lij\"", "cos[word_ids(word)]", "target = sum(vec(w)"):
        assert sum(needle in c for c in shown) == 1, needle
    word = str(at.session_state.emb_nb_word)
    code = next(c for c in shown if "cos[word_ids(word)]" in c)
    assert code.strip() == snippets.neighbours(bundled, word, 10).strip()
    _, nb = vectors.neighbours(bundled, word, k=10)
    assert [int(i) for i in run(code, "page")["best"].indices] == [n.id for n in nb]


@pytest.mark.parametrize("path,needle", [("pages/0_Model_map.py", "register_forward"),
                                         ("pages/8_Anatomy.py", "torch.device(\"meta\")"),
                                         ("pages/7_Interventions.py", "x.retain_grad()"),
                                         ("pages/6_Generate.py", "padding_side="),
                                         ("pages/4_Logit_lens.py", "output_hidden_states=True"),
                                         ("pages/5_Next_token.py", "TemperatureLogitsWarper(1.0)"),
                                         ("pages/6_Generate.py", "model.generate(")])
def test_the_other_pages_show_their_code(path, needle):
    at = _page(path)
    assert any(needle in c.value for c in at.code), path
