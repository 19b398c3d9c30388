"""The bundled model's first-run conversion (GGUF → safetensors cache), against a bare forward pass.

    python benchmarks/convert.py [--repeats 3] [--reference 1] [--tokens 128]

Each repeat runs a bare forward pass of `--tokens` tokens, then a whole conversion (`prepare_bundled`)
into a fresh, empty cache folder, and records their ratio (interleaved, so that load from other work on the
machine hits both sides alike). `--reference N` also times transformers' own GGUF path (the conversion
before issue 13, `convert.reference_convert`) N times, each after its own bare forward pass. Then: a cold
first load in a fresh process (import, convert, load), the manifest check (sizes only, and with SHA-256),
and a warm load from the cache.
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

from _bench import ROOT, text_of  # (also puts the repository on sys.path)


def _child() -> None:
    t = time.perf_counter()
    import explainer as ex

    ex.load_model("bundled", device="cpu")
    print(json.dumps({"load_s": time.perf_counter() - t}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--reference", type=int, default=1)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--child", action="store_true")
    args = ap.parse_args()
    if args.child:
        return _child()

    import torch

    import explainer as ex
    from explainer import convert, models

    lm = ex.load_model("bundled", device="cpu")
    ids = torch.tensor([lm.tokenizer(text_of(lm, args.tokens))["input_ids"]])

    def bare() -> float:
        t = time.perf_counter()
        with torch.inference_mode():
            lm.model(input_ids=ids, use_cache=False)
        return time.perf_counter() - t

    def using_cache(folder: str | None) -> None:
        if folder is None:
            os.environ.pop("EXPLAINER_CACHE", None)
        else:
            os.environ["EXPLAINER_CACHE"] = folder

    own = os.environ.get("EXPLAINER_CACHE")

    def fresh_conversion() -> float:
        with tempfile.TemporaryDirectory() as cache:
            using_cache(cache)
            try:
                t = time.perf_counter()
                models.prepare_bundled()
                return time.perf_counter() - t
            finally:
                using_cache(own)

    def reference() -> float:
        with tempfile.TemporaryDirectory() as folder:
            t = time.perf_counter()
            convert.reference_convert(models.bundled_gguf(), folder)
            return time.perf_counter() - t

    bare()
    first = fresh_conversion()          # pays the first imports of gguf and the tokenizer code
    fwd, new, new_r, ref, ref_r = [], [], [], [], []
    for _ in range(args.repeats):
        f, c = bare(), fresh_conversion()
        fwd.append(f), new.append(c), new_r.append(c / f)
    for _ in range(args.reference):
        f, c = bare(), reference()
        fwd.append(f), ref.append(c), ref_r.append(c / f)

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as cache:
        f0 = bare()
        cold = json.loads(subprocess.run([sys.executable, __file__, "--child"], env={**env, "EXPLAINER_CACHE": cache},
                                         capture_output=True, text=True, check=True).stdout.splitlines()[-1])
        f1 = bare()
        warm = json.loads(subprocess.run([sys.executable, __file__, "--child"], env={**env, "EXPLAINER_CACHE": cache},
                                         capture_output=True, text=True, check=True).stdout.splitlines()[-1])
        using_cache(cache)
        target = models.bundled_cache_dir()
        shallow, deep = [], []
        for _ in range(3):
            t = time.perf_counter()
            models._cache_ok(target, deep=False)
            shallow.append(time.perf_counter() - t)
            models._verified.clear()
            t = time.perf_counter()
            models._cache_ok(target, deep=True)
            deep.append(time.perf_counter() - t)
        using_cache(own)

    med = statistics.median
    print(f"bundled model, {args.tokens}-token bare forward pass: median {med(fwd) * 1e3:.0f} ms "
          f"(torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f})")
    print(f"  conversion, first in this process      {first:6.1f} s")
    print(f"  conversion (prepare_bundled), median   {med(new):6.1f} s   {med(new_r):5.1f}× forward   "
          f"(each: {', '.join(f'{r:.1f}' for r in new_r)})")
    print(f"  fastest conversion / fastest forward   {min(new):6.1f} s   {min(new) / min(fwd):5.1f}× "
          f"{min(fwd) * 1e3:.0f} ms (the least disturbed runs, on a loaded machine)")
    if ref:
        print(f"  transformers' GGUF path, median        {med(ref):6.1f} s   {med(ref_r):5.1f}× forward   "
              f"(each: {', '.join(f'{r:.1f}' for r in ref_r)})")
        print(f"  transformers' GGUF path, fastest       {min(ref):6.1f} s   {min(ref) / min(fwd):5.1f}× "
              "fastest forward")
    print(f"  cold first load, fresh process         {cold['load_s']:6.1f} s   {cold['load_s'] / f0:5.1f}× forward")
    print(f"  warm load from the cache, fresh process{warm['load_s']:6.1f} s   {warm['load_s'] / f1:5.1f}× forward")
    print(f"  manifest check: sizes {med(shallow) * 1e3:.2f} ms; sizes + SHA-256 {med(deep) * 1e3:.0f} ms "
          "(once per process)")


if __name__ == "__main__":
    main()
