"""Lessons: the format's checks (a table of malformed files and their messages), the built-in lessons (they
validate, fit the bundled model, and their answers are the engine's), and a lesson on a tiny random model
answering from that model."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import torch

import explainer as ex
from explainer import (
    anatomy,
    content,
    generation,
    heads,
    interventions,
    lens,
    lessons,
    links,
    makemore,
    sampling,
    vectors,
)
from explainer.errors import ExplainerError, LessonError
from explainer.tokens import encode

ROOT = Path(__file__).resolve().parents[1]
STUDENT_PAGE = "11_Join.py"     # the class poll's student page (streamlit_app.JOIN): hidden, and no lesson's view
PAGES = {p.stem.split("_", 1)[1]: p for p in sorted((ROOT / "pages").glob("*.py"),
                                                    key=lambda p: int(p.stem.split("_", 1)[0]))
         if p.name != STUDENT_PAGE}

GOOD = '''
title = "A lesson"
summary = "One line."
level = "ages 14–18"
minutes = 20
model = "bundled"

[[steps]]
title = "Intro"
view = "Attention"
state = { prompt = "The cat sat on the", layer = 1, head = 0 }
narration = "First sentence. Second sentence."

[steps.question]
text = "What next?"
kind = "next_token"
'''


def _with(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


# -- the format ----------------------------------------------------------------------------------------------

def test_a_good_lesson_parses_with_its_state_as_a_link_writes_it():
    lesson = lessons.parse(GOOD, "a-lesson")
    (step,) = lesson.steps
    assert (lesson.name, lesson.title, lesson.minutes, step.number, step.view) == ("a-lesson", "A lesson", 20, 1,
                                                                                     "Attention")
    assert step.state == {"prompt": "The cat sat on the", "layer": "1", "head": "0"}
    assert step.question.kind == "next_token"
    assert step.question.inputs["prompt"] == "The cat sat on the"     # defaults to the step's prompt
    assert step.question.given == frozenset()
    assert lesson.step(0) is step and lesson.step(99) is step         # clamped


def test_values_are_written_as_links_write_them_and_long_prompts_are_compressed():
    assert [lessons.written(v) for v in (True, False, 5, 1.0, 0.95, "x")] == ["1", "0", "5", "1", "0.95", "x"]
    long = "word " * 200
    lesson = lessons.parse(_with('prompt = "The cat sat on the"', f'prompt = "{long}"'), "long")
    link = lesson.steps[0].link()
    assert link["prompt"].startswith("zlib:") and links.decode_prompt(link["prompt"]) == (long, None)
    assert lesson.steps[0].state["prompt"] == long


def test_question_inputs_follow_the_steps_state():
    text = GOOD.replace('view = "Attention"', 'view = "Next_token"').replace(
        "layer = 1, head = 0", "temperature = 0.5, top_k = 3, top_p = 0.8, seed = 9").replace(
        'kind = "next_token"', 'kind = "sample_with_seed"\nmax_new = 4')
    q = lessons.parse(text, "x").steps[0].question
    assert q.inputs == {"prompt": "The cat sat on the", "seed": 9, "temperature": 0.5, "top_k": 3, "top_p": 0.8,
                        "max_new": 4, "stop": ""}
    emb = lessons.parse(GOOD.replace('view = "Attention"', 'view = "Embeddings"').replace(
        'prompt = "The cat sat on the", layer = 1, head = 0', 'tab = "analogies", an_preset = "cats − cat + dog"')
        .replace('kind = "next_token"', 'kind = "analogy"'), "x").steps[0].question
    assert (emb.inputs["a"], emb.inputs["b"], emb.inputs["c"], emb.inputs["exclude_variants"]) == (
        "cats", "cat", "dog", True)
    gen = lessons.parse(GOOD.replace('view = "Attention"', 'view = "Generate"').replace(
        'prompt = "The cat sat on the", layer = 1, head = 0', 'template = "translate"'), "x").steps[0]
    assert gen.question.inputs["prompt"] == content.TEMPLATES["translate"].text == gen.prompt


# Each malformed file and a fragment its message must contain (besides the file name).
MALFORMED = [
    ("syntax", GOOD.replace('title = "A lesson"', 'title = "A lesson'), ["not valid TOML", "line 2"]),
    ("lesson field", GOOD.replace('title = "A lesson"', 'tittle = "A lesson"'), ["`tittle`", "not a field"]),
    ("missing title", GOOD.replace('title = "A lesson"\n', ""), ["`title`: missing"]),
    ("summary lines", _with('summary = "One line."', 'summary = """One\nline."""'), ["`summary`", "one line"]),
    ("minutes", _with("minutes = 20", 'minutes = "twenty"'), ["`minutes`", "1 to 240"]),
    ("minutes range", _with("minutes = 20", "minutes = 0"), ["`minutes`"]),
    ("missing model", _with('model = "bundled"\n', ""), ["`model`: missing"]),
    ("no steps", GOOD.split("[[steps]]")[0], ["`steps`: missing"]),
    ("step field", _with('narration = "', 'naration = "x"\nnarration = "'), ["step 1 (“Intro”)", "`naration`"]),
    ("missing narration", _with('narration = "First sentence. Second sentence."\n', ""),
     ["step 1 (“Intro”)", "`narration`: missing"]),
    ("empty narration", _with('narration = "First sentence. Second sentence."', 'narration = "  "'),
     ["`narration`: is empty"]),
    ("long narration", _with("First sentence. Second sentence.", "word " * 400), ["`narration`", "at most 1,500"]),
    ("missing view", _with('view = "Attention"\n', ""), ["step 1 (“Intro”)", "`view`: missing"]),
    ("unknown view", _with('view = "Attention"', 'view = "Atention"'),
     ["step 1 (“Intro”)", "`view`", "'Atention' is not a view", "Next_token"]),
    ("unknown parameter", _with("layer = 1", "layr = 1"), ["`state.layr`", "not a URL parameter"]),
    ("parameter of another view", _with("layer = 1", 'tab = "map"'),
     ["`state.tab`", "not used by the Attention view",
      "It reads: att_window, compare, head, layer, max_tokens, prompt"]),
    ("forbidden model", _with("layer = 1", 'model = "gpt2"'), ["`state.model`", "lesson's own `model` field"]),
    ("forbidden steps", _with("layer = 1", 'steps = "1,2"'), ["`state.steps`"]),
    ("negative layer", _with("layer = 1", "layer = -1"), ["`state.layer`", "not a whole number"]),
    ("bad max_tokens", _with("layer = 1", "max_tokens = 5000"), ["`state.max_tokens`", "from 8 to 4096"]),
    ("state not a table", _with('state = { prompt = "The cat sat on the", layer = 1, head = 0 }', 'state = "x"'),
     ["`state`", "table"]),
    ("state list value", _with("layer = 1", "layer = [1]"), ["`state.layer`"]),
    ("empty prompt", _with('prompt = "The cat sat on the"', 'prompt = " "'), ["`state.prompt`: is empty"]),
    ("unknown kind", _with('kind = "next_token"', 'kind = "next_word"'), ["`question.kind`", "'next_word'"]),
    ("missing kind", _with('kind = "next_token"\n', ""), ["`question.kind`: missing"]),
    ("missing question text", _with('text = "What next?"\n', ""), ["`question.text`: missing"]),
    ("question input", _with('kind = "next_token"', 'kind = "next_token"\nwords = "x"'), ["`question.words`"]),
    ("question range", _with('kind = "next_token"', 'kind = "next_token"\ntemperature = 9'),
     ["`question.temperature`", "out of range"]),
    ("question type", _with('kind = "next_token"', 'kind = "next_token"\ntop_k = "ten"'), ["`question.top_k`"]),
    ("missing input", _with('kind = "next_token"', 'kind = "model_size"'), ["`question.what`: missing"]),
    ("bad choice input", _with('kind = "next_token"', 'kind = "model_size"\nwhat = "size"'),
     ["`question.what`", "'size' is not one of"]),
    ("bad heads input", _with('kind = "next_token"', 'kind = "ablation_effect"\nheads = ["top"]'),
     ["`question.heads`", "'top' is not a head"]),
    ("missing sampling input", GOOD.replace('kind = "next_token"', 'kind = "sample_with_seed"'),
     ["`question.seed`: missing", "state.seed"]),
    ("try", _with('narration = "', 'try = "one"\nnarration = "'), ["`try`", "list"]),
    ("too many tries", _with('narration = "', f"try = {['x'] * 9}\nnarration = \"".replace("'", '"')),
     ["`try`", "at most 8"]),
]


def _step(n: int) -> str:
    return f'[[steps]]\ntitle = "S{n}"\nview = "Home"\nnarration = "One. Two."\n'


def _steps(n: int) -> str:
    return GOOD.split("[[steps]]")[0] + "\n".join(_step(i) for i in range(n))


MALFORMED += [
    ("too many steps", _steps(lessons.MAX_STEPS + 1), ["`steps`", "has 31 steps", "1 to 30"]),
    ("zero steps", GOOD.split("[[steps]]")[0] + "steps = []", ["`steps`", "has 0 steps"]),
    ("second step", _steps(1) + _step(1).replace('view = "Home"', 'view = "Home"\nstate = { layer = 1 }')
     .replace("S1", "Second"), ["step 2 (“Second”)", "`state.layer`", "not used by the Home view"]),
    ("tab of another view", _steps(0) + _step(0).replace('view = "Home"', 'view = "Embeddings"\nstate = '
                                                          '{ tab = "maps" }'), ["`state.tab`", "'maps' is not a tab"]),
    ("choice", _steps(0) + _step(0).replace('view = "Home"', 'view = "Embeddings"\nstate = { an_preset = "x" }'),
     ["`state.an_preset`", "is not one of"]),
    ("flag", _steps(0) + _step(0).replace('view = "Home"', 'view = "Embeddings"\nstate = { map_align = "maybe" }'),
     ["`state.map_align`", "not a flag"]),
    ("heads", _steps(0) + _step(0).replace('view = "Home"', 'view = "Interventions"\nstate = '
                                           '{ ablate_heads = "L1.X3" }'), ["`state.ablate_heads`", "not a head"]),
    ("window", _steps(0) + _step(0).replace('view = "Home"', 'view = "Logit_lens"\nstate = { window = "3" }'),
     ["`state.window`", "first,last"]),
    ("lab choice", _steps(0) + _step(0).replace('view = "Home"', 'view = "Tiny_LM_lab"\nstate = { lab_embd = 7 }'),
     ["`state.lab_embd`", "is not one of: 2, 3"]),
    ("oversized", GOOD + "# " + "x" * lessons.MAX_FILE_BYTES, ["`file`", "at most 64 KB"]),
    ("section of another view", _steps(0) + _step(0).replace('view = "Home"', 'view = "Home"\nsection = "head"'),
     ["`section`", "'head' is not a section of Home", "tokens, prediction"]),
    ("section list", _steps(0) + _step(0).replace('view = "Home"', 'view = "Home"\nsection = ["tokens", 3]'),
     ["`section`", "a section's name or a list"]),
    ("control of another view", _steps(0) + _step(0).replace('view = "Home"', 'view = "Home"\ncontrols = ["layer"]'),
     ["`controls`", "'layer' is not a control of Home"]),
]


@pytest.mark.parametrize("case,text,fragments", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_lesson_names_the_file_the_step_and_the_field(case, text, fragments):
    with pytest.raises(LessonError) as e:
        lessons.parse(text, "bad")
    msg = str(e.value)
    assert msg.startswith("bad.toml"), msg
    for f in fragments:
        assert f in msg, (f, msg)
    assert isinstance(e.value, ExplainerError)


def test_a_file_name_that_cannot_go_in_a_link_is_refused():
    with pytest.raises(LessonError, match="file name"):
        lessons.parse(GOOD, "my lesson?")


def test_load_all_keeps_going_past_bad_files(tmp_path):
    (tmp_path / "good.toml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "early.toml").write_text(GOOD.replace("minutes = 20", "minutes = 20\norder = 1"), encoding="utf-8")
    (tmp_path / "broken.toml").write_text(GOOD.replace('view = "Attention"', 'view = "Nowhere"'), encoding="utf-8")
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe\x00")
    (tmp_path / "huge.toml").write_text("#" * (lessons.MAX_FILE_BYTES + 1), encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a lesson", encoding="utf-8")
    got = lessons.load_all(tmp_path)
    assert [lesson.name for lesson in got.lessons] == ["early", "good"]     # by order, then by name
    assert sorted(e.source for e in got.errors) == ["binary.toml", "broken.toml", "huge.toml"]
    assert any("UTF-8" in str(e) for e in got.errors) and any("64 KB" in str(e) for e in got.errors)
    assert got.get("good") is not None and got.get("missing") is None
    assert lessons.load_all(tmp_path / "nowhere") == lessons.Loaded((), ())


# -- the tables behind the checks agree with the app ---------------------------------------------------------

def test_views_are_the_apps_page_urls():
    assert lessons.VIEWS == ("Home", *PAGES)
    assert set(lessons.VIEW_PARAMS) == set(lessons.VIEWS)
    for name in ("Attention", "Next_token", "MLP_neurons", "Logit_lens", "Embeddings", "Generate", "Interventions",
                 "Anatomy", "Tiny_LM_lab"):
        assert f"`/{name}`" in (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")


def _calls(path: Path):
    """(function name, args, keywords) of every ui.<widget>(...) / _preset(...) call in a page."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "ui":
                yield f.attr, node.args, {k.arg: k.value for k in node.keywords}
            elif isinstance(f, ast.Name) and f.id == "_preset":
                yield "select", node.args, {}


def _const(node):
    """The value of a constant expression (2**31 - 1 too), or None."""
    try:
        return eval(compile(ast.Expression(node), "<page>", "eval"), {"__builtins__": {}})  # noqa: S307
    except Exception:  # noqa: BLE001 - a name: not a constant
        return None


WIDGETS = {"slider", "number", "select", "flag", "text", "many", "range_slider", "linked_number", "link_value"}


def test_each_views_parameters_are_the_names_its_page_reads():
    """VIEW_PARAMS against the pages' own ui calls (and the home page's), less the names a lesson cannot set."""
    sources = {"Home": ROOT / "streamlit_app.py", **PAGES}
    for view, path in sources.items():
        read = set()
        for fn, args, kw in _calls(path):
            if fn in WIDGETS and args and isinstance(args[0], ast.Constant):
                read.add(args[0].value)
            if fn in ("traced_page", "prompt_box"):
                read.add("prompt")
                if _const(kw.get("compare")) is True:
                    read.add("compare")          # the page's compare mode: its second prompt
            if fn == "tabs":
                read.add("tab")
        assert read - set(lessons.FORBIDDEN) == set(lessons.VIEW_PARAMS[view]), view


def test_value_rules_are_the_pages_ranges_and_choices():
    """Every literal range or option list a page gives a widget is the rule a lesson's value is checked with."""
    checked = 0
    for path in [*PAGES.values(), ROOT / "explainer" / "ui.py"]:
        for fn, args, kw in _calls(path):
            if not args or not isinstance(args[0], ast.Constant) or args[0].value not in lessons.RULES:
                continue
            name, rule = args[0].value, lessons.RULES[args[0].value]
            if fn in ("slider", "number") and len(args) >= 4:
                lo, hi = _const(args[2]), _const(args[3])
                if lo is not None and hi is not None:
                    assert (rule.kind, rule.lo, rule.hi) == ("number", lo, hi), name
                    checked += 1
            if fn == "select" and len(args) >= 3 and isinstance(args[2], ast.List):
                opts = _const(args[2])
                if opts is not None:
                    show = (lambda r: f"{r:g}") if "show" in kw else str
                    assert rule.options == tuple(show(o) for o in opts), name
                    checked += 1
            if fn == "tabs":
                assert set(_const(args[0])) == set(lessons.VIEW_TABS[Path(path).stem.split("_", 1)[1]])
    assert lessons.RULES["max_tokens"] == lessons._num(8, 4096)     # the sidebar's, in ui.py
    assert checked >= 25, checked


def test_every_link_name_has_a_rule():
    assert set(lessons.RULES) | set(lessons.FORBIDDEN) == set(links.NAMES)


def test_a_lesson_cannot_set_a_poll_room():
    assert "room" in links.PAGE and "room" in lessons.FORBIDDEN
    assert f'"{STUDENT_PAGE}"' in (ROOT / "streamlit_app.py").read_text(encoding="utf-8").replace("pages/", "")
    with pytest.raises(LessonError, match="`state.room`: cannot be set by a lesson"):
        lessons.parse(GOOD.replace("layer = 1", 'room = "ABCDE"'), "x")


# -- the built-in lessons ------------------------------------------------------------------------------------

BUILTIN = lessons.load_all()


def _sentences(markdown: str) -> int:
    text = re.sub(r"\b(e\.g|i\.e|etc|vs|Mr|Mrs)\.", "", markdown)
    return len(re.findall(r"[.!?](?=\s|$)", text.strip()))


def test_the_built_in_lessons_validate():
    assert BUILTIN.errors == ()
    assert len(BUILTIN.lessons) >= 6
    titles = {lesson.title for lesson in BUILTIN.lessons}
    assert {"How a GPT writes, one token at a time", "Meaning as direction: king − man + woman",
            "Temperature, top-k and top-p, live", "A language model is two files",
            "Before GPT: train a tiny language model", "Heads that copy: the induction head"} <= titles
    for lesson in BUILTIN.lessons:
        assert 6 <= len(lesson.steps) <= 15, lesson.name
        assert lesson.model == "bundled"
        for s in lesson.steps:
            assert 2 <= _sentences(s.narration) <= 6, (lesson.name, s.number, _sentences(s.narration))
        assert sum(s.question is not None for s in lesson.steps) >= 3, lesson.name


def test_the_built_in_lessons_fit_the_bundled_model_and_their_answers_are_the_engines(bundled, capsys):
    memo: dict = {}
    seen = set()
    for lesson in BUILTIN.lessons:
        assert lessons.validate_for(lesson, bundled) == (), lesson.name
        with capsys.disabled():
            print(f"\n== {lesson.title} ({len(lesson.steps)} steps)")
        for s in lesson.steps:
            if s.question is None:
                continue
            a = lessons.answer(s.question, bundled, memo)
            seen.add(a.kind)
            with capsys.disabled():
                print(f"  {s.number}. {s.question.text}\n     → {a.text}")
            _check_cheap(bundled, s.question, a, memo)
    assert {"next_token", "analogy", "induction_head", "lens_settles", "ablation_effect", "sample_with_seed",
            "parameter_count"} <= seen


def _check_cheap(lm, q, a, memo) -> None:
    """A built-in answer on the bundled model against the engine, where the engine call is cheap (the tiny-model
    test below checks every kind against a fresh engine call)."""
    i = q.inputs
    if q.kind in ("next_token", "tokens_kept"):
        if ("plain", i["prompt"]) not in memo:     # a plain forward pass, once per prompt
            with torch.inference_mode():
                ids = torch.tensor([encode(lm, i["prompt"]).ids])
                memo[("plain", i["prompt"])] = lm.model(input_ids=ids).logits[0, -1].float().numpy()
        logits = memo[("plain", i["prompt"])]
        dist = sampling.probabilities(logits, i["temperature"], i["top_k"], i["top_p"])
        if q.kind == "next_token":
            assert a.numbers["token_id"] == dist.argmax
            assert a.numbers["prob"] == pytest.approx(dist.probs[dist.argmax], abs=1e-4)
        else:
            assert a.numbers["n_kept"] == dist.n_kept
    elif q.kind == "analogy":
        best = vectors.analogy(lm, [i["a"], i["c"]], [i["b"]], exclude_variants=i["exclude_variants"]).best
        assert (a.numbers["token"], a.numbers["cosine"]) == (best.text, pytest.approx(best.cosine))
    elif q.kind in ("induction_head", "strongest_head"):
        role = "induction" if q.kind == "induction_head" else i["role"]
        best = heads.top_heads(memo[("head_scores",)][role], 1)[0]
        assert (a.numbers["layer"], a.numbers["head"]) == (best.layer, best.head)
    elif q.kind == "lens_settles":
        assert a.numbers["row"] == memo[("lens", i["prompt"])].settled_layer(-1)
    elif q.kind == "parameter_count":
        assert a.numbers["total"] == anatomy.count_parameters(lm.config).total == 134_515_008
    elif q.kind == "model_size":
        assert a.numbers["value"] == {"layers": 30, "heads": 9, "d_model": 576, "d_mlp": 1536, "vocab": 49152,
                                      "context": 8192}[i["what"]]


def test_an_out_of_range_step_is_reported_for_the_model(bundled):
    text = _steps(0) + _step(0).replace('view = "Home"', 'view = "MLP_neurons"\nstate = { layer = 30, neuron = 1536, '
                                        'token = 9 }').replace("S0", "Deep")
    lesson = lessons.parse(text, "deep")
    msgs = [str(e) for e in lessons.validate_for(lesson, bundled)]
    assert len(msgs) == 3, msgs
    assert all(m.startswith("deep.toml: step 1 (“Deep”), `state.") for m in msgs)
    assert "30 layers" in msgs[0] and "1536 neurons" in msgs[1] and "9 tokens here" in msgs[2]
    ok = lessons.parse(text.replace("layer = 30, neuron = 1536, token = 9", "layer = 29, neuron = 1535, token = 8"),
                       "ok")
    assert lessons.validate_for(ok, bundled) == ()


# -- a lesson on another model ---------------------------------------------------------------------------------

_SCORES: dict = {}


def _scores(lm) -> dict:
    """heads.head_scores(lm), computed here once per model (not through the lessons module's memo)."""
    if id(lm) not in _SCORES:
        _SCORES[id(lm)] = (lm, heads.head_scores(lm))
    return _SCORES[id(lm)][1]


def _direct(lm, q) -> dict:
    """The engine's own answer to question q on lm, computed here without the lessons module."""
    i = q.inputs
    if q.kind in ("next_token", "tokens_kept"):
        dist = sampling.probabilities(ex.trace(lm, i["prompt"]).next_token_logits(), i["temperature"], i["top_k"],
                                      i["top_p"])
        return {"token_id": dist.argmax} if q.kind == "next_token" else {"n_kept": dist.n_kept}
    if q.kind == "prompt_tokens":
        return {"ids": list(encode(lm, i["prompt"]).ids)}
    if q.kind == "analogy":
        return {"token_id": vectors.analogy(lm, [i["a"], i["c"]], [i["b"]], exclude_variants=i["exclude_variants"])
                .best.id}
    if q.kind in ("induction_head", "strongest_head"):
        best = heads.top_heads(_scores(lm)["induction" if q.kind == "induction_head" else i["role"]], 1)[0]
        return {"layer": best.layer, "head": best.head}
    if q.kind == "lens_settles":
        return {"row": lens.logit_lens(lm, ex.trace(lm, i["prompt"])).settled_layer(-1)}
    if q.kind == "ablation_effect":
        hs = i["heads"]
        if hs == "induction":
            hs = [(t.layer, t.head) for t in heads.top_heads(_scores(lm)["induction"], i["n_suggested"])]
        elif hs == "suggested":
            hs = interventions.attribution(lm, ex.trace(lm, i["prompt"])).top_heads(i["n_suggested"])
        c = interventions.compare(lm, interventions.ablate(lm, i["prompt"], hs, i["neurons"]))
        return {"before_id": c.top_before, "after_id": c.top_after}
    if q.kind == "sample_with_seed":
        cfg = generation.GenConfig(max_new_tokens=i["max_new"], temperature=i["temperature"], top_k=i["top_k"],
                                   top_p=i["top_p"], stop=generation.parse_stop(i["stop"]), seed=i["seed"])
        return {"text": generation.generate(lm, i["prompt"], cfg).text}
    if q.kind == "parameter_count":
        return {"total": anatomy.count_parameters(lm.config).total}
    if q.kind == "model_size":
        return {"value": {"layers": lm.n_layers, "heads": lm.n_heads, "d_model": lm.d_model, "d_mlp": lm.d_mlp,
                          "vocab": lm.vocab_size, "context": lm.n_ctx}[i["what"]]}
    if q.kind == "char_model_params":
        return {"count": makemore.MLPConfig(i["block"], i["embd"], i["hidden"]).n_params}
    if q.kind == "uniform_loss":
        return {"loss": makemore.UNIFORM_LOSS}
    raise AssertionError(q.kind)


def test_the_built_in_lessons_on_a_tiny_random_model_answer_from_that_model(tiny_gpt2):
    lm = tiny_gpt2
    kinds = set()
    memo: dict = {}                                   # one per model, as the player keeps it
    for lesson in BUILTIN.lessons:
        for s in lesson.steps:
            if s.question is None:
                continue
            a = lessons.answer(s.question, lm, memo)
            want = _direct(lm, s.question)
            assert {k: a.numbers[k] for k in want} == want, (lesson.name, s.number, a.text)
            kinds.add(s.question.kind)
    assert kinds == set(lessons.QUESTION_KINDS)       # the built-ins use every kind
    assert lessons.answer(BUILTIN.get("two-files").steps[0].question, lm).numbers["total"] != 134_515_008


def test_every_question_kind_answers_on_a_tiny_model(tiny_gpt2):
    """One question of each kind (the built-ins may not use them all), answered and checked against the engine."""
    for kind in lessons.QUESTION_KINDS:
        extra = {"strongest_head": 'role = "first_token"', "model_size": 'what = "vocab"',
                 "ablation_effect": 'heads = ["L1.H2"]\nneurons = "L0.N5"',
                 "sample_with_seed": "seed = 3\ntemperature = 1.0\ntop_k = 0\ntop_p = 1.0\nmax_new = 5",
                 "tokens_kept": "temperature = 1.0\ntop_k = 0\ntop_p = 0.5"}.get(kind, "")
        q = lessons.parse(_with('kind = "next_token"', f'kind = "{kind}"\n{extra}'), "k").steps[0].question
        a = lessons.answer(q, tiny_gpt2)
        assert a.kind == kind and a.text
        want = _direct(tiny_gpt2, q)
        assert {key: a.numbers[key] for key in want} == want, kind


def test_the_same_seed_gives_the_same_text_one_press_at_a_time(tiny_gpt2):
    """What the lessons say about Next token: n presses of Sample with a seed write what sample_with_seed reveals."""
    q = lessons.parse(GOOD.replace('view = "Attention"', 'view = "Next_token"').replace(
        "layer = 1, head = 0", "temperature = 1.0, top_k = 10, top_p = 0.9, seed = 42").replace(
        'kind = "next_token"', 'kind = "sample_with_seed"\nmax_new = 6'), "x").steps[0].question
    a = lessons.answer(q, tiny_gpt2)
    state = generation.start(tiny_gpt2, q.inputs["prompt"])
    settings = sampling.Settings(1.0, 10, 0.9)
    pressed = [generation.advance(tiny_gpt2, state, "sample", settings, seed=42).token_id
               for _ in range(len(a.numbers["token_ids"]))]
    assert pressed == a.numbers["token_ids"]


def test_a_built_in_lesson_reports_what_a_tiny_model_lacks(tiny_gpt2):
    problems = lessons.validate_for(BUILTIN.get("how-a-gpt-writes"), tiny_gpt2)
    assert [(e.step, e.field) for e in problems] == [(5, "state.layer")]
    assert str(problems[0]).startswith("how-a-gpt-writes.toml: step 5 (“The MLP: each token on its own”), "
                                       "`state.layer`: 15 is out of range")


def _page_sections(path: Path) -> list[str]:
    """The names of a page file's `@ui.section("name", ...)` functions, in the file's order, read from its syntax."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef):
            for d in node.decorator_list:
                if (isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr == "section"
                        and d.args and isinstance(d.args[0], ast.Constant)):
                    out.append(d.args[0].value)
    return out


def test_each_views_sections_are_its_pages_section_functions():
    """lessons.SECTIONS (what a step may name) and the pages' @ui.section functions (what the presenter view can
    draw alone) are the same names, for every view."""
    from explainer import player

    files = player.view_files()
    assert set(lessons.SECTIONS) == set(lessons.VIEWS)
    for view, names in lessons.SECTIONS.items():
        found = _page_sections(lessons.ROOT / (files.get(view) or "streamlit_app.py"))
        assert sorted(set(found)) == sorted(names), (view, found, names)


def test_every_built_in_step_names_a_section_and_its_controls_are_its_views():
    """Every built-in step says what the presenter view draws, so that it fits a projector (tests/test_e2e.py
    measures that); the controls it shows are link names its view reads."""
    for lesson in lessons.load_all(lessons.LESSONS_DIR).lessons:
        for step in lesson.steps:
            assert step.section, (lesson.name, step.number)
            assert set(step.section) <= set(lessons.SECTIONS[step.view])
            assert step.shown_controls <= lessons.VIEW_PARAMS[step.view], (lesson.name, step.number)


def test_shown_controls_default_to_the_steps_state_but_the_prompt_and_tab():
    text = _steps(0) + _step(0).replace('view = "Home"', 'view = "Next_token"\nstate = { prompt = "Hi", '
                                        'temperature = 2.0 }')
    assert lessons.parse(text, "ok").steps[0].shown_controls == {"temperature"}
    text = _steps(0) + _step(0).replace('view = "Home"', 'view = "Embeddings"\nsection = "map"\n'
                                        'state = { tab = "map", map_preset = "Royalty & gender" }')
    step = lessons.parse(text, "ok").steps[0]
    assert step.shown_controls == {"map_preset"} and step.section == ("map",)
    text = _steps(0) + _step(0).replace('view = "Home"', 'view = "Next_token"\nsection = ["grow", "distribution"]'
                                        '\ncontrols = []\nstate = { temperature = 2.0 }')
    step = lessons.parse(text, "ok").steps[0]
    assert step.shown_controls == frozenset() and step.section == ("grow", "distribution")
