"""How long Chromium takes to draw each chart of a page, with the margins the app now sets before drawing
(figures.common.preset_margins) against the same figures without them, in one run.

    python benchmarks/draw.py [--tokens 128] [--repeats 3] [--pages 2_Attention 4_Logit_lens ...]

Each page runs in Streamlit's AppTest on one new prompt of --tokens tokens, twice: once with preset_margins
switched off (the figures as they were), once as the app sends them. Every chart's figure JSON is then drawn
with Plotly.newPlot in a headless Chromium (plotly.js from the plotly package), --repeats times, and the median
draw time printed per chart, with the margins Plotly's automargin ended with. Without preset margins, automargin
draws a chart again each time it grows a margin for its tick labels, titles, colour bar or legend.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from _bench import ROOT

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TEXT = ("The quick brown fox jumps over the lazy dog while the children watch from the window of the old house "
        "near the river, and their grandmother tells them a story about a king who lost his crown. ")
DRAW_JS = """async ([fig, repeats]) => {
  const g = document.getElementById('g'); const times = [];
  for (let i = 0; i < repeats; i++) {
    Plotly.purge(g);
    const t = performance.now();
    await Plotly.newPlot(g, fig.data, JSON.parse(JSON.stringify(fig.layout || {})), {responsive: true});
    times.push(performance.now() - t);
  }
  const s = g._fullLayout._size;
  return [times.sort((a, b) => a - b)[Math.floor(times.length / 2)], [s.l, s.r, s.t, s.b].map(Math.round)];
}"""


def figures(page: str, prompt: str, preset: bool) -> dict[str, dict]:
    """Every chart's figure JSON (by key) as the page sends it, with or without preset margins."""
    from streamlit.testing.v1 import AppTest

    from explainer import ui

    real = ui.preset_margins
    ui.preset_margins = real if preset else (lambda fig: fig)
    try:
        at = AppTest.from_file(str(ROOT / "pages" / f"{page}.py"), default_timeout=600)
        at.query_params["prompt"] = prompt
        at.run()
        if at.exception:
            raise SystemExit(f"{page} raised: {at.exception[0].value}")
        return {c.key or c.proto.id: json.loads(c.proto.spec) for c in at.get("plotly_chart")}
    finally:
        ui.preset_margins = real


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--pages", nargs="*", default=["2_Attention", "4_Logit_lens", "7_Interventions",
                                                   "3_MLP_neurons", "5_Next_token", "0_Model_map"])
    args = ap.parse_args()
    import plotly

    import explainer as ex
    from tests import browser as br

    tok = ex.load_model("bundled").tokenizer
    prompt = tok.decode(tok("Draw. " + TEXT * (args.tokens // 30 + 2))["input_ids"][:args.tokens])
    js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    with tempfile.TemporaryDirectory() as tmp:
        html = Path(tmp) / "draw.html"
        html.write_text(f"<html><body style='margin:0'><div id=g style='width:800px'></div>"
                        f"<script src='file://{js}'></script></body></html>")
        with br.browser() as b:
            page = b.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"file://{html}")
            page.wait_for_function("() => window.Plotly")
            print(f"Plotly.newPlot in Chromium, {args.tokens} tokens, median of {args.repeats} (ms); "
                  "margins (l, r, t, b) as automargin left them")
            print(f"{'chart':26s} {'as before':>10s} {'preset':>8s}  {'ratio':>5s}  margins before -> preset")
            total = [0.0, 0.0]
            for name in args.pages:
                old, new = figures(name, prompt, False), figures(name, prompt, True)
                for key in new:
                    (t0, m0), (t1, m1) = (page.evaluate(DRAW_JS, [f[key], args.repeats]) for f in (old, new))
                    total[0] += t0
                    total[1] += t1
                    print(f"{key:26s} {t0:10.1f} {t1:8.1f}  {t0 / t1:5.2f}  {m0} -> {m1}", flush=True)
            print(f"{'all charts':26s} {total[0]:10.1f} {total[1]:8.1f}  {total[0] / total[1]:5.2f}")


if __name__ == "__main__":
    main()
