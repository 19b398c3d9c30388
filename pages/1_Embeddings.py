"""Word vectors: the input embedding matrix as a space where directions mean something, and how a
word's vector soaks up its context layer by layer."""

from __future__ import annotations

import html
import re

import streamlit as st

from explainer import compare, content, defaults, exports, glove, residual, snippets, ui, vectors, wordmaps, words
from explainer.errors import ExplainerError
from explainer.figures import compare as cfigs
from explainer.figures import embeddings as figs
from explainer.figures.common import show_token
from explainer.figures.palette import GREEN

lm = ui.page(
    "Word vectors",
    "A model cannot compute with letters, so it turns every token into numbers first. Each token is one row "
    "of the " + ui.term("embedding matrix") + ": its vector. Words used alike get vectors pointing alike, and "
    "directions carry meaning: king − man + woman lands next to queen, once the three words themselves are "
    "ruled out.",
    icon="🧭",
)
if lm is None:
    st.error("No model is loaded. Pick the bundled model in the sidebar; it works offline.")
    st.stop()

ss = st.session_state
D = defaults.EMBEDDINGS   # the page's defaults; the link overrides them
GLOVE = "glove"           # the analogy's second space, as the link names it (`an_vs`); else a model's name


def _preset(name: str, label: str, presets: dict, depends: tuple[str, ...]) -> str:
    """A preset picker: choosing a preset drops the words it fills in from the link, so they follow it."""
    return ui.select(name, label, list(presets), next(iter(presets)), key=f"emb_{name}", resets=depends)


def _token_used(w: words.WordToken) -> str:
    toks = " + ".join(f"`{show_token(p)}` ({i})" for p, i in zip(w.pieces, w.ids))
    return f"{w.word} → {toks}"


def _show_word_problems(notes, skipped) -> None:
    for n in notes:
        st.caption(f"ⓘ {n}")
    if skipped:
        st.warning("Left out: " + " · ".join(f"**{w}**: {why}" for w, why in skipped))


if ui.reading_only():    # the presenter view: the narration says what a step needs of it
    st.info(vectors.matrix_note(lm) + " A typed word is looked up as the token it becomes mid-sentence, with its "
            "leading space (␣king); a word split into several tokens gets the mean of its pieces, marked *.")

tabs = ui.tabs({"map": "Word map", "analogies": "Analogies", "directions": "Directions",
                "similarity": "Dot vs cosine", "context": "In context"})


# -- 1. PCA map ------------------------------------------------------------------------------------

@ui.section("map")
@ui.fragment
def map_tab() -> None:
    left, right = st.columns([1, 3] if ui.reading_only() else [1, 2], gap="large")
    with left:
        preset = _preset("map_preset", "Word set", content.MAP_PRESETS, ("map_words",))
        ui.text("map_words", "Words — `a → b` draws an arrow", content.MAP_PRESETS[preset], area=True,
                key="emb_map_words", height=250,
                     help="Separate words with commas or new lines. `man → woman` (or `man -> woman`) draws "
                          "an arrow; `one → two → three` a chain.")
        ui.select("map_dims", "View", ["2-D", "3-D"], D["map_dims"], widget="radio", key="emb_map_dims",
                  horizontal=True)
        ui.flag("map_align", "Align to arrows", D["map_align"], widget="checkbox", key="emb_map_align",
                    help="Instead of plain PCA: put the average of the arrows (e.g. man → woman, king → queen) "
                         "on the first axis, and the principal components of what is left on the others.")
        if ui.reading_only():
            st.markdown(f"Each word's vector has {lm.d_model} numbers. " + ui.term("PCA") + " picks the 2 or 3 "
                        "directions along which these words differ most and draws them as the axes; the % says "
                        "how much of the spread each axis shows.")
    with right:
        try:
            wm = wordmaps.word_map(lm, ss.emb_map_words, 3 if ss.emb_map_dims == "3-D" else 2,
                              align_arrows=bool(ss.emb_map_align))
        except ExplainerError as e:
            st.info(str(e))
            return
        what = "the average arrow and principal components" if wm.pca.names else "their first principal components"
        ui.chart(figs.word_map(wm, f"{len(wm.vectors.words)} words on {what}"), key="emb_map_chart")
        shown = [w.word for w in wm.vectors.words]
        arrows = [(shown[i], shown[j]) for i, j in wm.arrows] if wm.pca.names else []
        map_code = snippets.word_map(lm, shown, wm.pca.n_components, arrows)
        align, base = wordmaps.arrow_alignment(wm), wordmaps.random_pairs_alignment(wm)
        if align is not None and base is not None:
            mean, spread = base
            verdict = ("well above that: the arrows share a direction, and it is not an effect of the 2-D "
                       "projection" if align > mean + 3 * spread else
                       "not clearly above that: these arrows do not share one direction")
            st.markdown(f"**Do the arrows really point the same way?** In the full {lm.d_model}-number space "
                        f"the average cosine between the arrows is **{align:.2f}** (1 = all parallel). The same "
                        f"number of arrows between random pairs of these words gives {mean:.2f} ± {spread:.2f} "
                        f"(200 draws), so this is {verdict}.")
        _show_word_problems(wm.vectors.notes, wm.vectors.skipped)
        ui.code_expander(f"These {len(shown)} words' vectors on {what}.", map_code)


with tabs[0]:
    map_tab()


# -- 2. analogies --------------------------------------------------------------------------------

def _vs_label(name: str) -> str:
    return glove.LABEL + " (static word vectors)" if name == GLOVE else ui.model_label(name)


def _second_space(a: str, b: str, c: str) -> compare.Space | None:
    """The same sum in a second vector space, picked beside the first (GloVe, or another model this server
    offers): its answers drawn, and the space returned for the side-by-side ranks (None: it could not be used)."""
    names = [GLOVE, *(m for m in ui.allowed_models().choices if m != lm.name)]
    vs = ui.select("an_vs", "Compare with", names, D["an_vs"], key="emb_an_vs", format_func=_vs_label,
                   help="The same sum in a second set of vectors: GloVe's static word vectors, or another model's "
                        "input embeddings (loaded beside this one, once).")
    k = int(ss.emb_an_k)
    try:
        if vs == GLOVE:
            g = ui.glove_vectors()
            ga = glove.analogy([a, c], [b], k=k, g=g)
            side = compare.glove_space(g, ga)
            answers, title, key = ga.neighbours, f"{glove.LABEL}: the same sum", "emb_an_glove"
            caption = ("GloVe (2014) fits its vectors to global co-occurrence counts (how often two words appear "
                       "near each other in a large corpus): one fixed vector per lower-case word. The language "
                       "model's input vectors come from training to predict the next token.")
        else:
            with st.spinner(f"Loading {ui.model_label(vs)} (once)…"):
                lm2 = ui.get_model(vs)
            r2 = vectors.analogy(lm2, [a, c], [b], k=k, exclude_inputs=True,
                                 exclude_variants=bool(ss.emb_an_variants))
            side = compare.lm_space(lm2, r2)
            answers, title, key = r2.neighbours, f"{lm2.label}: input embeddings", "emb_an_other"
            caption = (f"The same sum on {lm2.label}'s own input embeddings ({lm2.d_model} numbers a token), its "
                       "inputs left out the same way.")
    except ExplainerError as e:
        st.markdown(f"**{_vs_label(vs)}**")
        st.info(str(e))
        return None
    ui.chart(figs.neighbour_bars(answers, title, tokens=vs != GLOVE, color=GREEN), key=key)
    st.caption(caption)
    return side


@ui.section("analogies")
@ui.fragment
def analogy_tab() -> None:
    picked = _preset("an_preset", "Example", content.ANALOGY_PRESETS, ("an_a", "an_b", "an_c"))
    preset = content.ANALOGY_PRESETS[picked]
    c1, c2, c3, c4 = st.columns([3, 3, 3, 2])
    ui.text("an_a", "a", preset[0], key="emb_an_a", where=c1)
    ui.text("an_b", "minus b", preset[1], key="emb_an_b", where=c2)
    ui.text("an_c", "plus c", preset[2], key="emb_an_c", where=c3)
    ui.slider("an_k", "Show", 3, 20, D["an_k"], key="emb_an_k", where=c4, help="How many nearest tokens to list.")
    ui.flag("an_variants", "Also hide other spellings of the input words (King, ␣King, KING)", D["an_variants"],
            widget="checkbox", key="emb_an_variants",
                help="The input words' own tokens are always left out of the answer; this also leaves out "
                     "their capitalised and space-less twins.")
    a, b, c = ss.emb_an_a, ss.emb_an_b, ss.emb_an_c
    try:
        res = vectors.analogy(lm, [a, c], [b], k=int(ss.emb_an_k), exclude_inputs=True,
                          exclude_variants=bool(ss.emb_an_variants))
    except ExplainerError as e:
        st.info(str(e))
        return
    best = res.best
    st.markdown(f"### {html.escape(res.expression)}  ≈  `{show_token(best.text)}`   "
                f"<small>(cosine {best.cosine:.2f})</small>", unsafe_allow_html=True)
    st.caption("Tokens used: " + " · ".join(_token_used(w) for w in (*res.positive, *res.negative))
               + ". The computed vector is not itself a token: the answer is the real token closest to it "
                 "by cosine, the inputs left out.")
    _show_word_problems(res.notes, ())
    left, right = st.columns(2, gap="large")
    with left:
        ui.chart(figs.neighbour_bars(res.neighbours, f"{lm.label}: input embeddings"), key="emb_an_bars")
    with right:
        other = _second_space(a, b, c)
    if not ui.reading_only():       # the presenter view: the answer and the two lists of neighbours
        return
    if other is not None:
        al = compare.align_analogy(compare.lm_space(lm, res), other, int(ss.emb_an_k))
        ui.chart(cfigs.analogy_ranks(al, "Side by side: each answer's rank in both"), key="emb_an_ranks")
        agree = al.both(int(ss.emb_an_k))
        st.caption((f"Both lists hold {len(agree)} of these words: " + ", ".join(agree) + ". " if agree else
                    "The two lists share no word. ") +
                   "A short line is a word the two spaces rank alike; a long one, a word only one of them ranks "
                   "high. A word with one marker has no single row in the other space (the model splits it into "
                   "pieces, or GloVe does not know it). Ranks count every token or word, the inputs left out; "
                   "cosines are not compared, as each space has its own spread of them.")
    am = wordmaps.analogy_map(lm, res, n_neighbours=5)
    ui.chart(figs.analogy_map(am, "The sum, drawn: both arrows are the same vector b → a"), key="emb_an_map")
    near = vectors.nearest_by_distance(lm, res.target, res.excluded)
    share = float(am.pca.explained_variance_ratio[:2].sum())
    st.caption(f"The blue arrow goes from b to a; the orange arrow adds the same step to c and ends at the computed "
               f"point ★. No token sits exactly there: the answer is the token whose vector points most nearly the "
               f"same way (cosine), measured in all {lm.d_model} numbers. By plain distance the nearest token is "
               f"`{show_token(near.text)}`. This flat picture (PCA of the points shown) keeps {share:.0%} of their "
               "spread, so distances in it are only a hint.")
    ui.code_expander(f"{res.expression}, ranked over all {lm.vocab_size:,} tokens.",
                     snippets.analogy(lm, [a, c], [b], int(ss.emb_an_k), bool(ss.emb_an_variants)))


@ui.section("neighbours")
@ui.fragment
def neighbours_view() -> None:
    st.markdown("#### Nearest neighbours of one word")
    ui.text("nb_word", "Word", D["nb_word"], key="emb_nb_word",
            help="The tokens whose vectors point most nearly the same way.")
    try:
        wt, nb = vectors.neighbours(lm, ss.emb_nb_word, k=10)
    except ExplainerError as e:
        st.info(str(e))
        return
    left, right = st.columns(2, gap="large")
    with left:
        ui.chart(figs.neighbour_bars(nb, f"Model: nearest to {show_token(wt.token)}"),
                 key="emb_nb_bars")
        ui.table_download("Download these neighbours (CSV)", lambda: exports.neighbours(nb),
                          f"nearest to {wt.word}", key="emb_nb_csv")
        _show_word_problems([wt.note] if wt.note else [], ())
        ui.code_expander(f"The {len(nb)} tokens nearest to {wt.word}, over all {lm.vocab_size:,}.",
                         snippets.neighbours(lm, wt.word, len(nb)))
    with right:
        try:
            gn = glove.neighbours(ss.emb_nb_word, k=10, g=ui.glove_vectors())
        except ExplainerError as e:
            st.info(str(e))
        else:
            ui.chart(figs.neighbour_bars(gn, f"{glove.LABEL}: nearest words", tokens=False, color=GREEN),
                     key="emb_nb_glove")
    n_var = vectors.spelling_variants(lm, wt.word, nb)
    st.caption(f"{n_var} of the model's {len(nb)} nearest tokens {'is' if n_var == 1 else 'are'} "
               f"{wt.word} itself in another spelling (another capitalisation, or without the leading space): "
               "the model has a token for each and must tell them apart; GloVe knows only lower-case words."
               if n_var else
               "GloVe knows only lower-case words. The model has separate tokens for a word's other spellings "
               "(capitalised, without the leading space), though none of them is among these neighbours.")


with tabs[1]:
    analogy_tab()
    ui.divider()
    neighbours_view()


# -- 3. directions -------------------------------------------------------------------------------

@ui.section("directions")
@ui.fragment
def direction_tab() -> None:
    left, right = st.columns([1, 2], gap="large")
    with left:
        presets = content.DIRECTION_PRESETS
        preset = presets[_preset("dir_preset", "Axis", presets, ("dir_axis", "dir_words"))]
        ui.text("dir_axis", "Pairs that define the axis (`from → to`)", preset[0], area=True, key="emb_dir_axis",
                height=175,
                     help="The axis is the average of (to − from) over the pairs.")
        ui.text("dir_words", "Words to place on it", preset[1], area=True, key="emb_dir_words", height=150)
    with right:
        pairs = words.parse_items(ss.emb_dir_axis).pairs
        if not pairs:
            st.info("Write at least one pair for the axis, such as `man → woman`.")
            return
        try:
            d = wordmaps.direction(lm, pairs)
            axis_words = [w for p in pairs for w in p]
            wv = vectors.word_vectors(lm, [*words.split_words(ss.emb_dir_words), *axis_words])
            if not wv.words:
                st.info("Type some words to place on the axis.")
                return
            proj = wordmaps.project(d, wv.vectors, wv.words)
        except ExplainerError as e:
            st.info(str(e))
            return
        frm = ", ".join(a for a, _ in pairs[:2]) + ("…" if len(pairs) > 2 else "")
        to = ", ".join(b for _, b in pairs[:2]) + ("…" if len(pairs) > 2 else "")
        ui.chart(figs.direction_strip(proj, d.name, f"−1: {frm}", f"+1: {to}",
                                      axis_words=frozenset(" ".join(w.split()) for w in axis_words)),
                 key="emb_dir_chart")
        st.caption("Position = how far along the axis a word's vector lies, scaled so that the average "
                   "'from' word sits at −1 and the average 'to' word at +1 (grey: the words that define the axis). "
                   "Hover for the cosine with the axis. Words the training text used in gendered (or plural, "
                   "past…) contexts drift to one side: the vectors learn the text's habits, biases included.")
        _show_word_problems(wv.notes, wv.skipped)
        ui.code_expander(f"The axis {d.name} and {len(wv.words)} words placed on it.",
                         snippets.direction(lm, [(a.word, b.word) for a, b in d.pairs], [w.word for w in wv.words]))


with tabs[2]:
    direction_tab()


# -- 4. similarity ---------------------------------------------------------------------------------

def _similarity_story(labels, sim) -> str:
    n = sim.norms
    i_long, i_short = int(n.argmax()), int(n.argmin())
    parts = [f"Here the longest vector is **{labels[i_long]}** (|v| = {n[i_long]:.2f}) and the shortest "
             f"**{labels[i_short]}** ({n[i_short]:.2f})."]
    d = sim.disagreement()
    if d is not None:
        why = ("the dot product favours the longer vector" if d.dot_pick_longer else
               "both point away from it (negative cosines), and then the dot product prefers the shorter vector")
        parts.append(f"Closest to **{labels[d.word]}** by dot product: **{labels[d.by_dot]}**; by cosine: "
                     f"**{labels[d.by_cosine]}** — {why}.")
    return " ".join(parts)


@ui.section("similarity")
@ui.fragment
def similarity_tab() -> None:
    ui.text("sim_words", "Words", D["sim_words"], area=True, key="emb_sim_words", height=80,
            help="Separate words with commas.")
    try:
        wv = vectors.word_vectors(lm, words.split_words(ss.emb_sim_words), max_words=30)
        if len(wv.words) < 2:
            st.info("Type at least two words.")
            _show_word_problems(wv.notes, wv.skipped)
            return
        sim = vectors.similarity(wv.vectors)
    except ExplainerError as e:
        st.info(str(e))
        return
    ui.chart(figs.similarity_heatmaps(wv.labels, sim), key="emb_sim_heat", present_height=400)
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.markdown(
            "**Why do they differ?** The dot product multiplies the vectors number by number and adds up: "
            "a · b = |a| × |b| × cos(angle). It grows with the *lengths* of the vectors as well as with how "
            "alike their *directions* are. The cosine divides the lengths out and keeps only the direction, "
            "from −1 (opposite) through 0 (unrelated) to 1 (same direction). Attention scores are dot "
            "products; word-similarity searches use the cosine. " + _similarity_story(wv.labels, sim))
        _show_word_problems(wv.notes, wv.skipped)
    with right:
        ui.chart(figs.vector_lengths(wv.labels, sim.norms, "Vector lengths"), key="emb_sim_norms")
    ui.code_expander(f"Dot products, cosines and lengths of these {len(wv.words)} words' vectors.",
                     snippets.similarity(lm, [w.word for w in wv.words]))


with tabs[3]:
    similarity_tab()


# -- 5. in context -------------------------------------------------------------------------------

def _highlight(sentence: str, word: str) -> str:
    s = html.escape(sentence)
    w = html.escape(" ".join(word.split()))
    return re.sub(rf"(?<!\w)({re.escape(w)})(?!\w)", r"<b><u>\1</u></b>", s, count=1, flags=re.IGNORECASE)


@ui.section("context")
@ui.fragment
def context_tab() -> None:
    left, right = st.columns([1, 2], gap="large")
    with left:
        preset = content.CONTEXT_PRESETS[_preset("ctx_preset", "Example", content.CONTEXT_PRESETS,
                                             ("ctx_word", "ctx_sentences"))]
        ui.text("ctx_word", "Word to follow", preset[0], key="emb_ctx_word")
        ui.text("ctx_sentences", "Sentences, one per line (2–8)", "\n".join(preset[1]), area=True,
                key="emb_ctx_sentences", height=170)
        ui.flag("ctx_center", "Centre each layer", D["ctx_center"], widget="checkbox", key="emb_ctx_center",
                    help="Subtracts, at each layer, the mean vector over all tokens of these sentences (their "
                         "first tokens left out). A large "
                         "part of every residual vector is common to all tokens; removing it makes the "
                         "differences between contexts visible.")
    sentences = [" ".join(s.split()) for s in ss.emb_ctx_sentences.splitlines() if s.strip()][:8]
    with right:
        if len(sentences) < 2:
            st.info("Write at least two sentences that use the word, one per line.")
            return
        try:
            with st.spinner(f"Running the model on {len(sentences)} sentences…"):
                traces = [ui.get_trace(lm.name, s, int(ss.max_tokens)) for s in sentences]
            ca = residual.in_context(lm, traces, ss.emb_ctx_word, centered=bool(ss.emb_ctx_center))
        except ExplainerError as e:
            st.info(str(e))
            return
        colors = figs.PALETTE
        st.markdown("<br>".join(
            f"<span style='color:{colors[i % len(colors)]}'><b>#{i + 1}</b></span> "
            f"{_highlight(c.sentence, ss.emb_ctx_word)} <small>(token {' + '.join(show_token(p) for p in c.pieces)}, "
            f"position {c.position})</small>" for i, c in enumerate(ca.contexts)), unsafe_allow_html=True)
        st.caption("A GPT reads left to right: the vector at the word can only take in the words *before* it.")
    a, b = st.columns(2, gap="large")
    with a:
        ui.chart(figs.context_trajectories(ca, f"“{ca.word}” through {ca.n_points - 1} blocks"),
                 key="emb_ctx_traj", present_height=420)
    with b:
        ui.chart(figs.context_cosines(ca, "How alike the sentences' vectors stay"), key="emb_ctx_cos",
                 present_height=420)
    if ui.reading_only():       # the presenter view: the sentences and the two pictures
        layer_cosine_view(ca)
    ui.code_expander(f"“{ca.word}” through the blocks in {len(ca.contexts)} sentences.",
                     snippets.in_context(lm, [c.sentence for c in ca.contexts], ca.word, ca.centered))


@ui.fragment
def layer_cosine_view(ca: residual.ContextAnalysis) -> None:
    last = ca.n_points - 1
    left, right = st.columns([3, 2], gap="large")
    with left:
        start = ("the same row of the matrix in every sentence, so all lines start together" if ca.same_start
                 else "here not the same row in every sentence: the word is a different token in some of them, "
                      "so the lines start apart")
        st.markdown(f"**Reading the pictures.** Each line has {ca.n_points} points: the embedding ({start}) and the "
                    "residual stream after each block. As the blocks mix in the context, the vectors drift apart. "
                    "If the model tells the meanings apart, sentences that give the word the same meaning keep "
                    "their vectors more alike than sentences that do not: the vector *soaks up* its context.")
        if ca.centered:
            st.caption("Centred: at each layer the mean vector over all tokens of these sentences (the first token "
                       "left out) was subtracted before comparing, so the part every token shares does not hide "
                       "the differences.")
        layer = st.slider("Layer boundary for the table", 0, last, value=last, key=f"emb_ctx_layer_{last}",
                          help="0 = the embedding; l = after block l−1.")
    with right:
        name = figs.layer_names(ca.n_points)[layer]
        ui.chart(figs.context_cosine_matrix(ca, layer, f"Cosine between the sentences, {name}"),
                 key="emb_ctx_matrix")


with tabs[4]:
    context_tab()
