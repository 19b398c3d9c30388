"""Logit lens, token trajectory, ablation and attribution on the bundled model.

    python benchmarks/lens.py [--device cpu|cuda] [--tokens 128] [--repeats 5] [--before OLD_LENS.py]

Prints medians over repeats, each also as the median ratio to a bare forward pass run just before it, the
largest block of logits the lens holds at once, and the growth of peak memory during the lens against the
(L+1)·T·V·4 bytes a naive lens would need. Also: the floor (the final norm and the [(L+1)·T, D] x [D, V]
products alone, into one buffer), the first view of the Logit lens page (the last 16 positions, every
row), and with `--before`, another version of explainer/lens.py (e.g. `git show REV:explainer/lens.py >
/tmp/lens_before.py`) timed in the same loop, so that load on the machine hits both alike.
"""

from __future__ import annotations

import argparse
import statistics

from _bench import rss_mb, seconds, text_of  # (also puts the repository on sys.path)

FASTEST: list[float] = []   # every bare forward pass timed, for the least disturbed one


def _paired(fn, forward, repeats: int) -> tuple[float, float, float]:
    """Median time of fn, the median ratio fn / forward over adjacent pairs (robust to a loaded machine),
    and the fastest fn."""
    times, ratios = [], []
    for _ in range(repeats):
        f = seconds(forward)
        t = seconds(fn)
        FASTEST.append(f)
        times.append(t)
        ratios.append(t / f)
    return statistics.median(times), statistics.median(ratios), min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--before", help="another explainer/lens.py to time against this one")
    ap.add_argument("--lens-only", action="store_true", help="skip the trajectory, ablation and attribution")
    args = ap.parse_args()

    import torch

    import explainer as ex
    from explainer import interventions as iv
    from explainer import lens

    cuda = args.device.startswith("cuda")
    lm = ex.load_model("bundled", device=args.device)
    tr = ex.trace(lm, text_of(lm, args.tokens))
    L1, T, V = lm.n_layers + 1, tr.n_tokens, lm.vocab_size
    ids = torch.tensor([tr.token_ids.tolist()], device=lm.device)

    def forward():
        with torch.inference_mode():
            lm.model(input_ids=ids, use_cache=False)
        if cuda:
            torch.cuda.synchronize()

    sizes: list[int] = []
    real = lens._decoder

    def spy(lm_):
        decode = real(lm_)

        def wrapped(x):
            out = decode(x)
            sizes.append(out.numel())
            return out
        return wrapped

    forward()                                                   # warm-up
    lens._decoder = spy
    rss0 = rss_mb()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base_alloc = torch.cuda.memory_allocated()
    lens.logit_lens(lm, tr, k=5)                                # warm-up, and the memory measurement
    rss_growth = rss_mb() - rss0
    cuda_extra = (torch.cuda.max_memory_allocated() - base_alloc) / 2**20 if cuda else None
    lens._decoder = real

    norm = lm.arch.final_norm_module(lm.model)
    w = lm.model.get_output_embeddings().weight
    flat = torch.from_numpy(tr.resid.reshape(-1, lm.d_model).copy()).to(lm.device, lm.dtype)
    rows = lens.rows_per_chunk(V)
    out = torch.empty(rows, V, device=lm.device, dtype=lm.dtype)

    def floor():
        with torch.inference_mode():
            h = norm(flat)
            for s in range(0, h.shape[0], rows):
                torch.mm(h[s:s + rows], w.t(), out=out[:min(rows, h.shape[0] - s)])
        if cuda:
            torch.cuda.synchronize()

    window = range(max(0, T - 16), T)
    before = None
    if args.before:
        import importlib.util
        import sys

        spec = importlib.util.spec_from_file_location("explainer.lens_before", args.before)
        before = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(before)
        before.logit_lens(lm, tr, k=5)                          # warm-up

    fwd = statistics.median(seconds(forward) for _ in range(args.repeats))
    t_floor = _paired(floor, forward, args.repeats)
    t_lens = _paired(lambda: lens.logit_lens(lm, tr, k=5), forward, args.repeats)
    t_first = _paired(lambda: lens.logit_lens(lm, tr, k=5, positions=window), forward, args.repeats)
    if before is not None:
        both = []
        for _ in range(args.repeats):   # interleaved: before, after
            b = seconds(lambda: before.logit_lens(lm, tr, k=5))
            a = seconds(lambda: lens.logit_lens(lm, tr, k=5))
            both.append((b, a, b / a))
    heads, neurons = [(3, 4), (10, 2), (20, 8)], [(11, 100), (28, 7), (15, 1274)]
    skip = (float("nan"),) * 3
    t_traj = skip if args.lens_only else _paired(lambda: lens.token_trajectory(lm, tr, int(tr.token_ids[-1])),
                                                 forward, args.repeats)
    t_abl = skip if args.lens_only else _paired(lambda: iv.ablate(lm, tr, heads=heads, neurons=neurons), forward,
                                                args.repeats)
    t_attr = skip if args.lens_only else _paired(lambda: iv.attribution(lm, tr), forward, args.repeats)

    naive_mb = L1 * T * V * 4 / 2**20
    print(f"bundled model ({lm.n_layers} layers, vocab {V:,}) on {args.device}, {T} tokens, "
          f"median of {args.repeats}, torch threads {torch.get_num_threads()}")
    print(f"  bare forward pass            {fwd * 1e3:8.1f} ms")
    fast = min(FASTEST)
    print(f"  floor: norm + unembedding    {t_floor[0] * 1e3:8.1f} ms   {t_floor[1]:5.1f}× forward   "
          f"fastest {t_floor[2] / fast:5.1f}×")
    print(f"  logit_lens (k=5)             {t_lens[0] * 1e3:8.1f} ms   {t_lens[1]:5.1f}× forward   "
          f"fastest {t_lens[2] / fast:5.1f}×   lens / floor {t_lens[0] / t_floor[0]:.2f}")
    print(f"  first view: last 16 positions {t_first[0] * 1e3:7.1f} ms   {t_first[1]:5.1f}× forward   "
          f"fastest {t_first[2] * 1e3:.0f} ms")
    if before is not None:
        med = statistics.median
        print(f"  before ({args.before}): {med(b for b, _, _ in both) * 1e3:.1f} ms, after "
              f"{med(a for _, a, _ in both) * 1e3:.1f} ms, before / after {med(r for _, _, r in both):.2f} "
              "(interleaved)")
    print(f"  token_trajectory             {t_traj[0] * 1e3:8.1f} ms   {t_traj[1]:5.1f}× forward")
    print(f"  fastest bare forward pass    {fast * 1e3:8.1f} ms   (\"fastest\" ratios: fastest run / this)")
    print(f"  ablate 3 heads + 3 neurons   {t_abl[0] * 1e3:8.1f} ms   {t_abl[1]:5.1f}× forward")
    print(f"  attribution (fwd + bwd)      {t_attr[0] * 1e3:8.1f} ms   {t_attr[1]:5.1f}× forward")
    print(f"  lens: {len(sizes)} chunks, largest {max(sizes) * 4 / 2**20:.1f} MB of logits at once; "
          f"naive [L+1, T, V] float32 = {naive_mb:,.0f} MB")
    print(f"  peak RSS growth during the lens: {rss_growth:,.0f} MB"
          + (f"; CUDA peak extra {cuda_extra:,.0f} MB" if cuda else ""))


if __name__ == "__main__":
    main()
