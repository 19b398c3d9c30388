"""Bytes and build time of every page's default figures, on the bundled model (issue 13 item 4).

    python benchmarks/figures.py [--tokens 16 128] [--repeats 5] [--pages attention mlp ...] [--each]

For each page, the figures that page draws with its default controls: the same engine calls and figure
builders the page makes (read from pages/*.py), with the engine's results computed first (the pages cache
them) and only the figures timed. Bytes are what Streamlit 1.67's st.plotly_chart sends:
`plotly.io.to_json(return_figure_from_figure_or_data(fig, True), validate=False)`, as UTF-8. Time is the
median over `repeats` of building every figure and serialising it that way (after one warm-up). Pages
that do not depend on the prompt (Word vectors, Anatomy, Next token's distribution) measure the same at
every length. `--each` also prints every figure.

`--against REV` also builds each page's figures with `explainer/figures/` as it was at git revision REV,
interleaved with today's run by run, and prints both and their ratio: on a shared machine the load drifts,
and interleaving lets it hit both sides alike.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bench import ROOT, text_of  # (also puts the repository on sys.path)

PAGES = ("attention", "mlp", "lens", "embeddings", "interventions", "next_token", "anatomy")


def sent_json(fig) -> str:
    """The JSON st.plotly_chart puts in the page's message (streamlit/elements/plotly_chart.py)."""
    import plotly.io
    import plotly.tools

    return plotly.io.to_json(plotly.tools.return_figure_from_figure_or_data(fig, validate_figure=True),
                             validate=False)


# -- each page's figures with its default controls: {chart key: thunk building the figure} ----------

def attention(lm, tr, shared):
    from explainer import heads
    from explainer.figures import attention as fa

    if "scores" not in shared:
        shared["scores"] = heads.head_scores(lm)
    scores = shared["scores"]
    if "demo" not in shared:
        from explainer.tokens import token_strings
        seq = heads.repeated_tokens(lm, n=16, batch=1, seed=1)
        shared["demo"] = (token_strings(lm.tokenizer, seq.ids[0]), heads.attention_for_ids(lm, seq.ids)[0],
                          seq.prefix, seq.period)
    demo_tokens, demo_attn, prefix, period = shared["demo"]
    layer, head = heads.looking_back_head(tr.attn)
    steps = heads.qk_steps(lm, tr, layer, head)
    best = heads.top_heads(scores["induction"], k=1)[0]
    marks = [(i, i - period + 1) for i in range(prefix + period, prefix + 2 * period)]
    figs = {
        "att_overview": lambda: fa.overview(tr.attn, tr.tokens, (layer, head), n_kv_heads=lm.n_kv_heads,
                                            scores=scores),
        "att_head_map": lambda: fa.head_heatmap(tr.attn[layer, head], tr.tokens, f"Layer {layer}, head {head}"),
        "att_gqa": lambda: fa.gqa_diagram(lm.n_heads, steps.n_kv_heads, head),
        "att_step_raw": lambda: fa.qk_step(steps.raw, tr.tokens, "raw"),
        "att_step_masked": lambda: fa.qk_step(steps.masked, tr.tokens, "masked"),
        "att_step_scaled": lambda: fa.qk_step(steps.scaled, tr.tokens, "scaled",
                                              f"2 · Scaled: × 1/√{steps.d_head} = {steps.scale:.4g}"),
        "att_step_pattern": lambda: fa.qk_step(steps.pattern, tr.tokens, "pattern"),
    }
    for role in heads.ROLES:
        figs[f"att_role_{role}"] = (lambda r=role: fa.role_map(scores[r], heads.ROLE_LABELS[r], (layer, head),
                                                               help_text=heads.ROLE_HELP[r].split(":")[0]))
    figs["att_induction_demo"] = lambda: fa.head_heatmap(
        demo_attn[best.layer, best.head], demo_tokens, f"Layer {best.layer}, head {best.head} on random tokens, "
        "repeated", highlight=marks)
    return figs


def mlp(lm, tr, shared):
    from explainer import mlp as m
    from explainer.figures import mlp as figs

    L, T, _ = tr.mlp.shape
    layer, skip = min(L - 1, L // 2), True
    ns = m.top_neurons(tr, layer, 20, skip_first=skip)
    tn = m.top_neurons_at(tr, layer, T - 1, n=10)
    hist = m.activation_histogram(tr, layer, skip_first=skip)
    activity = m.layer_activity(tr, skip_first=skip)
    return {
        "mlp_heat": lambda: figs.neurons_heatmap(tr.tokens, ns),
        "mlp_bar": lambda: figs.top_neurons_bar(tn, tr.tokens[T - 1]),
        "mlp_hist": lambda: figs.activation_histogram(hist),
        "mlp_layers": lambda: figs.layer_activity_heatmap(tr.tokens, activity, layer),
    }


def lens(lm, tr, shared):
    from explainer import lens as ln
    from explainer.figures import lens as figs
    from explainer.sampling import softmax, top_k

    T = tr.n_tokens
    res = ln.logit_lens(lm, tr, k=5)
    positions = range(T - 16, T) if T > 16 else range(T)
    top0 = int(top_k(softmax(tr.logits[T - 1]), 5)[0])
    tj = ln.token_trajectory(lm, tr, top0)
    return {
        "lens_grid": lambda: figs.lens_grid(res, tr.tokens, positions),
        "lens_traj": lambda: figs.trajectory(tj, tr.tokens, T - 1),
        "lens_norm": lambda: figs.residual_norms(res, tr.tokens, positions),
    }


def embeddings(lm, tr, shared):
    """Every tab's figures: st.tabs runs all of them on every page run. Independent of the prompt."""
    if "embeddings" in shared:
        return shared["embeddings"]
    import explainer as ex
    from explainer import embeddings as emb
    from explainer import glove
    from explainer.figures import embeddings as figs
    from explainer.figures.common import show_token

    preset = next(iter(emb.MAP_PRESETS))
    wm = emb.word_map(lm, emb.MAP_PRESETS[preset], 2, align_arrows=False)
    a, b, c = emb.ANALOGY_PRESETS[next(iter(emb.ANALOGY_PRESETS))][:3]
    res = emb.analogy(lm, [a, c], [b], k=10, exclude_inputs=True, exclude_variants=True)
    g = glove.load()
    ga = glove.analogy([a, c], [b], k=10, g=g)
    am = emb.analogy_map(lm, res, n_neighbours=5)
    wt, nb = emb.neighbours(lm, "Paris", k=10)
    gn = glove.neighbours("Paris", k=10, g=g)
    axis, words = emb.DIRECTION_PRESETS[next(iter(emb.DIRECTION_PRESETS))][:2]
    pairs = emb.parse_items(axis).pairs
    d = emb.direction(lm, pairs)
    axis_words = [w for p in pairs for w in p]
    wv = emb.word_vectors(lm, [*emb.split_words(words), *axis_words])
    proj = emb.project(d, wv.vectors, wv.words)
    sv = emb.word_vectors(lm, emb.split_words("king, queen, man, woman, cat, dog, zebra, banana, Paris, the, and"),
                          max_words=30)
    sim = emb.similarity(sv.vectors)
    word, sentences = emb.CONTEXT_PRESETS[next(iter(emb.CONTEXT_PRESETS))][:2]
    traces = [ex.trace(lm, " ".join(s.split())) for s in list(sentences)[:8]]
    ca = emb.in_context(lm, traces, word, centered=True)
    frm = ", ".join(x for x, _ in pairs[:2]) + ("…" if len(pairs) > 2 else "")
    to = ", ".join(y for _, y in pairs[:2]) + ("…" if len(pairs) > 2 else "")
    last = ca.n_points - 1
    shared["embeddings"] = {
        "emb_map_chart": lambda: figs.word_map(wm, "words"),
        "emb_an_bars": lambda: figs.neighbour_bars(res.neighbours, f"{lm.label}: input embeddings"),
        "emb_an_glove": lambda: figs.neighbour_bars(ga.neighbours, "GloVe", tokens=False, color="#54a24b"),
        "emb_an_map": lambda: figs.analogy_map(am, "The sum, drawn"),
        "emb_nb_bars": lambda: figs.neighbour_bars(nb, f"Model: nearest to {show_token(wt.token)}"),
        "emb_nb_glove": lambda: figs.neighbour_bars(gn, "GloVe: nearest words", tokens=False, color="#54a24b"),
        "emb_dir_chart": lambda: figs.direction_strip(proj, d.name, f"−1: {frm}", f"+1: {to}",
                                                      axis_words=frozenset(" ".join(w.split()) for w in axis_words)),
        "emb_sim_heat": lambda: figs.similarity_heatmaps(sv.labels, sim),
        "emb_sim_norms": lambda: figs.vector_lengths(sv.labels, sim.norms, "Vector lengths"),
        "emb_ctx_traj": lambda: figs.context_trajectories(ca, "through the blocks"),
        "emb_ctx_cos": lambda: figs.context_cosines(ca, "How alike the sentences' vectors stay"),
        "emb_ctx_matrix": lambda: figs.context_cosine_matrix(ca, last, "Cosine between the sentences"),
    }
    return shared["embeddings"]


def interventions(lm, tr, shared):
    from explainer import interventions as iv
    from explainer.figures import interventions as figs

    attr = iv.attribution(lm, tr)
    chosen = attr.top_heads(3)                                   # the page starts with the suggested heads
    res = iv.ablate(lm, tr, tuple(chosen), ())
    cmp = iv.compare(lm, res, k=8)
    return {
        "abl_before_after": lambda: figs.before_after(cmp, "3 heads and 0 neurons off"),
        "abl_changes": lambda: figs.probability_changes(cmp, "Change in probability"),
        "abl_attr": lambda: figs.attribution_heatmap(attr.heads, attr.target, chosen),
    }


def next_token(lm, tr, shared):
    from explainer.figures.sampling import distribution_chart, settings_text, survival_chart
    from explainer.sampling import probabilities
    from explainer.tokens import token_strings

    dist = probabilities(tr.next_token_logits(), 1.0, 10, 0.9)
    ids = [int(i) for i in dist.top(12)]
    strings = token_strings(lm.tokenizer, ids)
    return {
        "nt_dist": lambda: distribution_chart(dist, ids, strings, chosen=None,
                                              title=f"Probabilities · {settings_text(dist)}"),
        "nt_survive": lambda: survival_chart(dist, ids, strings),
    }


def anatomy(lm, tr, shared):
    from explainer import anatomy as an
    from explainer.figures import anatomy as figs

    pc = an.count_parameters(lm.config)
    loaded = f"▶ {lm.label}"
    rows = an.scale_table({loaded: lm.config})
    return {
        "anat_treemap": lambda: figs.param_treemap(pc, lm.label),
        "anat_shares": lambda: figs.scale_shares(rows, highlight=loaded),
    }


def measure(figs: dict, repeats: int) -> tuple[dict[str, int], dict[str, float], float]:
    """Bytes per chart, median ms per chart, median ms of the whole page's figures."""
    sizes = {k: len(sent_json(f()).encode("utf-8")) for k, f in figs.items()}   # also the warm-up
    per: dict[str, list[float]] = {k: [] for k in figs}
    totals = []
    for _ in range(repeats):
        total = 0.0
        for k, f in figs.items():
            t = time.perf_counter()
            sent_json(f())
            dt = time.perf_counter() - t
            per[k].append(dt)
            total += dt
        totals.append(total)
    return sizes, {k: statistics.median(v) * 1000 for k, v in per.items()}, statistics.median(totals) * 1000


def old_figures(rev: str):
    """explainer/figures/ as it was at git revision `rev`, imported as the package explainer._figures_<rev>."""
    files = subprocess.run(["git", "ls-tree", "--name-only", f"{rev}:explainer/figures"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    tmp = Path(tempfile.mkdtemp(prefix="figures_"))
    for f in files:
        if f.endswith(".py"):
            (tmp / f).write_bytes(subprocess.run(["git", "show", f"{rev}:explainer/figures/{f}"], cwd=ROOT,
                                                 check=True, capture_output=True).stdout)
    name = f"explainer._figures_{rev.replace('-', '_').replace('~', '_').replace('^', '_')}"
    spec = importlib.util.spec_from_file_location(name, tmp / "__init__.py", submodule_search_locations=[str(tmp)])
    pkg = importlib.util.module_from_spec(spec)
    sys.modules[name] = pkg
    spec.loader.exec_module(pkg)
    return pkg, [f[:-3] for f in files if f.endswith(".py") and f != "__init__.py"]


@contextlib.contextmanager
def figures_from(pkg, names):
    """While inside, `from explainer.figures import x` (and `explainer.figures.x`) give pkg's modules."""
    import explainer.figures as current

    saved = {n: (getattr(current, n, None), sys.modules.get(f"explainer.figures.{n}")) for n in names}
    try:
        for n in names:
            mod = importlib.import_module(f"{pkg.__name__}.{n}")
            setattr(current, n, mod)
            sys.modules[f"explainer.figures.{n}"] = mod
        yield
    finally:
        for n, (attr, mod) in saved.items():
            setattr(current, n, attr)
            sys.modules[f"explainer.figures.{n}"] = mod


def compare(new: dict, old: dict, repeats: int) -> tuple[int, int, float, float]:
    """Bytes (old, new) and median ms (old, new) of a page's figures, the two interleaved run by run."""
    b_old = sum(len(sent_json(f()).encode("utf-8")) for f in old.values())
    b_new = sum(len(sent_json(f()).encode("utf-8")) for f in new.values())
    t_old, t_new = [], []
    for _ in range(repeats):
        for figs, out in ((old, t_old), (new, t_new)):
            t = time.perf_counter()
            for f in figs.values():
                sent_json(f())
            out.append(time.perf_counter() - t)
    return b_old, b_new, statistics.median(t_old) * 1000, statistics.median(t_new) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, nargs="+", default=[16, 128])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--pages", nargs="+", default=list(PAGES), choices=PAGES)
    ap.add_argument("--each", action="store_true", help="print every figure too")
    ap.add_argument("--against", metavar="REV", help="also measure explainer/figures/ at this git revision")
    args = ap.parse_args()

    import torch

    import explainer as ex

    lm = ex.load_model("bundled", device="cpu")
    print(f"model: bundled {lm.label} · torch threads {torch.get_num_threads()} · median of {args.repeats}")
    print("bytes: the JSON st.plotly_chart sends; ms: build + that serialisation, all the page's figures")
    shared: dict = {}
    rows = []
    old = old_figures(args.against) if args.against else None
    for n in args.tokens:
        tr = ex.trace(lm, text_of(lm, n))
        for page in args.pages:
            figs = globals()[page](lm, tr, shared)
            if old:
                with figures_from(*old):
                    before = globals()[page](lm, tr, {k: v for k, v in shared.items() if k != "embeddings"})
                rows.append((page, n, *compare(figs, before, args.repeats)))
                continue
            sizes, per, total = measure(figs, args.repeats)
            rows.append((page, n, sum(sizes.values()), total))
            if args.each:
                for k in sizes:
                    print(f"    {page:<13} {n:>4} {k:<22} {sizes[k]:>11,} B {per[k]:>8.1f} ms")
    if old:
        print(f"interleaved with explainer/figures/ at {args.against}")
        print(f"{'page':<13} {'tokens':>6} {'bytes then':>11} {'bytes now':>11} {'ms then':>8} {'ms now':>8} "
              f"{'ratio':>6}")
        for page, n, b0, b1, t0, t1 in rows:
            print(f"{page:<13} {n:>6} {b0:>11,} {b1:>11,} {t0:>8.1f} {t1:>8.1f} {t1 / t0:>6.2f}")
        return
    print(f"{'page':<13} {'tokens':>6} {'figure bytes':>13} {'build ms':>9}")
    for page, n, b, ms in rows:
        print(f"{page:<13} {n:>6} {b:>13,} {ms:>9.1f}")


if __name__ == "__main__":
    main()
