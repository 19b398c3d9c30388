"""Every figure function's fonts meet the minimum, read from the built figure's own JSON (not its source).

test_palette.py reads the literal `size=` values in the source; this builds every public figure function
of explainer/figures from real engine outputs (the bundled model's trace of EIFFEL, as the pages call them)
and walks the whole figure, data, layout and frames:
- layout.font.size is set and at least MIN_FONT (common.style sets FONT_SIZE; without style a figure falls
  back to plotly's 12), so that text with no size of its own inherits a readable one;
- every font anywhere (any dict under a key that is `font` or ends in `font`: textfont, tickfont, legend.font,
  hoverlabel.font, colorbar.title.font, annotations' fonts, subplot titles …) whose size is a number or a list
  of numbers has every size at least MIN_FONT;
- a heatmap that writes numbers into its cells (texttemplate) sets textfont.size: plotly.js does not let those
  inherit layout.font but sizes them 'auto' to the cells, which can be tiny.
- text that plotly.js shrinks at draw time to fit a bar, a pie slice or a treemap box (SHRINKING traces with
  text) has a floor: layout.uniformtext.minsize at least MIN_FONT (style() sets it; text that does not fit
  at that size is hidden, and stays in the hover).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from functools import cached_property
from typing import Any

import numpy as np
import plotly.graph_objects as go
import pytest

import explainer as ex
from explainer import anatomy as an
from explainer import attention_out, content, defaults, figures, heads, lens, mlp, residual, vectors, wordmaps, words
from explainer import compare as cmp
from explainer import generation as gen
from explainer import interventions as iv
from explainer import makemore as mm
from explainer.figures import anatomy as f_anatomy
from explainer.figures import attention as fa
from explainer.figures import common
from explainer.figures import compare as f_cmp
from explainer.figures import embeddings as f_emb
from explainer.figures import interventions as f_iv
from explainer.figures import lens as f_lens
from explainer.figures import makemore as f_mm
from explainer.figures import mlp as f_mlp
from explainer.figures import model_map as fm
from explainer.figures import sampling as f_samp
from explainer.figures import tokens as f_tok
from explainer.figures.palette import GREEN
from explainer.model_map import part_values
from explainer.positions import Learned, Rotary, positions
from explainer.sampling import Settings, probabilities, softmax, top_k
from explainer.tokens import token_strings
from tests.conftest import EIFFEL, plotly_array
from tests.test_palette import MIN_FONT

Figures = go.Figure | dict[str, go.Figure]   # one figure, or named variants of one function's figure


# -- which functions ---------------------------------------------------------------------------------

_CHANGERS = (common.style, common.relayout, common.axes, common.preset_margins)


def figure_functions() -> dict[str, Callable]:
    """Every public function of explainer/figures/* that returns a go.Figure, by "module.name"
    (common.style, relayout, axes and preset_margins, which take a figure and change it, are left out)."""
    found = {}
    for info in pkgutil.iter_modules(figures.__path__):
        mod = importlib.import_module(f"{figures.__name__}.{info.name}")
        for name, f in vars(mod).items():
            if name.startswith("_") or not inspect.isfunction(f) or f.__module__ != mod.__name__ or f in _CHANGERS:
                continue
            if inspect.signature(f).return_annotation in ("go.Figure", go.Figure):
                found[f"{info.name}.{name}"] = f
    return found


# -- the check ---------------------------------------------------------------------------------------

def _sizes(size: Any) -> list[float] | None:
    """A font size as a list of numbers (one, or one per point), or None when it is no number."""
    if isinstance(size, dict) and "bdata" in size:       # numpy data as plotly packs it
        size = plotly_array(size)
    if isinstance(size, np.ndarray):
        size = size.ravel().tolist()
    if isinstance(size, (int, float)) and not isinstance(size, bool):
        return [float(size)]
    if isinstance(size, (list, tuple)) and all(isinstance(s, (int, float)) and not isinstance(s, bool)
                                               for s in size):
        return [float(s) for s in size]
    return None


def _font_sizes(obj: Any, path: str = ""):
    """(JSON path, size) for every font size anywhere in a figure's JSON (data, layout, frames)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            p = f"{path}.{k}" if path else k
            if isinstance(v, dict) and (k == "font" or k.endswith("font")) and "size" in v:
                yield f"{p}.size", v["size"]
            yield from _font_sizes(v, p)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _font_sizes(v, f"{path}[{i}]")


def _traces(fj: dict):
    """(JSON path, trace) for the figure's traces and its animation frames' traces."""
    for i, t in enumerate(fj.get("data", [])):
        yield f"data[{i}]", t
    for f, frame in enumerate(fj.get("frames", [])):
        for i, t in enumerate(frame.get("data", [])):
            yield f"frames[{f}].data[{i}]", t


SHRINKING = ("bar", "pie", "treemap", "sunburst", "icicle", "funnel", "funnelarea", "waterfall")


def small_fonts(fig: go.Figure) -> list[str]:
    """What breaks the minimum, each as 'JSON path = value' (empty: the figure is fine)."""
    fj = fig.to_plotly_json()
    bad = []
    base = fj.get("layout", {}).get("font", {}).get("size")
    if _sizes(base) is None or min(_sizes(base)) < MIN_FONT:
        bad.append(f"layout.font.size = {base!r} (unset: plotly's 12; style() sets {common.FONT_SIZE})")
    for path, size in _font_sizes(fj):
        if path == "layout.font.size":
            continue
        sizes = _sizes(size)
        if sizes is None:
            continue
        small = [(i, s) for i, s in enumerate(sizes) if s < MIN_FONT]
        if isinstance(size, (int, float)):
            bad += [f"{path} = {s:g}" for _, s in small]
        else:
            bad += [f"{path}[{i}] = {s:g}" for i, s in small]
    for path, t in _traces(fj):
        if t.get("type") in ("heatmap", "histogram2d") and t.get("texttemplate") \
                and _sizes(t.get("textfont", {}).get("size")) is None:
            bad.append(f"{path}.textfont.size unset with a texttemplate (plotly.js sizes heatmap text 'auto')")
    shrinks = [path for path, t in _traces(fj) if t.get("type") in SHRINKING and t.get("text") is not None]
    floor = fj.get("layout", {}).get("uniformtext", {})
    if shrinks and not (floor.get("minsize", 0) >= MIN_FONT and floor.get("mode") in ("hide", "show")):
        bad.append(f"layout.uniformtext = {floor!r} with text that plotly.js shrinks to fit ({shrinks[0]}): "
                   f"set minsize ≥ {MIN_FONT} (style() does)")
    return bad


# -- the inputs: real engine outputs, each computed once for the module -------------------------------

LAYER, HEAD = 3, 2
SIM_WORDS = defaults.EMBEDDINGS["sim_words"]   # the Embeddings page's


class Inputs:
    def __init__(self, request, bundled: ex.LoadedModel, tr: ex.Trace):
        self._request, self.lm, self.tr = request, bundled, tr

    @cached_property
    def tiny_gpt2(self) -> ex.LoadedModel:
        return self._request.getfixturevalue("tiny_gpt2")

    @cached_property
    def shown(self) -> tuple[int, int]:
        return heads.looking_back_head(self.tr.attn)

    @cached_property
    def scores(self) -> dict[str, np.ndarray]:
        return heads.head_scores(self.lm, n=20, batch=1)     # the page's n=40, batch=4 takes 4x as long

    @cached_property
    def head_outputs(self) -> attention_out.HeadOutputs:
        return attention_out.head_outputs(self.lm, self.tr, LAYER)

    @cached_property
    def lens(self) -> lens.LensResult:
        return lens.logit_lens(self.lm, self.tr, k=5)

    @cached_property
    def comparison(self) -> iv.Comparison:
        res = iv.ablate(self.lm, self.tr, heads=[(LAYER, HEAD), (5, 0)], neurons=[(10, 7)])
        return iv.compare(self.lm, res, k=8)

    @cached_property
    def similar(self) -> tuple[vectors.WordVectors, vectors.Similarity]:
        wv = vectors.word_vectors(self.lm, words.split_words(SIM_WORDS), max_words=30)
        return wv, vectors.similarity(wv.vectors)

    @cached_property
    def analogy(self) -> vectors.AnalogyResult:
        return vectors.analogy(self.lm, ["king", "woman"], ["man"], k=10, exclude_inputs=True, exclude_variants=True)

    @cached_property
    def in_context(self) -> residual.ContextAnalysis:
        word, sentences = content.CONTEXT_PRESETS["bank: river or money"]
        return residual.in_context(self.lm, [ex.trace(self.lm, s) for s in sentences], word, centered=True)

    @cached_property
    def model_map(self) -> ex.ModelMap:
        return ex.model_map(self.lm, self.tr)

    @cached_property
    def distribution(self):
        return probabilities(self.tr.next_token_logits(), 0.8, 20, 0.9, 0.05, 1.2, self.tr.token_ids)

    # the Tiny LM lab: a few hundred names and a few training steps (the figures only need the shapes)
    @cached_property
    def names(self) -> mm.Dataset:
        return mm.load_data(3, seed=42, n_names=300)

    @cached_property
    def trained(self) -> tuple[mm.CharMLP, list[mm.TrainProgress]]:
        model = mm.CharMLP(mm.MLPConfig(3, 2, 40), seed=0)
        return model, mm.train_to_end(model, self.names, steps=60, lr=0.1, batch_size=32, eval_every=20, seed=0)


BUILDERS: dict[str, Callable[[Inputs], Figures]] = {}


def builds(name: str):
    def register(f: Callable[[Inputs], Figures]) -> Callable[[Inputs], Figures]:
        assert name not in BUILDERS, name
        BUILDERS[name] = f
        return f
    return register


# anatomy (Anatomy page) ------------------------------------------------------------------------------

@builds("anatomy.param_treemap")
def _(i: Inputs) -> Figures:
    return {"bundled (tied, rotary)": f_anatomy.param_treemap(an.count_parameters(i.lm.config), i.lm.label),
            "tiny GPT-2 (positions)": f_anatomy.param_treemap(an.count_parameters(i.tiny_gpt2.config),
                                                              i.tiny_gpt2.label)}


@builds("anatomy.scale_shares")
def _(i: Inputs) -> Figures:
    return f_anatomy.scale_shares(an.scale_table({i.lm.label: i.lm.config}), highlight=i.lm.label)


# attention (Attention page) --------------------------------------------------------------------------

@builds("attention.token_matrix")
def _(i: Inputs) -> Figures:
    z = i.tr.attn[LAYER, HEAD]
    return {"weights": fa.token_matrix(z, i.tr.tokens, "pattern", row_sums=True, highlight=[(2, 1)]),
            "no values": fa.token_matrix(z, i.tr.tokens, show_values=False)}


@builds("attention.head_heatmap")
def _(i: Inputs) -> Figures:
    best = heads.top_heads(i.scores["induction"], k=1)[0]
    demo = heads.induction_demo(i.lm)
    return {"prompt": fa.head_heatmap(i.tr.attn[LAYER, HEAD], i.tr.tokens, f"Layer {LAYER}, head {HEAD}"),
            "induction demo": fa.head_heatmap(demo.attn[best.layer, best.head], demo.tokens, "induction",
                                              highlight=list(demo.cells))}


@builds("attention.qk_step")
def _(i: Inputs) -> Figures:
    steps = heads.qk_steps(i.lm, i.tr, LAYER, HEAD)
    return {s: fa.qk_step(getattr(steps, s), i.tr.tokens, s) for s in ("raw", "scaled", "masked", "pattern")}


@builds("attention.overview")
def _(i: Inputs) -> Figures:
    return fa.overview(i.tr.attn, i.tr.tokens, i.shown, n_kv_heads=i.lm.n_kv_heads, scores=i.scores)


@builds("attention.head_zoom")
def _(i: Inputs) -> Figures:
    T = i.tr.n_tokens
    return fa.head_zoom(i.tr.attn[LAYER, HEAD], i.tr.tokens, 2, T - 1, f"Zoomed in: positions 2 to {T - 1}")


@builds("attention.layer_tiles")
def _(i: Inputs) -> Figures:
    return fa.layer_tiles(i.tr.attn, i.tr.tokens, i.shown[0], i.shown[1], n_kv_heads=i.lm.n_kv_heads,
                          scores=i.scores)


@builds("attention.gqa_diagram")
def _(i: Inputs) -> Figures:
    return fa.gqa_diagram(i.lm.n_heads, i.lm.n_kv_heads, HEAD)


@builds("attention.role_map")
def _(i: Inputs) -> Figures:
    return {role: fa.role_map(i.scores[role], heads.ROLE_LABELS[role], i.shown,
                              help_text=heads.ROLE_HELP[role].split(":")[0]) for role in heads.ROLES}


@builds("attention.vector_rows")
def _(i: Inputs) -> Figures:
    ho = i.head_outputs
    v, z = ho.value(HEAD), ho.z[HEAD]
    lim = float(abs(v).max())
    return {"values": fa.vector_rows(v, i.tr.tokens, "V", lim=lim), "z": fa.vector_rows(z, i.tr.tokens, "z", lim=lim)}


@builds("attention.head_parts")
def _(i: Inputs) -> Figures:
    return fa.head_parts(i.head_outputs.part_norms(-1), HEAD, f"What each head of layer {LAYER} writes")


@builds("attention.rotary_speeds")
def _(i: Inputs) -> Figures:
    pos = positions(i.lm)
    assert isinstance(pos, Rotary)
    return fa.rotary_speeds(pos.degrees_per_token, [pos.pair(k) for k in range(pos.n_pairs)],
                            "How fast each pair turns")


@builds("attention.rotary_distance")
def _(i: Inputs) -> Figures:
    pos = positions(i.lm)
    return fa.rotary_distance(pos.distances, pos.similarity, "The same vector as query and key")


@builds("attention.position_similarity")
def _(i: Inputs) -> Figures:
    pos = positions(i.tiny_gpt2)                          # GPT-2 family: learned position vectors
    assert isinstance(pos, Learned)
    return fa.position_similarity(pos.similarity, f"How alike the first {pos.shown} position vectors are")


# embeddings (Word vectors page) ----------------------------------------------------------------------

@builds("embeddings.word_map")
def _(i: Inputs) -> Figures:
    text = content.MAP_PRESETS["Royalty & gender"]
    return {"2-D": f_emb.word_map(wordmaps.word_map(i.lm, text, 2), "2-D"),
            "3-D": f_emb.word_map(wordmaps.word_map(i.lm, text, 3), "3-D"),
            "aligned": f_emb.word_map(wordmaps.word_map(i.lm, text, 2, align_arrows=True), "aligned")}


@builds("embeddings.analogy_map")
def _(i: Inputs) -> Figures:
    return f_emb.analogy_map(wordmaps.analogy_map(i.lm, i.analogy, n_neighbours=5), "The sum, drawn")


@builds("embeddings.neighbour_bars")
def _(i: Inputs) -> Figures:
    wt, nb = vectors.neighbours(i.lm, "Paris", k=10)
    return {"analogy": f_emb.neighbour_bars(i.analogy.neighbours, f"{i.lm.label}: input embeddings"),
            "neighbours": f_emb.neighbour_bars(nb, "Model: nearest"),
            "words (as GloVe's)": f_emb.neighbour_bars(nb, "nearest words", tokens=False, color=GREEN)}


@builds("embeddings.direction_strip")
def _(i: Inputs) -> Figures:
    axis_text, placed = content.DIRECTION_PRESETS["woman − man"]
    pairs = words.parse_items(axis_text).pairs
    d = wordmaps.direction(i.lm, pairs)
    axis_words = [w for p in pairs for w in p]
    wv = vectors.word_vectors(i.lm, [*words.split_words(placed), *axis_words])
    proj = wordmaps.project(d, wv.vectors, wv.words)
    return f_emb.direction_strip(proj, d.name, "−1: man, boy…", "+1: woman, girl…",
                                 axis_words=frozenset(" ".join(w.split()) for w in axis_words))


@builds("embeddings.similarity_heatmaps")
def _(i: Inputs) -> Figures:
    wv, sim = i.similar
    return f_emb.similarity_heatmaps(wv.labels, sim)


@builds("embeddings.vector_lengths")
def _(i: Inputs) -> Figures:
    wv, sim = i.similar
    return f_emb.vector_lengths(wv.labels, sim.norms, "Vector lengths")


@builds("embeddings.context_trajectories")
def _(i: Inputs) -> Figures:
    return f_emb.context_trajectories(i.in_context, "“bank” through the blocks")


@builds("embeddings.context_cosines")
def _(i: Inputs) -> Figures:
    return f_emb.context_cosines(i.in_context, "How alike the sentences' vectors stay")


@builds("embeddings.context_cosine_matrix")
def _(i: Inputs) -> Figures:
    last = i.in_context.n_points - 1
    return f_emb.context_cosine_matrix(i.in_context, last, "Cosine between the sentences")


# interventions (Interventions page) ------------------------------------------------------------------

@builds("interventions.before_after")
def _(i: Inputs) -> Figures:
    return f_iv.before_after(i.comparison, "2 heads and 1 neuron off")


@builds("interventions.probability_changes")
def _(i: Inputs) -> Figures:
    return f_iv.probability_changes(i.comparison, "Change in probability")


@builds("interventions.attribution_heatmap")
def _(i: Inputs) -> Figures:
    attr = iv.attribution(i.lm, i.tr)
    return f_iv.attribution_heatmap(attr.heads, attr.target, attr.top_heads(3))


# lens (Logit lens page) ------------------------------------------------------------------------------

@builds("lens.lens_grid")
def _(i: Inputs) -> Figures:
    return f_lens.lens_grid(i.lens, i.tr.tokens, range(i.tr.n_tokens))


@builds("lens.residual_norms")
def _(i: Inputs) -> Figures:
    return f_lens.residual_norms(i.lens, i.tr.tokens, range(i.tr.n_tokens))


@builds("lens.trajectory")
def _(i: Inputs) -> Figures:
    pos = i.tr.n_tokens - 1
    token_id = int(top_k(softmax(i.tr.logits[pos]), 1)[0])
    return f_lens.trajectory(lens.token_trajectory(i.lm, i.tr, token_id), i.tr.tokens, pos)


# compare mode (Next token, Attention, Logit lens) ------------------------------------------------------------

SECOND_PROMPT = "The Eiffel Tower is in the town of"      # the same number of tokens as EIFFEL


@builds("compare.probability_change")
def _(i: Inputs) -> Figures:
    tr_b = ex.trace(i.lm, SECOND_PROMPT)
    a, b = (probabilities(t.next_token_logits(), 1.0, 0, 1.0) for t in (i.tr, tr_b))
    ch = cmp.next_token_change(a, b, 8)
    return f_cmp.probability_change(ch, token_strings(i.lm.tokenizer, [int(x) for x in ch.ids]),
                                    f_cmp.prompt_label(i.tr.text), f_cmp.prompt_label(SECOND_PROMPT), "Next token")


@builds("compare.attention_change")
def _(i: Inputs) -> Figures:
    tr_b = ex.trace(i.lm, SECOND_PROMPT)
    diff = cmp.attention_difference(i.tr.attn[LAYER, HEAD], tr_b.attn[LAYER, HEAD])
    assert diff is not None
    return f_cmp.attention_change(diff, tr_b.tokens, "Change")


@builds("compare.trajectories")
def _(i: Inputs) -> Figures:
    tr_b = ex.trace(i.lm, SECOND_PROMPT)
    token_id = int(top_k(softmax(i.tr.logits[-1]), 1)[0])
    a, b = (lens.token_trajectory(i.lm, t, token_id, [t.n_tokens - 1]) for t in (i.tr, tr_b))
    return f_cmp.trajectories(a, i.tr.n_tokens - 1, b, tr_b.n_tokens - 1, "A", "B", "Through the layers")


@builds("compare.analogy_ranks")
def _(i: Inputs) -> Figures:
    from explainer import glove

    g = glove.load()
    ga = glove.analogy(["king", "woman"], ["man"], k=10, g=g)
    al = cmp.align_analogy(cmp.lm_space(i.lm, i.analogy), cmp.glove_space(g, ga), 10)
    return f_cmp.analogy_ranks(al, "Side by side")


# makemore (Tiny LM lab page) -------------------------------------------------------------------------

@builds("makemore.lr_sweep")
def _(i: Inputs) -> Figures:
    return f_mm.lr_sweep(mm.lr_finder(mm.MLPConfig(3, 2, 40), i.names, steps=120, batch_size=32))


@builds("makemore.loss_curves")
def _(i: Inputs) -> Figures:
    _, hist = i.trained
    return f_mm.loss_curves(hist, 100)


@builds("makemore.embedding_scatter")
def _(i: Inputs) -> Figures:
    _, hist = i.trained
    p = hist[-1]
    xy, _ = mm.embedding_2d(p.embedding)
    return f_mm.embedding_scatter(xy, p.step, False, mm.vowel_spread(p.embedding))


@builds("makemore.embedding_animation")
def _(i: Inputs) -> Figures:
    _, hist = i.trained
    snaps = [h.embedding for h in hist]
    _, basis = mm.embedding_2d(snaps[-1])
    keep = mm.frames(len(hist))
    return f_mm.embedding_animation([mm.embedding_2d(snaps[k], basis)[0] for k in keep], [hist[k].step for k in keep])


@builds("makemore.next_char_bars")
def _(i: Inputs) -> Figures:
    model, _ = i.trained
    return f_mm.next_char_bars(mm.next_char_probs(model, "em"), "em")


@builds("makemore.overfit_curves")
def _(i: Inputs) -> Figures:
    return f_mm.overfit_curves(mm.overfit_demo(i.names, n_names=20, n_hidden=60, steps=40, eval_every=10))


# mlp (MLP neurons page) ------------------------------------------------------------------------------

@builds("mlp.neurons_heatmap")
def _(i: Inputs) -> Figures:
    return f_mlp.neurons_heatmap(i.tr.tokens, mlp.top_neurons(i.tr, LAYER, 20, skip_first=True))


@builds("mlp.top_neurons_bar")
def _(i: Inputs) -> Figures:
    pos = i.tr.n_tokens - 1
    return f_mlp.top_neurons_bar(mlp.top_neurons_at(i.tr, LAYER, pos, n=10), i.tr.tokens[pos])


@builds("mlp.activation_histogram")
def _(i: Inputs) -> Figures:
    return f_mlp.activation_histogram(mlp.activation_histogram(i.tr, LAYER, skip_first=True))


@builds("mlp.layer_activity_heatmap")
def _(i: Inputs) -> Figures:
    return f_mlp.layer_activity_heatmap(i.tr.tokens, mlp.layer_activity(i.tr, skip_first=True), LAYER)


# model_map (Model map page) --------------------------------------------------------------------------

@builds("model_map.diagram")
def _(i: Inputs) -> Figures:
    tiny = i.tiny_gpt2
    return {"closed": fm.diagram(i.model_map, None, "embed"),
            "block open": fm.diagram(i.model_map, LAYER, "attn.q"),
            "tiny GPT-2, block open": fm.diagram(ex.model_map(tiny, ex.trace(tiny, EIFFEL)), 0, fm.BLOCK_BOX)}


@builds("model_map.vector_strip")
def _(i: Inputs) -> Figures:
    pos = i.tr.n_tokens - 1
    emb = part_values(i.lm, i.tr, i.model_map.get("embed"), pos)
    q = part_values(i.lm, i.tr, i.model_map.get(f"blocks.{LAYER}.attn.q"), pos)
    return {"vector": fm.vector_strip(emb, f"{emb.shape[0]:,} numbers"),
            "heads": fm.vector_strip(q, f"{q.shape[0]} heads × {q.shape[1]} numbers")}


@builds("model_map.vector_zoom")
def _(i: Inputs) -> Figures:
    emb = part_values(i.lm, i.tr, i.model_map.get("embed"), i.tr.n_tokens - 1)
    return fm.vector_zoom(emb, 24, "Zoomed in: its 24 largest numbers by size")


@builds("model_map.attention_row")
def _(i: Inputs) -> Figures:
    pos = i.tr.n_tokens - 1
    w = part_values(i.lm, i.tr, i.model_map.get(f"blocks.{LAYER}.attn.pattern"), pos)
    return fm.attention_row(w, i.tr.tokens, pos, "How much the last token looks at each earlier token")


# sampling (Next token and Generate pages) ------------------------------------------------------------

@builds("sampling.distribution_chart")
def _(i: Inputs) -> Figures:
    dist = i.distribution
    ids = [int(t) for t in dist.top(15)]
    return f_samp.distribution_chart(dist, ids, token_strings(i.lm.tokenizer, ids), chosen=ids[0],
                                     title=f"Probabilities · {f_samp.settings_text(dist)}")


@builds("sampling.survival_chart")
def _(i: Inputs) -> Figures:
    dist = i.distribution
    ids = [int(t) for t in dist.top(15)]
    return f_samp.survival_chart(dist, ids, token_strings(i.lm.tokenizer, ids))


@builds("sampling.timeline_chart")
def _(i: Inputs) -> Figures:
    state = gen.start(i.lm, EIFFEL, logits=i.tr.next_token_logits())
    gen.advance(i.lm, state, "top")
    gen.advance(i.lm, state, "sample", Settings(1.2, 20, 0.9), seed=3)
    gen.advance(i.lm, state, "top")
    alts = sorted({int(a) for s in state.steps for a in s.dist.top(4)})
    names = dict(zip(alts, token_strings(i.lm.tokenizer, alts)))
    return {"steps": f_samp.timeline_chart(state.steps, current=1, names=names),
            "no steps yet": f_samp.timeline_chart([])}


@builds("sampling.padding_chart")
def _(i: Inputs) -> Figures:
    check = gen.compare_batch(i.lm, ["The Eiffel Tower is in", "Hello"], "left")
    return f_samp.padding_chart(check.batch)


# tokens (home page) ----------------------------------------------------------------------------------

@builds("tokens.top_next_tokens")
def _(i: Inputs) -> Figures:
    logits = i.tr.next_token_logits()
    probs = softmax(logits)
    top = top_k(probs, 10)
    return f_tok.top_next_tokens(list(token_strings(i.lm.tokenizer, top)), [int(t) for t in top], probs[top],
                                 logits[top])


# -- the tests -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def inputs(request, bundled, tr) -> Inputs:
    return Inputs(request, bundled, tr)


def test_every_figure_function_has_a_builder():
    found = figure_functions()
    assert len(found) >= 40, sorted(found)         # the discovery itself works
    assert set(BUILDERS) == set(found), {"no builder": sorted(set(found) - set(BUILDERS)),
                                         "no such function": sorted(set(BUILDERS) - set(found))}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_figure_fonts_meet_the_minimum(name, inputs):
    built = BUILDERS[name](inputs)
    variants = built if isinstance(built, dict) else {"": built}
    bad = []
    for variant, fig in variants.items():
        assert isinstance(fig, go.Figure), (name, variant, type(fig))
        where = f"{name}" + (f" [{variant}]" if variant else "")
        bad += [f"{where}: {b}" for b in small_fonts(fig)]
    assert not bad, f"fonts under {MIN_FONT} px in {name}:\n" + "\n".join(bad)


def test_the_check_can_fail():
    ok = common.style(go.Figure(go.Bar(x=[1, 2], y=[3, 4], text=["a", "b"])), "fine")
    assert small_fonts(ok) == []
    assert small_fonts(common.style(go.Figure(go.Heatmap(z=[[1]], textfont=dict(size=12))))) == \
        ["data[0].textfont.size = 12"]
    unstyled = small_fonts(go.Figure(go.Bar(x=[1], y=[2])))
    assert len(unstyled) == 1 and unstyled[0].startswith("layout.font.size = None")
    shrunk = common.style(go.Figure(go.Bar(x=[1], y=[2], text=["a"]))).update_layout(uniformtext_minsize=8)
    assert len(small_fonts(shrunk)) == 1 and small_fonts(shrunk)[0].startswith("layout.uniformtext")
    tick = common.style(go.Figure(go.Bar(x=[1], y=[2])))
    tick.update_yaxes(tickfont=dict(size=10), title=dict(text="y", font=dict(size=13)))
    assert sorted(small_fonts(tick)) == ["layout.yaxis.tickfont.size = 10", "layout.yaxis.title.font.size = 13"]
    per_point = common.style(go.Figure(go.Scatter(x=[1, 2], y=[1, 2], mode="text", text=["a", "b"],
                                                  textfont=dict(size=[16, 12]))))
    assert small_fonts(per_point) == ["data[0].textfont.size[1] = 12"]
    auto = common.style(go.Figure(go.Heatmap(z=[[1]], text=[["1"]], texttemplate="%{text}")))
    assert [b.split(" ")[0] for b in small_fonts(auto)] == ["data[0].textfont.size"]
    framed = common.style(go.Figure(go.Scatter(x=[1], y=[1]),
                                    frames=[go.Frame(data=[go.Scatter(x=[1], y=[1], textfont=dict(size=9))])]))
    assert small_fonts(framed) == ["frames[0].data[0].textfont.size = 9"]
    noted = common.style(go.Figure())
    noted.add_annotation(text="small", font=dict(size=11))
    assert small_fonts(noted) == ["layout.annotations[0].font.size = 11"]
