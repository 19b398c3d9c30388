"""Word vectors: analogy time over a whole vocabulary, and the Embeddings page's first draw.

    python benchmarks/embeddings.py [--repeats 15] [--page-repeats 3]

1. king − man + woman with `explainer.embeddings.analogy` on the bundled model's input embeddings
   (49,152 × 576): the whole call (words -> tokens, the sum, cosine against every row, top 10).
2. The ranking step alone (`top_cosine`: one matrix-vector product over cached row norms, then a
   partial sort) on a random 50,257 × 768 float32 matrix, GPT-2 small's vocabulary and width; beside
   it, in the same run, the naive way that normalises the whole matrix on every query, and the ratio.
   Target: an analogy in < 200 ms on a CPU for a 50k vocabulary.
3. The page in Streamlit's AppTest: the first draw in a fresh process (model from the safetensors
   cache, GloVe loaded, every tab's default computed, four traces for the in-context tab), then a
   rerun with everything cached (median).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

from _bench import ROOT, median_ms, median_seconds, seconds  # (also puts the repository on sys.path)


def bench_analogy(repeats: int) -> None:
    import explainer as ex
    from explainer import vectors

    lm = ex.load_model("bundled", device="cpu")
    first = seconds(vectors.embedding_matrix, lm) * 1000
    v, d = vectors.embedding_matrix(lm).weight.shape
    res = vectors.analogy(lm, ["king", "woman"], ["man"], k=10)
    ms = median_ms(lambda: vectors.analogy(lm, ["king", "woman"], ["man"], k=10), repeats)
    print(f"bundled model ({v:,} × {d}): king − man + woman → {res.best.text!r}")
    print(f"  analogy, whole call (median of {repeats}):       {ms:7.1f} ms")
    print(f"  one-off matrix to numpy + row norms:          {first:7.1f} ms   (once per model)")


def bench_random(repeats: int) -> None:
    import numpy as np

    from explainer.vectors import top_cosine

    rng = np.random.default_rng(0)
    w = rng.standard_normal((50_257, 768), dtype=np.float32)         # [V, D]
    norms = np.linalg.norm(w, axis=1)                                 # [V] cached once, as the engine does
    t3 = w[[1, 2, 3]]                                                 # [3, D]
    excl = [1, 2, 3]

    def ours():
        return top_cosine(w, norms, t3[0] - t3[1] + t3[2], 10, excl)

    def naive():
        target = t3[0] - t3[1] + t3[2]                                # [D]
        wn = w / np.linalg.norm(w, axis=1, keepdims=True)             # [V, D] the whole matrix again
        cos = wn @ (target / np.linalg.norm(target))                  # [V]
        cos[excl] = -np.inf
        return np.argsort(-cos)[:10]

    assert list(ours()[0]) == list(naive())
    a, b = [], []
    ours(), naive()
    for _ in range(repeats):  # interleaved, so both see the same machine load
        a.append(seconds(ours))
        b.append(seconds(naive))
    ma, mb = statistics.median(a) * 1000, statistics.median(b) * 1000
    print(f"random 50,257 × 768 (GPT-2 small's shape), median of {repeats}:")
    print(f"  top-10 cosine, cached norms + argpartition:    {ma:7.1f} ms   (target < 200 ms)")
    print(f"  naive: normalise all rows, full argsort:       {mb:7.1f} ms   ({mb / ma:.1f}× slower)")


def _page_child(repeats: int) -> None:
    from streamlit.testing.v1 import AppTest

    os.environ["HF_HUB_OFFLINE"] = "1"
    at = AppTest.from_file(str(ROOT / "pages" / "1_Embeddings.py"), default_timeout=600)
    first = seconds(at.run)
    assert not at.exception and not at.error, [e.message for e in at.exception]
    rerun = median_seconds(at.run, repeats, warmup=False)
    print(json.dumps({"first_s": first, "rerun_s": rerun, "charts": len(at.get("plotly_chart"))}))


def bench_page(repeats: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, __file__, "--page-child", "--page-repeats", str(repeats)], env=env,
                       capture_output=True, text=True, check=True, cwd=ROOT)
    out = json.loads(r.stdout.strip().splitlines()[-1])
    print(f"Embeddings page in AppTest (fresh process, bundled model already converted), {out['charts']} charts:")
    print(f"  first draw (model load, GloVe, 4 traces, all tabs): {out['first_s']:6.2f} s")
    print(f"  rerun with everything cached (median of {repeats}):    {out['rerun_s']:6.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--page-repeats", type=int, default=3)
    ap.add_argument("--page-child", action="store_true")
    args = ap.parse_args()
    if args.page_child:
        return _page_child(args.page_repeats)
    import torch

    print(f"CPU threads: {torch.get_num_threads()}  (os.cpu_count() = {os.cpu_count()})")
    bench_analogy(args.repeats)
    bench_random(args.repeats)
    bench_page(args.page_repeats)


if __name__ == "__main__":
    main()
