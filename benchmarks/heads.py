"""Head-role scores and the Attention page's figures on the bundled model.

    python benchmarks/heads.py [--device cpu|cuda] [--repeats 5]

Prints medians over repeats of
- `head_scores(lm)` with its defaults (4 random sequences of 2 × 40 tokens) and at 128 tokens per
  sequence (n = 64), each next to a bare batched forward pass over the same ids with eager attention
  (ratio measured in interleaved pairs in one run: the cost of scoring on top of the forward pass);
- building every figure the Attention page draws for a 128-token prompt (overview of all heads, one
  head's heatmap, the four Q·K steps with `qk_steps`, the grouped-query diagram, three role maps) and
  serialising them to JSON as Streamlit does.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _bench import seconds, text_of  # (also puts the repository on sys.path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default=None)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    import numpy as np
    import torch

    import explainer as ex
    from explainer import heads
    from explainer.figures import attention as fa

    lm = ex.load_model("bundled", device=args.device)
    print(f"model {lm.name}: {lm.n_layers} layers × {lm.n_heads} heads ({lm.n_kv_heads} kv heads), "
          f"device {lm.device}, torch threads {torch.get_num_threads()}")

    def bare(ids):
        x = torch.as_tensor(ids, device=lm.device)                       # [B, T]
        with torch.inference_mode():
            lm.model(input_ids=x, use_cache=False)

    for n in (40, 64):
        seq = heads.repeated_tokens(lm, n=n, batch=4)
        heads.head_scores(lm, n=n)                                        # warm-up
        bare(seq.ids)
        hs, fw = [], []
        for _ in range(args.repeats):                                     # interleaved pairs
            hs.append(seconds(heads.head_scores, lm, n=n))
            fw.append(seconds(bare, seq.ids))
        ratio = statistics.median(h / f for h, f in zip(hs, fw))
        print(f"head_scores  batch 4 × {seq.ids.shape[1]:>3} tokens: median {statistics.median(hs) * 1e3:7.1f} ms "
              f"(bare forward {statistics.median(fw) * 1e3:7.1f} ms, ratio {ratio:.2f})")

    tr = ex.trace(lm, text_of(lm, 128))
    scores = heads.head_scores(lm)
    T = tr.n_tokens

    def build():
        layer, head = heads.looking_back_head(tr.attn)
        steps = heads.qk_steps(lm, tr, layer, head)
        figs = [fa.overview(tr.attn, tr.tokens, (layer, head), n_kv_heads=lm.n_kv_heads, scores=scores),
                fa.head_heatmap(tr.attn[layer, head], tr.tokens, "head"),
                fa.gqa_diagram(lm.n_heads, lm.n_kv_heads, head)]
        figs += [fa.qk_step(getattr(steps, s), tr.tokens, s) for s in ("raw", "scaled", "masked", "pattern")]
        figs += [fa.role_map(scores[r], r, (layer, head)) for r in heads.ROLES]
        return figs

    def build_json():
        return sum(len(f.to_json()) for f in build())

    build_json()
    parts = {"qk_steps": [], "figures": [], "figures+json": []}
    size = 0
    for _ in range(args.repeats):
        layer, head = heads.looking_back_head(tr.attn)
        parts["qk_steps"].append(seconds(heads.qk_steps, lm, tr, layer, head))
        parts["figures"].append(seconds(build))
        t = time.perf_counter()
        size = build_json()
        parts["figures+json"].append(time.perf_counter() - t)
    print(f"Attention page at {T} tokens (10 figures, {size / 1e6:.1f} MB of JSON):")
    for name, ts in parts.items():
        print(f"  {name:<13} median {statistics.median(ts) * 1e3:7.1f} ms")
    assert np.isfinite(scores["induction"]).all()


if __name__ == "__main__":
    main()
