"""Capture overhead, load times and peak memory for the bundled model.

    python benchmarks/capture.py [--device cpu|cuda] [--repeats 7]

Prints, at 16, 128 and 512 tokens, the median of (capture time / bare forward time) measured
interleaved in one run (target ≤ 1.10), in steady use and with every captured array fresh from the
OS; the cold load (GGUF de-quantisation into an empty cache) and warm load (from the safetensors
cache) in fresh processes; and peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from _bench import ROOT, rss_mb, text_of  # (also puts the repository on sys.path)


def _child(mode: str, device: str) -> None:
    """Run in a fresh process: load (and for 'peak', trace 512 tokens), print JSON."""
    import torch

    import explainer as ex

    t = time.perf_counter()
    lm = ex.load_model("bundled", device=device)
    load_s = time.perf_counter() - t
    out = {"load_s": load_s, "rss_after_load_mb": rss_mb()}
    if mode == "peak":
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        ex.trace(lm, text_of(lm, 512))
        out["rss_peak_mb"] = rss_mb()
        if device.startswith("cuda"):
            out["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(out))


class _Fresh:
    """Stands in for the pool: every array is new memory."""

    @staticmethod
    def take(shape):
        import numpy as np
        return np.empty(shape, dtype=np.float32)


def _spawn(mode: str, device: str, env: dict) -> dict:
    r = subprocess.run([sys.executable, __file__, "--child", mode, "--device", device],
                       env=env, capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--child")
    args = ap.parse_args()
    if args.child:
        return _child(args.child, args.device)

    import torch

    import explainer as ex
    import explainer.capture as capture_mod

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as cache:
        cold = _spawn("load", args.device, {**env, "EXPLAINER_CACHE": cache})
        warm = _spawn("load", args.device, {**env, "EXPLAINER_CACHE": cache})
    peak = _spawn("peak", args.device, env)

    lm = ex.load_model("bundled", device=args.device)
    sync = torch.cuda.synchronize if lm.device.type == "cuda" else (lambda: None)
    print(f"device {lm.device}, dtype {lm.dtype}, torch threads {torch.get_num_threads()}")
    print(f"cold load (de-quantise GGUF + write cache): {cold['load_s']:.1f} s")
    print(f"warm load (from safetensors cache):         {warm['load_s']:.1f} s")
    cuda = f"; CUDA peak {peak['cuda_peak_mb']:.0f} MB" if "cuda_peak_mb" in peak else ""
    print(f"peak RSS: after load {peak['rss_after_load_mb']:.0f} MB, after a 512-token capture "
          f"{peak['rss_peak_mb']:.0f} MB{cuda}")
    print("median ratio: capture / bare forward in steady use, where a dropped trace's memory is reused;")
    print("fresh memory: the same with every array new from the OS (a first capture, or all traces kept)")
    print(f"{'tokens':>6} {'bare forward':>13} {'capture':>9} {'median ratio':>13} {'fresh memory':>15}")
    pooled = capture_mod.host_buffers
    for n in (16, 128, 512):
        text = text_of(lm, n)
        ids = torch.tensor([lm.tokenizer(text)["input_ids"]], device=lm.device)

        def bare(ids=ids):
            with torch.inference_mode():
                lm.model(input_ids=ids, use_cache=False)
            sync()

        def capture(text=text):
            ex.trace(lm, text)
            sync()

        bare(), capture()  # warm-up
        ratios, tb, tc, fresh = [], [], [], []
        reps = args.repeats * (3 if n <= 16 else 1)
        for _ in range(reps):  # interleaved: drift in machine load hits every side alike
            t0 = time.perf_counter()
            bare()
            t1 = time.perf_counter()
            capture()
            t2 = time.perf_counter()
            capture_mod.host_buffers = _Fresh()
            capture()
            t3 = time.perf_counter()
            capture_mod.host_buffers = pooled
            tb.append(t1 - t0)
            tc.append(t2 - t1)
            ratios.append((t2 - t1) / (t1 - t0))
            fresh.append((t3 - t2) / (t1 - t0))
        print(f"{n:>6} {statistics.median(tb) * 1e3:>10.1f} ms {statistics.median(tc) * 1e3:>6.1f} ms "
              f"{statistics.median(ratios):>13.3f} {statistics.median(fresh):>15.3f}")


if __name__ == "__main__":
    main()
