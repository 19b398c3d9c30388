"""Training speed of the tiny language model lab on the CPU.

    python benchmarks/makemore.py [--repeats 5] [--steps 2000]

Prints, for a few model sizes, the median over repeats of training steps per second (minibatch SGD,
no evaluation), the same with the page's evaluation every 200 steps (whole train and dev splits), the
ratio of one CPU thread to all threads measured in the same run, and the wall time of the page's other
jobs: the default training run (3,000 steps), the learning-rate finder and the overfitting demo.
All-thread rates are measured over a fifth of the steps (they are the slow ones on small matrices).
"""

from __future__ import annotations

import argparse
import platform

from _bench import median_seconds  # (also puts the repository on sys.path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=2000)
    args = ap.parse_args()

    import torch

    from explainer import makemore as mm

    all_threads = torch.get_num_threads()
    print(f"torch {torch.__version__} · {platform.processor() or platform.machine()} · "
          f"{all_threads} torch threads · median of {args.repeats} runs, {args.steps} steps each")
    data = {b: mm.load_data(b, seed=42) for b in (3, 8)}
    print(f"train split: {data[3].train.y.shape[0]:,} examples, dev: {data[3].dev.y.shape[0]:,}")

    def steps_per_s(cfg: mm.MLPConfig, batch: int, threads: int, eval_every: int | None = None) -> float:
        # all threads can be ~20x slower on tiny matrices: a rate needs fewer steps there
        n = args.steps if threads == 1 else max(100, args.steps // 5)

        def run():
            model = mm.CharMLP(cfg, seed=0)
            for _ in mm.train(model, data[cfg.block_size], steps=n, lr=0.1, batch_size=batch,
                              eval_every=eval_every or n, threads=threads):
                pass
        return n / median_seconds(run, args.repeats)

    print()
    print(f"{'model (context, embedding, hidden)':38s} {'params':>7s} {'batch':>5s} "
          f"{'1 thread':>10s} {'all':>10s} {'1/all':>6s} {'+eval/200':>10s}")
    for cfg, batch in [(mm.MLPConfig(3, 2, 100), 32), (mm.MLPConfig(3, 10, 200), 32),
                       (mm.MLPConfig(3, 10, 200), 128), (mm.MLPConfig(8, 24, 500), 128)]:
        one = steps_per_s(cfg, batch, 1)
        many = steps_per_s(cfg, batch, all_threads)
        ev = steps_per_s(cfg, batch, 1, eval_every=200)
        label = f"({cfg.block_size}, {cfg.n_embd}, {cfg.n_hidden})"
        print(f"{label:38s} {cfg.n_params:>7,} {batch:>5d} {one:>8,.0f}/s {many:>8,.0f}/s {one / many:>6.2f} "
              f"{ev:>8,.0f}/s")

    print()
    cfg = mm.MLPConfig(3, 2, 100)
    jobs = {
        "page default: 3,000 steps, eval every 200": lambda: mm.train_to_end(
            mm.CharMLP(cfg, seed=0), data[3], steps=3000, lr=0.1, batch_size=32, eval_every=200),
        "learning-rate finder (300 steps)": lambda: mm.lr_finder(cfg, data[3]),
        "overfitting demo (60 names, 300 hidden, 600 steps)": lambda: mm.overfit_demo(data[3]),
        "sample 20 names": lambda: mm.sample(mm.CharMLP(cfg, seed=0), 20, seed=0),
    }
    for name, fn in jobs.items():
        print(f"{name:52s} {median_seconds(fn, args.repeats):8.3f} s")
    final = mm.train_to_end(mm.CharMLP(cfg, seed=0), data[3], steps=3000, lr=0.1, batch_size=32, eval_every=3000)
    print(f"\ndev loss after the page's default run: {final[-1].dev_loss:.3f} (uniform guess: ln 27 = "
          f"{mm.UNIFORM_LOSS:.3f})")


if __name__ == "__main__":
    main()
