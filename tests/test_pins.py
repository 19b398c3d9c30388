"""Nothing a session keeps between its reruns holds a shared result: once the results cache lets a trace go,
it is freed, whoever opened it.

A session keeps its last run's widget callbacks, fragments and deferred downloads until its next run (for an
idle student, the rest of the lesson). A callback defined in a page holds the page's globals; a fragment or a
callback holds its arguments; a download holds its closure. If any of them held a trace, every idle session
would keep one alive outside the memory budget: 30 students, 30 traces the cache can no longer evict (what
benchmarks/load.py measured with long prompts, BENCHMARKS.md). So pages keep results in locals, and what
outlives a run names its results (model, prompt, token limit) and asks the cache for them again."""

from __future__ import annotations

import gc
import weakref

import pytest

from explainer import budget, glove, heap

UNTRACED = {"1_Embeddings", "6_Generate", "8_Anatomy", "9_Tiny_LM_lab"}   # no trace of the prompt: their own results
PAGES = ["0_Model_map", "1_Embeddings", "2_Attention", "3_MLP_neurons", "4_Logit_lens", "5_Next_token",
         "6_Generate", "7_Interventions", "8_Anatomy", "9_Tiny_LM_lab"]


def _held_results() -> list[tuple[tuple, weakref.ref]]:
    refs = []
    for key in budget.RESULTS.keys():
        value = budget.RESULTS._items[key][0]
        try:
            refs.append((key, weakref.ref(value)))
        except TypeError:          # a tuple or a dict of arrays: its arrays
            refs += [(key, weakref.ref(a)) for a in budget.arrays_in(value) if hasattr(a, "__array__")]
    return refs


@pytest.mark.parametrize("page", PAGES)
def test_a_session_between_reruns_holds_no_result_the_cache_let_go(page, offline, bundled):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import page_ok

    budget.RESULTS.clear()
    at = AppTest.from_file(f"../pages/{page}.py", default_timeout=300)
    at.query_params["prompt"] = "The cat sat on the mat because the cat was"
    at.run()
    page_ok(at)
    refs = _held_results()
    assert any(k[0] == "trace" for k, _ in refs) or page in UNTRACED
    budget.RESULTS.clear()          # the cache lets every result go; the session (`at`) is still open
    glove._load.cache_clear()       # and so does the engine's own cache of the GloVe file
    gc.collect()
    alive = [r() for _, r in refs if r() is not None]
    lines: list[str] = []
    if alive:
        heap._tree(gc.get_referrers(alive[0]), {id(refs), id(alive)}, lines, 6, "  ")
    pinned = [k[0] for k, r in refs if r() is not None]
    del alive
    assert not pinned, f"{page} keeps {pinned} alive after its run; held by\n" + "\n".join(lines)
    assert at is not None           # (the session stayed open until here)
