"""Compare mode (explainer/compare.py and the `compare` link): the second prompt's side of every view equals its
own separate trace, the differences are the differences, the link carries the second prompt across pages, and
both traces are held in the memory budget's cache."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import explainer as ex
from explainer import budget, compare, lens
from explainer.model_map import part_values
from explainer.sampling import probabilities, softmax
from tests.conftest import chart, page_ok, plotly_array

HE, SHE = "The doctor said that he", "The doctor said that she"


# -- the engine --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, paired", [
    (HE, SHE), (SHE, HE), ("He said", "She said"), ("HIS hat and her coat", "HIS hat and his coat"),
    ("the king and the man", "the king and the woman"), ("Heather went home", "Heather went home"),
    ("", ""), ("Mr Smith", "Mrs Smith"),
])
def test_a_starting_second_prompt_swaps_the_last_gendered_word(text, paired):
    assert compare.pair_prompt(text) == paired


def test_the_change_is_over_both_top_lists_largest_first():
    logits_a = np.log(np.array([0.5, 0.3, 0.1, 0.05, 0.05]))
    logits_b = np.log(np.array([0.1, 0.3, 0.5, 0.05, 0.05]))
    a, b = probabilities(logits_a, 1.0, 0, 1.0), probabilities(logits_b, 1.0, 0, 1.0)
    ch = compare.next_token_change(a, b, k=2)              # top 2 of a: {0, 1}; of b: {2, 1}
    assert ch.ids.tolist() == [0, 2, 1]                    # |Δ| 0.4, 0.4 (ties by id), then 0
    np.testing.assert_allclose(ch.p_a, [0.5, 0.1, 0.3], atol=1e-6)
    np.testing.assert_allclose(ch.delta, [-0.4, 0.4, 0.0], atol=1e-6)
    with pytest.raises(ValueError, match="different vocabularies"):
        compare.next_token_change(a, probabilities(np.zeros(3), 1.0, 0, 1.0))


def test_attention_difference_lines_up_only_equal_lengths():
    a, b = np.tril(np.full((3, 3), 0.5)), np.tril(np.full((3, 3), 0.25))
    d = compare.attention_difference(a, b)
    assert np.isnan(d[0, 1]) and d[2, 0] == -0.25           # the future stays empty
    assert compare.attention_difference(a, np.eye(4)) is None
    assert [compare.aligned_position(p, 5, 7) for p in (0, 3, 4)] == [0, 3, 6]
    assert compare.aligned_position(5, 7, 4) == 3
    assert compare.largest_change(np.array([[0.0, np.nan], [0.1, -0.4]])) == (1, 1)     # either way
    assert compare.differing_positions(["a", "b", "c"], ["a", "x", "y"]) == [1, 2]


# -- the pages (AppTest): each side is its own trace ---------------------------------------------------------------

def _page(page: str, query: dict[str, str]) -> AppTest:
    at = AppTest.from_file(f"../pages/{page}.py", default_timeout=600)
    at.query_params.update(query)
    return at.run()


def _url(at) -> dict[str, str]:
    return {k: (v[-1] if isinstance(v, list) else v) for k, v in at.query_params.items()}


def test_the_switch_starts_a_second_prompt_and_the_link_carries_it(offline):
    at = AppTest.from_file("../streamlit_app.py", default_timeout=600)
    at.query_params["prompt"] = HE
    at.switch_page("pages/5_Next_token.py").run()
    page_ok(at)
    assert not any(el.proto.id.endswith("-nt_compare") for el in at.get("plotly_chart"))   # off: one prompt
    at.toggle(key="compare_on").set_value(True).run()
    page_ok(at)
    assert _url(at)["compare"] == SHE and at.text_area(key="compare_widget").value == SHE
    at.text_area(key="compare_widget").set_value("The nurse said that she").run()
    assert _url(at)["compare"] == "The nurse said that she"
    at.switch_page("pages/2_Attention.py").run()                   # it crosses pages with the link
    page_ok(at)
    assert at.text_area(key="compare_widget").value == "The nurse said that she"
    at.toggle(key="compare_on").set_value(False).run()
    assert "compare" not in _url(at)
    assert not any(el.proto.id.endswith("-att_compare_map") for el in at.get("plotly_chart"))


def test_next_token_side_by_side_equals_each_prompts_own_distribution(offline, bundled):
    at = _page("5_Next_token", {"prompt": HE, "compare": SHE, "temperature": "0.7", "top_k": "0"})
    page_ok(at)
    fig = chart(at, "nt_compare")
    names = [t["name"] for t in fig["data"]]
    assert names == ["“The doctor said that he”", "“The doctor said that she”"]
    a, b = (probabilities(ex.trace(bundled, t).next_token_logits(), 0.7, 0, float(at.slider(key="nt_top_p").value),
                          float(at.slider(key="nt_min_p").value), float(at.slider(key="nt_penalty").value),
                          ex.trace(bundled, t).token_ids) for t in (HE, SHE))
    want = compare.next_token_change(a, b, k=min(int(at.slider(key="nt_show").value), 12))
    np.testing.assert_allclose(plotly_array(fig["data"][0]["x"]), want.p_a[::-1], rtol=1e-6)
    np.testing.assert_allclose(plotly_array(fig["data"][1]["x"]), want.p_b[::-1], rtol=1e-6)
    i = 0
    said = next(m.value for m in at.markdown if "largest change" in m.value)
    assert f"{want.p_a[i]:.1%} → {want.p_b[i]:.1%} ({want.delta[i] * 100:+.1f} percentage points)" in said
    keys = budget.RESULTS.keys()
    assert any(k[0] == "trace" and k[2] == SHE for k in keys) and any(k[0] == "trace" and k[2] == HE for k in keys)


def test_attention_side_by_side_is_the_second_trace_and_the_difference(offline, bundled):
    at = _page("2_Attention", {"prompt": HE, "compare": SHE, "layer": "3", "head": "2"})
    page_ok(at)
    tr_a, tr_b = ex.trace(bundled, HE), ex.trace(bundled, SHE)
    z = plotly_array(chart(at, "att_compare_map")["data"][0]["z"])
    want = np.where(np.tril(np.ones_like(tr_b.attn[3, 2], dtype=bool)), tr_b.attn[3, 2], np.nan)
    np.testing.assert_allclose(z, want, atol=5e-3, equal_nan=True)     # rounded as a colour scale shows it
    d = plotly_array(chart(at, "att_compare_diff")["data"][0]["z"])
    np.testing.assert_allclose(d, compare.attention_difference(tr_a.attn[3, 2], tr_b.attn[3, 2]), atol=5e-3,
                               equal_nan=True)
    assert any("differ at position 4" in m.value for m in at.markdown)
    longer = _page("2_Attention", {"prompt": HE, "compare": "The doctor told me yesterday that she"})
    page_ok(longer)
    assert any("do not line up" in i.value for i in longer.info)


def test_lens_follows_the_token_after_both_prompts(offline, bundled):
    at = _page("4_Logit_lens", {"prompt": HE, "compare": SHE})
    page_ok(at)
    tr_a, tr_b = ex.trace(bundled, HE), ex.trace(bundled, SHE)
    token = int(np.argmax(softmax(tr_a.logits[-1])))
    fig = chart(at, "lens_compare")
    for trace, tr in zip(fig["data"], (tr_a, tr_b)):
        tj = lens.token_trajectory(bundled, tr, token, [tr.n_tokens - 1])
        np.testing.assert_allclose(plotly_array(trace["y"]), tj.probs[:, tr.n_tokens - 1], atol=1e-6)


def test_a_bad_second_prompt_is_a_message_and_the_first_still_shows(offline):
    at = _page("5_Next_token", {"prompt": HE, "compare": ""})
    page_ok(at)
    assert any(i.value.startswith("The second prompt:") for i in at.info)
    assert any(el.proto.id.endswith("-nt_dist") for el in at.get("plotly_chart"))


def test_the_map_shows_the_same_box_for_the_second_prompt(offline, bundled):
    at = _page("0_Model_map", {"prompt": HE, "compare": "The nurse said that she", "box": "add_mlp",
                               "open_block": "1", "layer": "4"})
    page_ok(at)
    tr_a, tr_b = ex.trace(bundled, HE), ex.trace(bundled, "The nurse said that she")
    mm = ex.model_map(bundled, tr_b)
    part = mm.get("blocks.4.add_mlp")
    want = part_values(bundled, tr_b, part, tr_b.n_tokens - 1)
    z = plotly_array(chart(at, "mm_compare")["data"][0]["z"])
    np.testing.assert_allclose(z.ravel(), want, rtol=1e-5, atol=1e-5)
    a = tr_a.resid[5, -1].astype(np.float64)          # blocks.4 add_mlp: the stream after block 4
    b = tr_b.resid[5, -1].astype(np.float64)
    cos = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    assert any(f"cosine similarity **{cos:.3f}**" in m.value for m in at.markdown)


MAP_LESSON = """
title = "Two prompts on the map"
summary = "The model map in compare mode, one section at a time."
level = "any"
minutes = 5
model = "bundled"
""" + "".join(f"""
[[steps]]
title = "The map, {section}"
view = "Model_map"
section = "{section}"
state = {{ prompt = "{HE}", compare = "{SHE}", box = "add_mlp", open_block = true, layer = 4 }}
narration = "The same box for two prompts."
""" for section in ("map", "part", "compare"))


@pytest.mark.parametrize("step", [1, 2, 3])
def test_the_maps_compare_section_in_a_presenter_view_of_any_one_section(offline, tmp_path, monkeypatch, step):
    """A step that shows only the map, only the part, or only the comparison: each draws without an exception
    (the comparison reads the part's values itself, whichever section is shown)."""
    (tmp_path / "map-compare.toml").write_text(MAP_LESSON, encoding="utf-8")
    monkeypatch.setenv("EXPLAINER_LESSONS", str(tmp_path))
    at = AppTest.from_file("../streamlit_app.py", default_timeout=600)
    at.query_params.update({"lesson": "map-compare", "step": str(step), "present": "1"})
    at.run()
    page_ok(at)
    shown = {el.proto.id.rsplit("-", 1)[-1] for el in at.get("plotly_chart")}
    assert "map_diagram" in shown                       # the map runs unseen when not shown: it holds the box control
    assert ({"mm_values", "mm_values_zoom"} <= shown) == (step == 2)          # the part: drawn only on its own step
    assert ({"mm_compare", "mm_compare_zoom"} <= shown) == (step == 3)        # the comparison: likewise, not run unseen


# -- one analogy in two vector spaces ---------------------------------------------------------------------------

def _rank_by_torch(weight, target, rows, excluded) -> tuple[int, float]:
    """A word's rank and cosine by brute force (torch's cosine_similarity over the whole matrix): its best row,
    counted against every row not left out."""
    import torch

    cos = torch.nn.functional.cosine_similarity(torch.as_tensor(np.asarray(weight, np.float64)),
                                                torch.as_tensor(np.asarray(target, np.float64))[None], dim=1)
    cos[list(excluded)] = -float("inf")
    best = max(float(cos[r]) for r in rows)
    return 1 + int((cos > best + 1e-6).sum()), best


def _check_placings(al, side_a, side_b, weights, targets, excluded):
    for w, pa, pb in zip(al.words, al.a, al.b):
        for p, side, weight, target, ex_ in zip((pa, pb), (side_a, side_b), weights, targets, excluded):
            rows = [r for r in side.rows(w) if r not in set(ex_)]
            if not rows:
                assert p.rank == 0 and np.isnan(p.cosine)
                continue
            rank, cos = _rank_by_torch(weight, target, rows, ex_)
            assert p.cosine == pytest.approx(cos, abs=1e-5)
            assert abs(p.rank - rank) <= 1          # float32 against float64: a near-tie may swap
    assert len(set(al.words)) == len(al.words)


def test_an_analogy_ranked_in_the_model_and_in_glove(bundled):
    from explainer import glove, vectors

    if not glove.available():
        pytest.fail("GloVe is installed by the set-up; it is needed here")
    res = vectors.analogy(bundled, ["king", "woman"], ["man"], k=10, exclude_variants=True)
    g = glove.load()
    ga = glove.analogy(["king", "woman"], ["man"], k=10, g=g)
    a, b = compare.lm_space(bundled, res), compare.glove_space(g, ga)
    al = compare.align_analogy(a, b, k=10)
    assert al.words[0] == "queen" and al.a[0].rank == 1 and al.b[0].rank == 1   # both answer queen
    assert "queen" in al.both(10)
    # every word of both top lists is there, and each side's own answers keep their ranks
    assert {compare.word_key(n.text) for n in res.neighbours} <= set(al.words)
    assert {n.text for n in ga.neighbours} <= set(al.words)
    for i, n in enumerate(ga.neighbours, 1):
        assert al.b[al.words.index(n.text)].rank == i
    best_a = {}
    for i, n in enumerate(res.neighbours, 1):
        best_a.setdefault(compare.word_key(n.text), i)
    for w, i in best_a.items():
        assert al.a[al.words.index(w)].rank == i
    mat = vectors.embedding_matrix(bundled)
    glove_ex = [g.index[w] for w in ("king", "woman", "man")]
    _check_placings(al, a, b, (mat.weight, g.vectors), (res.target, ga.target), (res.excluded, glove_ex))
    # ordered by the better of the two ranks
    best = [min(r for r in (pa.rank, pb.rank) if r) for pa, pb in zip(al.a, al.b)]
    assert best == sorted(best)


def test_an_analogy_ranked_in_two_models_with_different_vocabularies(bundled, tiny_gpt2):
    from explainer import vectors

    ra = vectors.analogy(bundled, ["Paris", "Italy"], ["France"], k=8)
    rb = vectors.analogy(tiny_gpt2, ["Paris", "Italy"], ["France"], k=8)
    a, b = compare.lm_space(bundled, ra), compare.lm_space(tiny_gpt2, rb)
    al = compare.align_analogy(a, b, k=8)
    assert al.label_a == bundled.label and al.label_b == tiny_gpt2.label
    weights = (vectors.embedding_matrix(bundled).weight, vectors.embedding_matrix(tiny_gpt2).weight)
    _check_placings(al, a, b, weights, (ra.target, rb.target), (ra.excluded, rb.excluded))
    assert compare.word_key(ra.neighbours[0].text) in al.words and al.a[al.words.index(
        compare.word_key(ra.neighbours[0].text))].rank == 1


def test_the_word_vectors_page_draws_the_analogy_in_both_spaces_and_survives_a_model_it_cannot_load(bundled):
    from explainer import glove, vectors

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        at = AppTest.from_file("../pages/1_Embeddings.py", default_timeout=300)
        at.query_params["tab"] = "analogies"
        at.run()
        page_ok(at)
        k = at.session_state.emb_an_k
        res = vectors.analogy(bundled, ["king", "woman"], ["man"], k=k, exclude_variants=True)
        g = glove.load()
        want = compare.align_analogy(compare.lm_space(bundled, res),
                                     compare.glove_space(g, glove.analogy(["king", "woman"], ["man"], k=k, g=g)), k)
        fig = chart(at, "emb_an_ranks")
        drawn = {d["name"]: ([c[0] for c in d["customdata"]], [int(x) for x in plotly_array(d["x"])])
                 for d in fig["data"] if d.get("name")}
        assert fig["layout"]["yaxis"]["ticktext"] == list(want.words)
        for label, placings in ((want.label_a, want.a), (want.label_b, want.b)):
            ws, xs = drawn[label]
            assert list(zip(ws, xs)) == [(w, p.rank) for w, p in zip(want.words, placings) if p.rank]
        # a Hub model this offline server cannot fetch: a message where its chart would be, the rest stays
        hub = next(o for o in at.selectbox(key="emb_an_vs").options if "needs a download" in o)
        at.selectbox(key="emb_an_vs").select(hub).run()
        assert not at.exception
        assert at.info and any("offline" in i.value.lower() or "could not" in i.value.lower() for i in at.info)
        assert chart(at, "emb_an_bars") and "emb_an_ranks" not in {c.key for c in at.get("plotly_chart")}
        assert at.session_state.emb_an_a == "king"
