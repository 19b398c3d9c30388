"""Anatomy: where a model's parameters are, the two files a model is, and how models scale."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from explainer import anatomy, exports, snippets, ui
from explainer.errors import ExplainerError
from explainer.figures import anatomy as figs


@ui.section("counts")
def numbers(lm, pc) -> None:
    """The numbers that define it: counts, where the parameters sit, the bytes to hold them."""
    st.subheader(f"1 · {lm.label}: {pc.total:,} parameters")
    heads = f"{pc.n_heads}" if pc.n_kv_heads == pc.n_heads else f"{pc.n_heads} / {pc.n_kv_heads}"
    # two rows of four: seven metrics side by side cut their labels and numbers short ("Paramet… 134…") at 1280 px
    cols = [c for _ in range(2) for c in st.columns(4)]
    for col, (label, value, hint) in zip(cols, [
        ("Parameters", anatomy.human_count(pc.total), f"{pc.total:,} numbers, every one learned"),
        ("Weight matrices", f"{pc.n_matrices:,}", "2-D weight tensors; the rest are bias and norm vectors"),
        ("Layers (blocks)", f"{pc.n_layers}", "transformer blocks, one after another"),
        ("Heads" if pc.n_kv_heads == pc.n_heads else "Heads (Q / KV)", heads,
         "attention heads per layer" + ("" if pc.n_kv_heads == pc.n_heads else
                                        f"; the {pc.n_heads} query heads share {pc.n_kv_heads} key/value heads "
                                        "(grouped-query attention)")),
        ("d_model", f"{pc.d_model:,}", "length of every token's vector in the residual stream"),
        ("Vocabulary", f"{pc.vocab_size:,}", "tokens it can read and predict"),
        ("Context window", f"{pc.n_ctx:,}", "the most tokens it can attend to at once"),
    ]):
        col.metric(label, value, help=hint)

    # the whole width: in a narrower column the token embedding's box is too thin for its label at 14 px
    ui.chart(figs.param_treemap(pc, lm.label), key="anat_treemap", present_height=430)
    tied = (" The output layer (unembedding) re-uses the token-embedding matrix — *tied weights* — so it is "
            "counted once.") if pc.tied else " The output layer has its own matrix (untied)."
    st.caption("Box area = number of parameters. Click a box to zoom in, hover it for the numbers." + tied)
    ui.table_download("Download the parameter counts (CSV)", lambda: exports.parameters(pc), "parameters",
                      key="anat_csv")
    ui.code_expander(f"{lm.label}'s parameters, counted from its configuration.", snippets.parameters(lm))


@ui.section("bytes")
def bytes_and_blocks(pc) -> None:
    """The bytes to hold the parameters, and how they add up per block."""
    st.markdown("**Bytes to hold it**: every parameter is one number.")
    for col, (prec, why) in zip(st.columns(3), [
            ("float32", "4 bytes each: training, and this app on a CPU"),
            ("float16", "2 bytes each: usual on a GPU"),
            ("4-bit", "½ byte each, before the scales stored with every block of numbers (4.5 to 5 bits each in "
                      "practice): phones and laptops")]):
        col.metric(prec, anatomy.human_bytes(pc.nbytes(prec)), help=why)
    st.markdown(
        f"**Per block:** attention {pc.attention_per_layer:,} · MLP {pc.mlp_per_layer:,} · "
        f"norms {pc.norms_per_layer:,} = **{pc.per_layer:,}**, × {pc.n_layers} blocks = "
        f"{pc.per_layer * pc.n_layers:,} ({(pc.per_layer * pc.n_layers) / pc.total:.0%} of the model). "
        f"**Token embedding:** {pc.vocab_size:,} × {pc.d_model:,} = {pc.embedding:,} "
        f"({pc.embedding_share:.0%} of the model).")


@ui.section("files")
def two_files(lm, pc) -> None:
    st.divider()
    st.subheader("2 · A model is mainly two files")
    tf = ui.anatomy_files(lm.name)
    c1, c2 = st.columns(2, gap="large")
    with c1:
        st.markdown("#### File 1: the parameters")
        if tf.weights_path and tf.weights_bytes:
            shards = f" in {tf.n_weight_files} shards" if tf.n_weight_files > 1 else ""
            st.code(tf.weights_path, language=None, wrap_lines=True)
            st.metric("Size on disk", anatomy.human_bytes(tf.weights_bytes),
                      help=f"{tf.weights_bytes:,} bytes{shards}")
            st.caption(f"{tf.weights_bytes / pc.total:.2f} bytes per parameter: the numbers themselves, plus a small "
                       "header naming each tensor and its shape (safetensors).")
            if tf.original_path and tf.original_bytes:
                st.markdown(f"It was unpacked from **{Path(tf.original_path).name}**, "
                            f"{anatomy.human_bytes(tf.original_bytes)} "
                            f"({8 * tf.original_bytes / pc.total:.1f} bits per parameter on average):")
                st.code(tf.original_path, language=None, wrap_lines=True)
                total = sum(p.n_params for p in tf.original_parts) or 1
                st.markdown("\n".join(
                    f"- {anatomy.human_count(p.n_params)} parameters ({p.n_params / total:.0%}) as {p.what} "
                    f"({p.kind}: {p.bits_per_param:g} bits each), e.g. `{p.examples[0]}`" for p in tf.original_parts))
        else:
            st.info("This model was built in memory (or its weights file is not on this machine), so there is "
                    f"no file to show. Saved at float32 it would take {anatomy.human_bytes(pc.nbytes('float32'))}.")
    with c2:
        st.markdown("#### File 2: the code that runs them")
        st.code(tf.code_path, language=None, wrap_lines=True)
        st.metric("Lines of code", f"{tf.code_statements:,}",
                  help=f"{tf.code_lines:,} lines in the file, counting blanks, comments and docstrings")
        sizes = ("a 135M model and Llama 2 70B alike" if Path(tf.code_path).name == "modeling_llama.py"
                 else "every model of this architecture, small or large")
        st.caption(f"The transformers modeling file for this architecture. The same {tf.code_statements:,} lines of "
                   f"code run {sizes}: only the numbers in the first file change.")
        for name, src in tf.core:
            with st.expander(f"{name}: {len(src.splitlines())} lines"):
                st.code(src, language="python", line_numbers=True)


@ui.section("scale")
def at_scale(lm) -> None:
    st.divider()
    st.subheader("3 · The same count, at scale")
    reading = ui.reading_only()     # the presenter view: the table's main columns, without the chart
    if reading:
        st.write("Every row below comes from the same function, fed only each model's published configuration: "
                 "no weights are downloaded. Watch the token embedding's share shrink as the blocks grow.")
    loaded = f"▶ {lm.label}"
    rows = ui.scale_rows(lm.name, loaded)
    st.dataframe(
        [{
            "model": r.name,
            "parameters": r.total,
            "≈": anatomy.human_count(r.total),
            "d_model": r.count.d_model,
            "layers": r.count.n_layers,
            "heads": str(r.count.n_heads) if r.count.n_kv_heads == r.count.n_heads
            else f"{r.count.n_heads} (K/V {r.count.n_kv_heads})",
            "vocab": r.count.vocab_size,
            "context": r.count.n_ctx,
            "embedding share": 100 * r.count.embedding_share,
            "tied": ("yes (assumed)" if r.name in anatomy.TIED_ASSUMED else "yes") if r.count.tied else "no",
            "float16 size": anatomy.human_bytes(r.count.nbytes("float16")),
        } for r in rows],
        hide_index=True, key="anat_table",
        column_order=None if reading else ("model", "parameters", "≈", "layers", "float16 size"),
        column_config={
            "model": st.column_config.TextColumn(width="medium"),
            "parameters": st.column_config.NumberColumn(format="localized"),
            "vocab": st.column_config.NumberColumn(format="localized"),
            "context": st.column_config.NumberColumn(format="localized"),
            "embedding share": st.column_config.NumberColumn(format="%.1f %%", help="token embedding / all parameters"),
        },
    )
    if not reading:
        return
    ui.chart(figs.scale_shares(rows, highlight=loaded), key="anat_shares")
    big = next((r for r in rows if r.name == "Llama 2 70B"), None)
    sizes = (f" By its configuration Llama 2 70B has {big.total / 1e9:.1f} billion parameters, so float16 takes "
             f"{anatomy.human_bytes(big.count.nbytes('float16'))}; the often-quoted 140 GB is the rounded 70 "
             "billion × 2 bytes." if big is not None else "")
    st.caption("GPT-3 175B: d_model 12,288, 96 layers, 96 heads, 50,257-token vocabulary, 2,048-token context "
               "(Brown et al. 2020); that its output matrix is tied to the embedding, as in GPT-2, is assumed, not "
               "published. Llama 2 uses no position embedding (rotary positions have no parameters) and a separate "
               "output matrix; the 70B model shares each key/value head among 8 query heads." + sizes)


lm = ui.page(
    "Anatomy of a model",
    "What you download when you download “a model”: a large language model is mainly two files, a file of "
    "numbers (its " + ui.term("parameters") + ") and the code that runs them (plus a small configuration and "
    "the tokenizer's vocabulary). Here is where the numbers sit, counted from the model's configuration alone.",
    icon="🦴",
)
if lm is None:
    st.stop()


try:
    pc = anatomy.count_parameters(lm.config)
except ExplainerError as e:
    st.info(str(e))
    st.stop()
numbers(lm, pc)
bytes_and_blocks(pc)
two_files(lm, pc)
at_scale(lm)
