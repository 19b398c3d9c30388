"""Next-token page redraw time and generation speed with and without the KV cache, on the bundled model.

    python benchmarks/sampling.py [--device cpu|cuda] [--repeats 15] [--tokens 32]

1. Redraw after a slider move (server side, no model call): `probabilities` on cached logits [V] plus
   building the page's two charts (distribution + survivors) and serialising them to JSON as Streamlit
   does. Median over repeats for several slider positions; target < 100 ms.
2. Seconds per generated token (greedy, decode steps only; the prompt's own pass is reported
   separately) with the KV cache (one new token per call) and without it (the whole context every
   call), at a short and a longer prompt, interleaved in one run; the ratio is measured in that run.
"""

from __future__ import annotations

import argparse
import statistics

from _bench import median_ms, text_of  # (also puts the repository on sys.path)


def bench_redraw(lm, repeats: int) -> None:
    from explainer.figures.sampling import distribution_chart, survival_chart
    from explainer.generation import next_logits
    from explainer.sampling import probabilities
    from explainer.tokens import token_strings

    logits = next_logits(lm, lm.tokenizer("The Eiffel Tower is in the city of")["input_ids"])  # [V], cached once
    print(f"## Redraw of the next-token charts after a slider move (vocab {logits.shape[0]:,}, no model call)")
    print(f"{'temperature':>11} {'top-k':>6} {'top-p':>6} | {'probabilities ms':>16} {'+ 2 figures + JSON ms':>21}")
    worst = 0.0
    for t, k, p in [(1.0, 10, 0.9), (0.3, 0, 1.0), (2.5, 50, 0.95), (5.0, 0, 0.5), (0.0, 10, 0.9)]:
        def dist_only(t=t, k=k, p=p):
            return probabilities(logits, t, k, p)

        def redraw(t=t, k=k, p=p):
            d = probabilities(logits, t, k, p)
            ids = [int(i) for i in d.top(12)]
            strings = token_strings(lm.tokenizer, ids)
            for fig in (distribution_chart(d, ids, strings), survival_chart(d, ids, strings)):
                fig.to_json()  # what st.plotly_chart sends to the browser

        a, b = median_ms(dist_only, repeats), median_ms(redraw, repeats)
        worst = max(worst, b)
        print(f"{t:>11g} {k:>6} {p:>6g} | {a:>16.1f} {b:>21.1f}")
    print(f"worst median redraw: {worst:.1f} ms (target < 100 ms)\n")


def bench_generation(lm, repeats: int, n_new: int) -> None:
    from explainer.generation import GenConfig, generate

    print(f"## Seconds per generated token, greedy, {n_new} new tokens, median of {repeats} runs")
    print(f"{'prompt tokens':>13} | {'prefill s':>9} {'with cache s/tok':>16} {'without s/tok':>13} {'ratio':>6}")
    for n_prompt in (16, 256):
        ids = lm.tokenizer(text_of(lm, n_prompt))["input_ids"]
        cfgs = {c: GenConfig(max_new_tokens=n_new, temperature=0, use_cache=c, stop_at_eos=False)
                for c in (True, False)}
        generate(lm, ids, cfgs[True])  # warm-up
        res: dict[bool, list[float]] = {True: [], False: []}
        prefill: list[float] = []
        for _ in range(repeats):  # interleaved, so load on the machine hits both alike
            for c in (True, False):
                out = generate(lm, ids, cfgs[c])
                res[c].append(out.seconds_per_token)
                if c:
                    prefill.append(out.prefill_seconds)
        w, wo = statistics.median(res[True]), statistics.median(res[False])
        print(f"{n_prompt:>13} | {statistics.median(prefill):>9.3f} {w:>16.4f} {wo:>13.4f} {wo / w:>5.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default=None)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--gen-repeats", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=32)
    args = ap.parse_args()

    import torch

    import explainer as ex

    lm = ex.load_model("bundled", device=args.device)
    print(f"model: {lm.label} · device {lm.device} · torch threads {torch.get_num_threads()}\n")
    bench_redraw(lm, args.repeats)
    bench_generation(lm, args.gen_repeats, args.tokens)


if __name__ == "__main__":
    main()
