"""Tiny LM lab: train a character-level MLP language model (Bengio et al. 2003's model on characters, as in
Karpathy's makemore) live."""

from __future__ import annotations

import streamlit as st

from explainer import defaults, exports, snippets, ui
from explainer import makemore as mm
from explainer.errors import ExplainerError
from explainer.figures import makemore as figs
from explainer.figures.palette import TINT_NO, TINT_YES

ss = st.session_state
D = defaults.LAB   # the page's defaults; the link overrides them

def new_run(cfg: mm.MLPConfig, seed: int) -> dict:
    """A fresh, untrained model with its history (kept in session state, so reruns keep it), and each training
    call made on it (for the code behind §4)."""
    model = mm.CharMLP(cfg, seed=seed)
    return {"cfg": cfg, "model": model, "hist": [mm.snapshot(model, ui.names_data(cfg.block_size))], "test": None,
            "seed": seed, "calls": []}


def _measure_test(run: dict, block_size: int) -> None:
    """The final exam, taken once: the test loss of the model as it is now (its step kept beside it). The data
    by name: a callback outlives the run (tests/test_pins.py)."""
    run["test"] = (run["hist"][-1].step, run["model"].evaluate(ui.names_data(block_size).test))


@ui.section("data", hidden=ui.SILENT)
def data_and_model() -> tuple[mm.MLPConfig, mm.Dataset, int, bool]:
    """The model's settings and the data; returns them, the seed, and whether this is the page's first visit
    (a first model is then trained at once, so there are curves to look at)."""
    st.subheader("1 · The data and the model")
    c1, c2, c3, c4 = st.columns(4)
    block = ui.slider("lab_block", "Context length (characters)", 1, 8, D["lab_block"], key="lab_block", where=c1,
                      help="How many previous characters the model sees.")
    n_embd = ui.select("lab_embd", "Embedding size", [2, 3, 4, 5, 6, 8, 10, 16, 24], D["lab_embd"],
                       widget="select_slider",
                       key="lab_embd", where=c2,
                       help="Numbers per character in the embedding table. With 2 we can draw it as is.")
    n_hidden = ui.select("lab_hidden", "Hidden units", [10, 25, 50, 100, 200, 300, 500], D["lab_hidden"],
                         widget="select_slider", key="lab_hidden", where=c3, help="tanh units in the one hidden layer.")
    seed = ui.number("lab_seed", "Seed (initial weights, batches)", 0, 10_000, D["lab_seed"], key="lab_seed", where=c4)
    cfg = mm.MLPConfig(int(block), int(n_embd), int(n_hidden))
    with st.spinner("Reading the names…"):
        data = ui.names_data(cfg.block_size)
    first_visit = "lab_run" not in ss  # train a first model as the page opens: curves to look at at once
    if first_visit:
        ss.lab_run = new_run(cfg, int(seed))

    left, right = st.columns([3, 2], gap="large")
    with left:
        st.markdown(
            f"**{len(data.train.words):,} names to learn from, {len(data.dev.words):,} to check on (dev) and "
            f"{len(data.test.words):,} kept for one final test**, split by name so that no name is in two "
            f"splits. Each name gives one example per letter plus one for its end: "
            f"{data.train.y.shape[0]:,} training examples.")
        st.markdown(
            f"The model: {cfg.block_size} characters → embedding table C [27 × {cfg.n_embd}] → concatenate "
            f"({cfg.block_size * cfg.n_embd} numbers) → {cfg.n_hidden} tanh units → 27 scores → softmax. "
            f"**{cfg.n_params:,} parameters.**")
    with right:
        word = data.train.words[0]
        pairs = [{"context": c, "→ next": n} for c, n in mm.examples_of(word, cfg.block_size)]
        st.markdown(f"Examples from the name **{word}** ('.' pads the start and marks the end):")
        st.dataframe(pairs, hide_index=True, height=min(300, 38 + 35 * len(pairs)), key="lab_examples")
    return cfg, data, int(seed), first_visit


@ui.section("lr", hidden=ui.SILENT)
def learning_rate(cfg: mm.MLPConfig) -> float:
    """The learning-rate finder, and the rate the user picked for training."""
    st.subheader("2 · How big a step? The learning-rate finder")
    st.markdown("Training nudges every parameter a little against its error, again and again; the "
                + ui.term("learning rate") + " sets how big each nudge is, and the "
                + ui.term("cross-entropy loss") + " measures the error.")
    left, right = st.columns([3, 2], gap="large")
    with st.spinner("Sweeping learning rates…"):
        sw = ui.lr_sweep(cfg.block_size, cfg.n_embd, cfg.n_hidden, 32)
    with left:
        ui.chart(figs.lr_sweep(sw), key="lab_lrf")
    with right:
        stop = (f" This sweep stopped after {sw.n_run} steps, at a rate of {sw.last_lr:.2g}, once the loss "
                "shot up." if sw.n_run < len(sw.lrs) else "")
        st.write(f"A fresh model trains for up to {len(sw.lrs)} steps while the learning rate grows from "
                 f"{sw.lrs[0]:g} to {sw.lrs[-1]:g}.{stop} Too small: the loss barely moves. Too big: the steps "
                 "overshoot and the loss shoots up. The best rates sit where the loss falls fastest, a little "
                 "before its lowest point.")
        st.metric("Suggested learning rate", f"{sw.suggested:.2g}",
                  help="A third of the rate where the smoothed loss was lowest.")
        rates = [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0]
        lr = ui.select("lab_lr", "Learning rate for training", rates, D["lab_lr"], widget="select_slider", key="lab_lr",
                       show=lambda r: f"{r:g}",
                       help="Drops tenfold for the last quarter of the steps (learning-rate decay).")
    ui.code_expander("The learning-rate finder for this model.", snippets.lab_lr(cfg.block_size, cfg.n_embd,
                                                                                 cfg.n_hidden, 32))
    return float(lr)


@ui.section("train", hidden=ui.SILENT)
def train_it(cfg: mm.MLPConfig, data: mm.Dataset, seed: int, lr: float, first_visit: bool) -> dict:
    """Training, live; returns the session's run (its model and history)."""
    run = ss.lab_run
    st.subheader("3 · Train it")
    c1, c2, c3, c4, c5 = st.columns([2, 2, 2, 1.4, 1.4])
    steps = ui.number("lab_steps", "Steps", 10, 50_000, D["lab_steps"], step=500, key="lab_steps", where=c1)
    every = ui.number("lab_every", "Redraw every N steps", 10, 5000, D["lab_every"], step=50, key="lab_every", where=c2)
    batch = ui.select("lab_batch", "Minibatch size", [8, 16, 32, 64, 128, 256], D["lab_batch"], widget="select_slider",
                      key="lab_batch", where=c3)
    c4.write("")
    c5.write("")
    fresh = c4.button("Train", type="primary", key="lab_train", help="A new model with these settings.")
    more = c5.button("Train more", key="lab_more", disabled=run["cfg"] != cfg,
                     help="Continue training the current model.")
    if run["cfg"] != cfg and not fresh:
        st.info("The settings above changed: the results below are still those of the model you trained before. "
                "Press **Train** for a new model with the new settings.")

    bar = st.empty()
    left, right = st.columns([3, 2], gap="large")
    curve_slot, emb_slot = left.empty(), right.empty()
    if fresh or more or first_visit:
        if fresh:
            ss.lab_run = run = new_run(cfg, int(seed))
        start = run["hist"][-1].step
        run["calls"].append((int(steps), float(lr), int(batch), int(seed) + start))
        progress = bar.progress(0.0, "Training…")
        total = start + int(steps)
        for p in mm.train(run["model"], data, steps=int(steps), lr=float(lr), batch_size=int(batch),
                          eval_every=int(every), seed=int(seed) + start, start_step=start):
            if p.step > start:
                run["hist"].append(p)
            progress.progress((p.step - start) / int(steps),
                              f"Step {p.step:,} of {total:,} · train loss {p.train_loss:.3f} · dev {p.dev_loss:.3f}")
            with curve_slot:
                ui.chart(figs.loss_curves(run["hist"], total), key=f"lab_curve_{p.step}")
            xy, _ = mm.embedding_2d(p.embedding)
            with emb_slot:
                ui.chart(figs.embedding_scatter(xy, p.step, cfg.n_embd > 2, mm.vowel_spread(p.embedding)),
                         key=f"lab_emb_{p.step}")
        run["auto"] = first_visit
        st.rerun()  # redraw every part (buttons, metrics, the replay) from the trained model

    hist, rcfg = run["hist"], run["cfg"]
    with curve_slot:
        ui.chart(figs.loss_curves(hist, max(hist[-1].step, int(steps))), key="lab_curves")
    ui.table_download("Download the loss curves (CSV)", lambda: exports.training(hist), "loss curves", key="lab_csv")
    snaps = [h.embedding for h in hist]
    _, basis = mm.embedding_2d(snaps[-1])          # one projection for every frame: the axes stay put
    keep = mm.frames(len(hist))
    with emb_slot:
        ui.chart(figs.embedding_animation([mm.embedding_2d(snaps[i], basis)[0] for i in keep],
                                          [hist[i].step for i in keep], projected=rcfg.n_embd > 2), key="lab_emb")
    last = hist[-1]
    m1, m2, m3, m4, m5 = st.columns(5)
    m1.metric("Steps trained", f"{last.step:,}")
    m2.metric("Train loss", f"{last.train_loss:.3f}", help="Mean cross-entropy on all training examples.")
    m3.metric("Dev loss", f"{last.dev_loss:.3f}", f"{last.dev_loss - mm.UNIFORM_LOSS:+.3f} vs ln 27",
              delta_color="inverse", help="On names the model never trained on: the honest score.")
    with m4:
        if run["test"] is None:
            st.metric("Test loss", "—", help="Measured once, at the very end; never used to choose settings.")
            st.button("Measure it, once", key="lab_test", on_click=_measure_test, args=(run, data.block_size),
                      disabled=last.step == 0, help="The final exam: look at the test names only when you have "
                      "finished choosing settings and training.")
        else:
            step, loss = run["test"]
            st.metric("Test loss", f"{loss:.3f}", help=f"Measured at step {step:,}.")
            if step != last.step:
                st.caption(f"Measured at step {step:,}; the model has trained since, so this no longer "
                           "describes it (and the test names have been looked at).")
    spread, spread0 = mm.vowel_spread(snaps[-1]), mm.vowel_spread(snaps[0])
    m5.metric("Vowel spread", f"{spread:.2f}", f"{spread - spread0:+.2f} since step 0", delta_color="inverse",
              help="Mean distance between a, e, i, o, u over that between all letters: "
                                          "smaller when the vowels gather.")
    if last.step == 0:
        st.info(f"This model is untrained: its dev loss is {last.dev_loss:.2f}, against ln 27 ≈ "
                f"{mm.UNIFORM_LOSS:.2f} for a uniform guess. Press **Train** and watch both curves fall and the "
                "embedding table rearrange itself.")
    else:
        if run.get("auto"):
            st.caption(f"A first model trained as the page opened ({last.step:,} steps). Press **Train** to "
                       "watch a new one learn, live, or change the settings first.")
        st.caption("Orange letters are vowels. The model only ever saw which characters follow which, yet letters "
                   "that behave alike (the vowels, say) tend to end up near each other. "
                   + ("With more than 2 numbers per character the table is shown along its two main "
                      "directions (PCA)." if rcfg.n_embd > 2 else ""))
    return run


@ui.section("sample")
def new_names(run: dict, data: mm.Dataset) -> None:
    last = run["hist"][-1]
    st.subheader("4 · Make up new names")
    left, right = st.columns([3, 2], gap="large")
    with left:
        c1, c2, c3 = st.columns(3)
        n = ui.slider("lab_n", "How many", 5, 40, D["lab_n"], key="lab_n", where=c1)
        temp = ui.slider("lab_temp", "Temperature", 0.1, 2.0, D["lab_temp"], step=0.1, key="lab_temp", where=c2)
        sseed = ui.number("lab_sample_seed", "Sampling seed", 0, 10_000, D["lab_sample_seed"], key="lab_sample_seed",
                          where=c3,
                          help="Same seed, same names.")
        names = mm.sample(run["model"], int(n), seed=int(sseed), temperature=float(temp))
        known = set(data.train.words)
        ui.token_chips([w or "(empty)" for w in names],
                       colors=[TINT_YES if w in known else TINT_NO for w in names],
                       titles=["in the training names" if w in known else "a new name" for w in names])
        new = sum(w not in known for w in names)
        st.caption(f"One character at a time, each drawn from the model's probabilities, until it picks '.'. "
                   f"Pink: {new} new names; green: names it saw in training."
                   + (" An untrained model spells gibberish." if last.step == 0 else ""))
    with right:
        prefix = ui.text("lab_prefix", "Start of a name", D["lab_prefix"], key="lab_prefix", max_chars=20)
        try:
            ui.chart(figs.next_char_bars(mm.next_char_probs(run["model"], prefix), prefix), key="lab_next")
        except ExplainerError as e:
            st.info(str(e))
    rcfg = run["cfg"]
    ui.code_expander("This model trained as here (§3), then these names and the next letter's probabilities.",
                     snippets.lab_train(rcfg.block_size, rcfg.n_embd, rcfg.n_hidden, run["seed"],
                                        run["calls"], int(n), float(temp), int(sseed), prefix))


@ui.section("overfit")
def overfitting(cfg: mm.MLPConfig) -> None:
    st.subheader("5 · Too big a model, too little data: overfitting")
    st.markdown("A big network trained on a handful of names shows " + ui.term("overfitting") + ".")
    c1, c2, c3 = st.columns([2, 2, 1])
    of_names = ui.slider("lab_of_names", "Training names", 10, 400, D["lab_of_names"], step=10, key="lab_of_names",
                         where=c1)
    of_hidden = ui.select("lab_of_hidden", "Hidden units", [50, 100, 200, 300, 500], D["lab_of_hidden"],
                          widget="select_slider",
                          key="lab_of_hidden", where=c2)
    c3.write("")
    if c3.button("Run it", key="lab_overfit") or "lab_of" not in ss:  # the defaults run once on their own
        with st.spinner("Training a big network on a few names…"):
            ss.lab_of = (cfg.block_size, int(of_names), int(of_hidden))    # the run by name: its result is cached
            ss.lab_of_code = snippets.lab_overfit(cfg.block_size, int(of_names), int(of_hidden))
    if "lab_of" in ss:
        with st.spinner("Training a big network on a few names…"):
            res = ui.overfit_run(*ss.lab_of)      # a cache hit, unless the memory budget made it let go
        st.caption(f"Below: {res.n_train_names} training names, {res.n_params:,} parameters. Move the sliders and "
                   "press **Run it** to try another pair.")
        left, right = st.columns([3, 2], gap="large")
        with left:
            ui.chart(figs.overfit_curves(res), key="lab_of_chart")
        with right:
            many = ("more than the examples: enough to memorise them" if res.memorises
                    else "fewer than the examples")
            if res.overfitted:
                dev = (f"but on names it never saw the loss is lowest at step {res.best_step} ({res.dev.min():.2f}) "
                       f"and then climbs to {res.dev[-1]:.2f}"
                       + (", worse than guessing uniformly." if res.dev[-1] > mm.UNIFORM_LOSS else ".")
                       + " The cures: more data, a smaller model, or stopping at the dev minimum.")
            else:
                dev = (f"and on names it never saw the loss is still at its lowest at the end ({res.dev[-1]:.2f}): "
                       "no overfitting yet in this run. Try fewer names or more hidden units.")
            st.markdown(f"{res.n_params:,} parameters for {res.n_train_examples:,} examples, {many}. The train "
                        f"loss falls to {res.train[-1]:.2f}, {dev}")
        if "lab_of_code" in ss:
            ui.code_expander("This run: a big network on a few names.", ss.lab_of_code)


def main() -> None:
    """The page's run. Its results stay local: a callback or fragment the session keeps after the run holds
    the page's globals, so nothing big may live there (tests/test_pins.py)."""
    ui.page(
        "Tiny language model lab",
        "Every language model, ChatGPT included, starts its training the same way: guess the next symbol, measure the "
        "miss, adjust. Here is the simplest neural version, before GPT: read the last few characters, look each "
        "one up in a learned embedding table, mix them in one hidden layer, guess the next character (the model "
        "of Bengio et al. 2003, which read words, here reading characters as in Karpathy's makemore). Train one "
        "on about 5,000 US census first names, live, in seconds.",
        icon="🧪",
    )  # the lab does not need the big model: it trains its own
    try:
        cfg, data, seed, first_visit = data_and_model()
        ui.divider()
        lr = learning_rate(cfg)
        ui.divider()
        run = train_it(cfg, data, seed, lr, first_visit)
        ui.divider()
        new_names(run, data)
        ui.divider()
        overfitting(cfg)
    except ExplainerError as e:
        st.info(str(e))


main()
