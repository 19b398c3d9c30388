"""Start-up: a fresh Python process from nothing to its first trace of the bundled model (issue 13 item 2).

    python benchmarks/startup.py [--tokens 128] [--repeats 3]

Each repeat starts a new interpreter (the bundled model's safetensors cache already built, as on every start
after the first) that times, in order: importing the engine (`import explainer`, which brings torch and
transformers), loading the bundled model, tokenizing, and tracing a `--tokens`-token prompt; then, in the same
process, the median of five bare forward passes (`model(ids)`, no hooks) of the same prompt. It prints each
phase and the whole start-up as a multiple of that bare forward pass. Target: at most 12.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

from _bench import ROOT

CHILD = r"""
import json, statistics, sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import explainer as ex
from explainer import models
t_import = time.perf_counter()
lm = models.load_model(models.BUNDLED)
t_load = time.perf_counter()
sys.path.insert(0, sys.argv[1] + "/benchmarks")
from _bench import text_of
text = text_of(lm, int(sys.argv[2]))
t_text = time.perf_counter()
tr = ex.trace(lm, text)
t_trace = time.perf_counter()
import torch
ids = torch.tensor([list(tr.token_ids)], device=lm.device)
with torch.inference_mode():
    lm.model(ids)
    times = []
    for _ in range(5):
        t = time.perf_counter()
        lm.model(ids)
        times.append(time.perf_counter() - t)
mods = sorted(m for m in sys.modules if m.split(".")[0] in ("transformers", "torch"))
print(json.dumps(dict(imports=t_import - t0, load=t_load - t_import, text=t_text - t_load, trace=t_trace - t_text,
                      total=t_trace - t0, forward=statistics.median(times), modules=len(mods))))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    runs = []
    for _ in range(args.repeats):
        out = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), str(args.tokens)], capture_output=True,
                             text=True, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    for name in ("imports", "load", "text", "trace", "total", "forward"):
        xs = [r[name] for r in runs]
        print(f"{name:8s} median {statistics.median(xs):6.2f} s   runs " + " ".join(f"{x:.2f}" for x in xs))
    ratio = [r["total"] / r["forward"] for r in runs]
    print(f"start-up / bare {args.tokens}-token forward (each run its own): median {statistics.median(ratio):.1f}x "
          f"(runs {' '.join(f'{x:.1f}' for x in ratio)}); target at most 12")


if __name__ == "__main__":
    main()
