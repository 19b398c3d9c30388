"""The app: its navigation, and the home page (what this is, the model picker, the prompt, its tokens and
the model's next-token guess). Every other view is a file in pages/."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from explainer import ui
from explainer.figures.tokens import top_next_tokens
from explainer.models import BUNDLED
from explainer.sampling import softmax, top_k
from explainer.tokens import token_strings

# (file, icon, title in the navigation, its section there, one line for the home page's tour); Material icons
# render in every browser, emoji do not (headless Chromium has no emoji font). A page's URL is its file name
# without the number (/Attention, /Next_token, ...): links already shared depend on it.
INSIDE, MAKING, FURTHER, REFERENCE = "Inside the model", "Making text", "Going further", "Reference"
TOUR = [
    ("pages/0_Model_map.py", ":material/map:", "Model map", INSIDE,
     "The whole model on one screen: every part, its shape, its parameters, its hook name."),
    ("pages/1_Embeddings.py", ":material/scatter_plot:", "Word vectors", INSIDE,
     "Tokens become vectors; directions carry meaning (king − man + woman)."),
    ("pages/2_Attention.py", ":material/visibility:", "Attention", INSIDE,
     "Each token looks back at earlier ones: heatmaps, Q·K, head roles."),
    ("pages/3_MLP_neurons.py", ":material/hub:", "MLP neurons", INSIDE,
     "Each block's neurons (1,536 in the bundled model) fire on particular patterns."),
    ("pages/4_Logit_lens.py", ":material/layers:", "Residual stream & logit lens", INSIDE,
     "Watch the prediction form layer by layer."),
    ("pages/5_Next_token.py", ":material/casino:", "Next token", MAKING,
     "Temperature, top-k, top-p — and generation, one token at a time."),
    ("pages/6_Generate.py", ":material/edit_note:", "Generation playground", MAKING,
     "Prompt templates, streaming output, padding and masks."),
    ("pages/7_Interventions.py", ":material/content_cut:", "Interventions", FURTHER,
     "Switch off heads or neurons and see what changes."),
    ("pages/8_Anatomy.py", ":material/account_tree:", "Anatomy", FURTHER,
     "Where the parameters are; a model is mainly two files."),
    ("pages/9_Tiny_LM_lab.py", ":material/school:", "Tiny LM lab", FURTHER,
     "Train a character-level language model live, in seconds."),
    ("pages/10_Glossary.py", ":material/menu_book:", "Glossary", REFERENCE,
     "Every technical word the pages use, in plain words."),
]
# The student's page of a class poll (explainer/poll.py): opened from the QR code the lesson player shows, so it is
# hidden from the sidebar and the tour (on its own, with no room, it has nothing to teach) and is no lesson view.
JOIN = ("pages/11_Join.py", ":material/how_to_vote:", "Class poll", "Join")


def home() -> None:
    lm = ui.page(
        "Inside a GPT",
        "The kind of program behind your phone's autocomplete and ChatGPT, opened up. This is a real "
        "pretrained language model: type a prompt and follow it through tokens, vectors, attention, MLPs and "
        "out the other end as a probability for every possible next " + ui.term("token") + ".",
        icon="🧠",
    )
    if lm is None:
        st.error("No model is loaded. Pick the bundled model in the sidebar; it works offline.")
    elif lm.name == BUNDLED and not ui.presenting():
        st.caption("The bundled model is SmolLM2-135M-Instruct (Hugging Face, 2024). It ships as a GGUF file with "
                   "its matrices in 4 bits (Q4_1) and its embedding in 8 bits (Q8_0), which this app de-quantised "
                   "once to ordinary 32-bit numbers: what you see are that file's weights, a close copy of the "
                   "original release's.")

    prompt_and_prediction(lm)
    if ui.lesson_running():    # the player's Next is the path now
        return
    st.divider()
    ui.lesson_picker(lm)
    st.divider()
    ui.own_lesson_editor(lm)          # a lesson of the teacher's own: made from the views, kept in this session
    st.divider()
    st.subheader("The guided tour")
    st.write("Follow the prompt through the model, one page at a time:")
    cols = st.columns(3)
    for i, (path, icon, label, _, blurb) in enumerate(TOUR):
        with cols[i % 3]:
            st.page_link(path, label=f"**{i + 1}. {label}**", icon=icon)
            st.caption(blurb)


def prompt_and_prediction(lm) -> None:
    """The prompt, its tokens and the model's guess for the next one (nothing without a model or a prompt)."""
    if lm is None:
        return
    text = ui.prompt_box("Your prompt", help="Every page uses this prompt. Try your own!")
    tr = ui.current_trace(lm, text)
    if tr is None:
        return

    # side by side; in the presenter view of one of them, that one alone
    left, right = st.columns([3, 2], gap="large") if ui.reading_only() else (st.container(), st.container())
    with left:
        tokens_read(lm, tr)
    with right:
        next_one(lm, tr)


@ui.section("tokens")
def tokens_read(lm, tr) -> None:
    st.subheader(f"1 · The model reads {tr.n_tokens} tokens")
    st.write("Text is cut into **tokens**: whole words, pieces of words, punctuation. Each has an id, "
             "its row in the vocabulary. A leading space is part of the token (shown as ␣).")
    ui.token_chips(tr.tokens, [int(i) for i in tr.token_ids])
    frac = tr.n_tokens / lm.n_ctx
    st.progress(min(frac, 1.0), f"Context window: {tr.n_tokens:,} of {lm.n_ctx:,} tokens used ({frac:.2%})")
    st.caption(f"Vocabulary: {lm.vocab_size:,} tokens. The model can attend to at most {lm.n_ctx:,} "
               "tokens at once: its context window.")


@ui.section("prediction")
def next_one(lm, tr) -> None:
    st.subheader("2 · …and predicts the next one")
    probs = softmax(tr.next_token_logits())
    top = top_k(probs, 10)
    fig = top_next_tokens(list(token_strings(lm.tokenizer, top)), [int(i) for i in top], probs[top],
                          tr.next_token_logits()[top])
    ui.chart(fig, key="home_top")
    st.caption("Probabilities over the whole vocabulary, from one forward pass. Hover a bar for its id and logit.")


def navigation() -> None:
    """Titles a teacher can read in the sidebar (not file names), grouped in the order of the tour."""
    by_view = {"Home": st.Page(home, title="Home", icon=":material/home:", default=True)}
    sections: dict[str, list] = {"": [by_view["Home"]]}
    for path, icon, label, section, _ in TOUR:
        url = Path(path).stem.split("_", 1)[1]
        by_view[url] = st.Page(path, title=label, icon=icon, url_path=url)
        sections.setdefault(section, []).append(by_view[url])
    path, icon, label, url = JOIN
    sections[""].append(st.Page(path, title=label, icon=icon, url_path=url, visibility="hidden"))
    current = st.navigation(sections)
    ui.in_navigation(by_view, current.url_path or "Home")   # the lesson player opens a step on its own page
    current.run()


navigation()
