"""The code behind each view: the few lines of plain `torch` + `transformers` that compute exactly what a view
shows, filled in with its live settings, to paste into a notebook and run as they are.

Every function returns Python source text. The model is loaded the way a student would load it
(`AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager")`, float32, on the CPU): for the
bundled model, `path` is the app's own safetensors cache folder (`models.bundled_cache_dir()`), so the snippet
runs offline. Module paths (the final norm, a block's MLP down-projection) are read from the hook sites
(`explainer.sites`), so they are right for every family. `tests/test_snippets.py` runs every snippet on the
bundled model and checks its numbers against the engine values the page charts.

Each snippet leaves its result in named variables (the test reads them): `probs` (next token), `pattern`
(one head; with `raw`, `scaled`, `masked` for Q·K), `values`, `z`, `parts` and `norms` (what a head writes),
`lens` and `tracked` (logit lens), `acts` (one neuron), `norms` (residual stream), `new_ids` and `text`
(generate), `reply` (chat), `best` (analogy, neighbours), `dot`, `cosine`, `norms` (similarity), `coords` (word
map, in context), `position` and `cosine` (directions), `cosine` (in context), `total` and the per-block counts
(parameters), `values` (a model map box), `before` and `after` (ablation). Nothing here imports Streamlit; the
page passes its live settings in.
"""

from __future__ import annotations

import math
import os
import weakref
from collections.abc import Callable, Sequence

from .models import BUNDLED, LoadedModel, bundled_cache_dir, bundled_gguf, bundled_ready
from .sampling import Settings
from .sites import site
from .tokens import encode

# -- pieces shared by every snippet -------------------------------------------------------------------


def _num(x: float) -> str:
    """A float setting as a literal: 0.7 stays 0.7 (a slider's 0.7000000000000001 too), 1 is written 1.0
    (transformers' warpers refuse an int temperature)."""
    x = float(x)
    if x.is_integer():
        return repr(x)
    r = round(x, 6)
    return repr(r if math.isclose(r, x, rel_tol=0, abs_tol=1e-12) else x)


def model_source(lm: LoadedModel) -> tuple[list[str], str]:
    """(lines that define `path`, the extra `from_pretrained` arguments) for this model."""
    if lm.name == BUNDLED:
        folder = bundled_cache_dir()
        if folder.is_dir() and bundled_ready():
            return [f"path = {str(folder)!r}   # the app's bundled SmolLM2-135M, as safetensors (offline)"], ""
        gguf = bundled_gguf()   # the cache could not be written: transformers reads the GGUF itself (~35 s)
        return [f"path = {str(gguf.parent)!r}   # the bundled SmolLM2-135M's GGUF file (needs `pip install gguf`)",
                f"gguf = {gguf.name!r}"], ", gguf_file=gguf"
    what = "a local folder" if os.path.isdir(lm.name) else "a Hub id: downloads on first use"
    return [f"path = {lm.name!r}   # {what}"], ""


_NAMES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # model -> {id(module): its dotted path}


def _module_name(lm: LoadedModel, module) -> str:
    names = _NAMES.get(lm.model)
    if names is None:   # read once per model: a page writes several snippets on every rerun
        names = _NAMES[lm.model] = {id(m): name for name, m in lm.model.named_modules()}
    try:
        return names[id(module)]
    except KeyError:
        raise LookupError(f"{module!r} is not a module of {lm.name}") from None


def _blocks_path(lm: LoadedModel) -> str:
    return _module_name(lm, lm.arch.block_list(lm.model))


def _load(lm: LoadedModel) -> list[str]:
    path, extra = model_source(lm)
    return [
        "import torch",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "",
        *path,
        f"tok = AutoTokenizer.from_pretrained(path{extra})",
        "# eager attention: the implementation that hands back its attention weights",
        f"model = AutoModelForCausalLM.from_pretrained(path{extra}, dtype=torch.float32, "
        'attn_implementation="eager").eval()',
    ]


def _ids(lm: LoadedModel, prompt: str, keep: int | None = None, steps: Sequence[int] = ()) -> list[str]:
    """The prompt's token ids, as the app reads them: its last `keep` tokens (the sidebar's limit), then the
    tokens taken so far (Next token's steps)."""
    lines = ["", f"prompt = {prompt!r}", 'ids = tok(prompt, return_tensors="pt").input_ids   # [1, T]']
    n = len(encode(lm, prompt).ids)
    if keep is not None and keep < n:
        lines.append(f"ids = ids[:, -{int(keep)}:]   # the app keeps the prompt's last {int(keep)} tokens (its limit)")
    if steps:
        lines.append(f"ids = torch.cat([ids, torch.tensor([{[int(t) for t in steps]}])], dim=1)   "
                     "# the tokens taken so far")
    return lines


def _kept(tr) -> int | None:
    return tr.n_tokens if tr.truncated else None


def _join(lines: list[str]) -> str:
    return "\n".join(lines).rstrip() + "\n"


# -- the views ------------------------------------------------------------------------------------------


def next_token(lm: LoadedModel, prompt: str, temperature: float = 1.0, top_k: int | None = None,
               top_p: float | None = None, min_p: float | None = None, repetition_penalty: float | None = None,
               *, steps: Sequence[int] = (), seed: int | None = None, draw: int | None = None,
               keep: int | None = None) -> str:
    """Next token's distribution: logits → repetition penalty → temperature → top-k → top-p → min-p → softmax,
    by hand, checked against transformers' own processors; the app's seeded draw (when `draw` is given) and
    the same step as a `model.generate(...)` call."""
    s, _ = Settings(temperature, top_k, top_p, min_p, repetition_penalty).checked(lm.vocab_size)
    t, k, p, m, r = s.temperature, s.top_k, s.top_p, s.min_p, s.repetition_penalty
    L = _load(lm) + _ids(lm, prompt, keep, steps) + [
        "",
        "with torch.inference_mode():",
        "    logits = model(ids).logits[0, -1].double()   # [V] a score for every token of the vocabulary",
        "x = logits.clone()",
    ]
    procs = []
    if r is not None:
        L += ["seen = ids[0].unique()                       # each token already in the text, once",
              f"x[seen] = torch.where(x[seen] < 0, x[seen] * {_num(r)}, x[seen] / {_num(r)})   # repetition penalty"]
        procs.append(f"RepetitionPenaltyLogitsProcessor({_num(r)})")
    if t == 0:
        L += ["# temperature 0 = greedy: all the probability on the top token (the filters have nothing to do)",
              "probs = torch.zeros_like(x)",
              "probs[x.argmax()] = 1.0"]
    else:
        L += [f"z = x / {_num(t)}                                # temperature"]
        procs.append(f"TemperatureLogitsWarper({_num(t)})")
        if k is not None:
            L += [f"z[x < x.topk({k}).values[-1]] = -torch.inf    # top-k: keep the {k} largest (ties kept)"]
            procs.append(f"TopKLogitsWarper({k})")
        if p is not None:
            L += ["p_up, order = z.softmax(-1).sort()           # ascending",
                  f"drop = p_up.cumsum(-1) <= 1 - {_num(p)}           # top-p: the unlikely tail that adds up to 1 - p",
                  "drop[-1] = False                               # the top token always stays",
                  "z[order[drop]] = -torch.inf"]
            procs.append(f"TopPLogitsWarper({_num(p)})")
        if m is not None:
            L += ["q = z.softmax(-1)",
                  f"z[q < {_num(m)} * q.max()] = -torch.inf          # min-p: less than {_num(m)} × the top token's"]
            procs.append(f"MinPLogitsWarper({_num(m)})")
        L += ["probs = z.softmax(-1)                          # [V] what a draw uses"]
    L += ["",
          "top = probs.topk(min(10, int((probs > 0).sum())))   # the most likely tokens still in the running",
          "for pr, i in zip(top.values, top.indices):",
          "    print(f\"{tok.decode([int(i)])!r:>16} {pr:.2%}\")"]
    if procs and t != 0:
        names = sorted({x.split("(")[0] for x in procs})
        L += ["",
              "# The same with transformers' own logits processors, in the order generate() applies them",
              "from transformers import LogitsProcessorList",
              f"from transformers import {', '.join(names)}",
              "procs = LogitsProcessorList([",
              *[f"    {x}," for x in procs],
              "])",
              "check = procs(ids, logits[None].clone())[0].softmax(-1)",
              "assert torch.allclose(check, probs, atol=1e-9)"]
    if draw is not None and seed is not None and t != 0:
        L += ["",
              f"# The app's \"Sample a token\" button: draw number {int(draw)} of seed {int(seed)}. It uses numpy's "
              "generator, not torch's,",
              "# so model.generate(do_sample=True) with torch.manual_seed draws other tokens.",
              "import numpy as np",
              f"u = np.random.default_rng([{int(seed)}, {int(draw)}]).random()",
              "cdf = np.cumsum(probs.numpy())",
              "token = int(np.searchsorted(cdf, u * cdf[-1], side=\"right\"))",
              "print(\"the app samples\", repr(tok.decode([token])))"]
    L += ["", "# The same step as a model.generate(...) call (the app's \"Take the top token\" is do_sample=False)"]
    L += _generate_call(lm, 1, t, k, p, m, r, seed, stop=(), result="new_token")
    return _join(L)


def timeline(lm: LoadedModel, prompt: str, steps: Sequence, keep: int | None = None) -> str:
    """Next token §3: every step taken so far (generation.Step), each with the distribution it was chosen from
    under its own settings (transformers' processors, in the order generate() applies them): the probability of
    the token taken and the entropy in bits."""
    rows = []
    for st_ in steps:
        s, _ = st_.settings.checked(lm.vocab_size)
        rows.append((int(st_.token_id), float(s.temperature), s.top_k, s.top_p, s.min_p, s.repetition_penalty))
    L = _load(lm) + _ids(lm, prompt, keep, [r[0] for r in rows]) + [
        "",
        "from transformers import (LogitsProcessorList, MinPLogitsWarper, RepetitionPenaltyLogitsProcessor,",
        "                          TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper)",
        "",
        "# (token taken, temperature, top-k, top-p, min-p, repetition penalty), step by step; None = off",
        f"steps = {rows!r}",
        "P = ids.shape[1] - len(steps)   # the prompt's tokens",
        "prob, entropy = [], []",
        "for i, (token, t, k, p, m, r) in enumerate(steps):",
        "    before = ids[:, :P + i]   # the text when step i was taken",
        "    with torch.inference_mode():",
        "        logits = model(before).logits[0, -1].double()[None]   # [1, V]",
        "    if r is not None:",
        "        logits = RepetitionPenaltyLogitsProcessor(r)(before, logits)",
        "    if t == 0:   # greedy: all the probability on the top token",
        "        probs = torch.zeros_like(logits[0])",
        "        probs[logits[0].argmax()] = 1.0",
        "    else:",
        "        procs = [TemperatureLogitsWarper(t)] + ([TopKLogitsWarper(k)] if k else [])",
        "        procs += ([TopPLogitsWarper(p)] if p is not None else []) + ([MinPLogitsWarper(m)] if m else [])",
        "        probs = LogitsProcessorList(procs)(before, logits)[0].softmax(-1)",
        "    kept = probs[probs > 0]",
        "    prob.append(float(probs[token]))",
        "    entropy.append(float(-(kept * kept.log2()).sum()))   # bits",
        "    print(f\"step {i}: {tok.decode([token])!r} {prob[-1]:.1%}, entropy {entropy[-1]:.2f} bits\")",
    ]
    return _join(L)


def _generate_call(lm: LoadedModel, max_new_tokens: int, t: float, k, p, m, r, seed, stop: Sequence[str],
                   result: str = "new_ids") -> list[str]:
    args = [f"max_new_tokens={int(max_new_tokens)}"]
    lines = []
    if t == 0:
        args.append("do_sample=False")
    else:
        lines.append(f"torch.manual_seed({int(seed or 0)})   # torch's generator; the app's draws use numpy's, so "
                     "tokens differ")
        args += ["do_sample=True", f"temperature={_num(t)}", f"top_k={k or 0}", f"top_p={_num(p if p else 1.0)}"]
        if m is not None:
            args.append(f"min_p={_num(m)}")
    if r is not None:
        args.append(f"repetition_penalty={_num(r)}")
    if stop:
        args += [f"stop_strings={list(stop)!r}", "tokenizer=tok"]
    args.append("pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id")
    lines.append("out = model.generate(ids, attention_mask=torch.ones_like(ids),")
    lines += [f"                     {a}," for a in args[:-1]]
    lines.append(f"                     {args[-1]})")
    lines.append(f"{result} = out[0, ids.shape[1]:]" + ("[0].item()" if result == "new_token" else "")
                 + "   # the generated token ids")
    return lines


_GENERATE_DIFFERS = [
    "",
    "# Where the app differs from generate():",
    "# - temperature 0 is greedy, do_sample=False (generate() refuses temperature=0);",
    "# - the app draws with its own seeded sampler (numpy, draw number i of the seed for token i), so with",
    "#   do_sample=True the same seed gives other text here than in the app;",
    "# - the app ends the text at the model's end-of-text token, as generate() does, and cuts it just before",
    "#   the first stop string; generate(stop_strings=...) stops after it, so the cut is done below.",
]


def _generate_text(lm: LoadedModel, s: Settings, max_new_tokens: int, seed, stop: Sequence[str],
                   var: str = "text") -> list[str]:
    """The generate() call for settings `s`, then its new tokens decoded into `var`, cut before a stop string."""
    L = _GENERATE_DIFFERS + _generate_call(lm, max_new_tokens, s.temperature, s.top_k, s.top_p, s.min_p,
                                           s.repetition_penalty, seed, stop)
    L += [f"{var} = tok.decode(new_ids, skip_special_tokens=True)"]
    if stop:
        L += [f"stops = [s for s in {list(stop)!r} if s in {var}]",
              "if stops:",
              f"    {var} = {var}[:min({var}.find(s) for s in stops)]   # the app cuts before the stop string"]
    return L


def generate(lm: LoadedModel, prompt: str, max_new_tokens: int = 40, temperature: float = 0.7,
             top_k: int | None = 50, top_p: float | None = 0.95, min_p: float | None = None,
             repetition_penalty: float | None = None, seed: int | None = 0, stop: Sequence[str] = (),
             *, keep: int | None = None) -> str:
    """The Generate page's settings as one `model.generate(...)` call, with where the app differs."""
    s, _ = Settings(temperature, top_k, top_p, min_p, repetition_penalty).checked(lm.vocab_size)
    stop = tuple(x for x in stop if x)
    L = _load(lm) + _ids(lm, prompt, keep) + _generate_text(lm, s, max_new_tokens, seed, stop)
    L += ["print(prompt + text)"]
    return _join(L)


def chat(lm: LoadedModel, messages: Sequence[dict], max_new_tokens: int = 40, temperature: float = 0.7,
         top_k: int | None = 50, top_p: float | None = 0.95, min_p: float | None = None,
         repetition_penalty: float | None = None, seed: int | None = 0, stop: Sequence[str] = ()) -> str:
    """The Generate page's chat: the log, up to and including its last message from the user, through the
    tokenizer's chat template (or the app's plain "User:"/"Assistant:" lines when it has none), then the same
    `model.generate(...)` call for the assistant's reply. `reply` is the text the chat shows."""
    s, _ = Settings(temperature, top_k, top_p, min_p, repetition_penalty).checked(lm.vocab_size)
    msgs = [{"role": m["role"], "content": str(m["content"])} for m in messages]
    while msgs and msgs[-1]["role"] != "user":
        msgs.pop()
    L = _load(lm) + ["", "messages = ["] + [f"    {m!r}," for m in msgs] + ["]"]
    if getattr(lm.tokenizer, "chat_template", None):
        L += ["# the tokenizer's chat template turns the whole log into one text, ending where the reply starts",
              "text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)"]
        extra: tuple[str, ...] = ()
    else:
        L += ["# this tokenizer has no chat template: the app writes the log as plain lines, and stops the reply",
              "# where the model starts writing the user's next turn",
              "lines = [(\"User: \" if m[\"role\"] == \"user\" else \"Assistant: \") + m[\"content\"] "
              "for m in messages]",
              "text = \"\\n\".join(lines) + \"\\nAssistant:\""]
        extra = ("\nUser:",)
    L += ["# the template already holds any special tokens, so none are added",
          'ids = tok(text, add_special_tokens=False, return_tensors="pt").input_ids   # [1, T]']
    stop = tuple(x for x in stop if x) + extra
    L += _generate_text(lm, s, max_new_tokens, seed, stop, var="reply")
    L += ["reply = reply.strip()", "print(reply)"]
    return _join(L)


def _word_vectors(lm: LoadedModel, words: Sequence[str]) -> list[str]:
    """The lines every word-vector view starts with: the input embedding matrix `E`, `word_ids(w)` (a word as
    the tokens it becomes mid-sentence) and `vec(w)` (its row, or the mean of its pieces' rows)."""
    from .words import word_ids

    simple = all(word_ids(lm, w) == list(lm.tokenizer(" " + w, add_special_tokens=False)["input_ids"])
                 for w in words)
    L = _load(lm) + ["", "E = model.get_input_embeddings().weight.detach()   # [V, D]: one row a token", ""]
    if simple:
        L += ["def word_ids(w):   # a word as the token(s) it becomes mid-sentence, after a space",
              "    return tok(\" \" + w, add_special_tokens=False).input_ids"]
    else:
        table = {w: word_ids(lm, w) for w in words}
        L += ["# each word as the token(s) it becomes mid-sentence (this tokenizer needs text before the space, so",
              "# the app reads them off a longer text; here they are written out)",
              f"WORD_IDS = {table!r}",
              "def word_ids(w):",
              "    return WORD_IDS[w]"]
    return L + ["",
                "def vec(w):   # a word of several tokens gets the mean of its pieces' rows",
                "    return E[word_ids(w)].mean(0)"]


def _words(ws: Sequence[str]) -> list[str]:
    return [" ".join(str(w).split()) for w in ws]


def _pairs(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(a, b) for a, b in (_words(p) for p in pairs)]


def batch(lm: LoadedModel, b) -> str:
    """Generate §3: the prompts of batch `b` (generation.Batch) padded into one rectangle with the tokenizer's own
    padding and attention mask, one forward pass with position ids that skip the padding, the next token after each
    prompt's last real token, and each prompt run alone for comparison."""
    fill = "" if lm.tokenizer.pad_token is not None else (
        "tok.pad_token = tok.eos_token   # GPT-style tokenizers have no padding token; the mask hides it anyway")
    L = _load(lm) + [
        "",
        f"prompts = {list(b.prompts)!r}",
        *([fill] if fill else []),
        f"enc = tok(prompts, padding=True, padding_side={b.side!r}, truncation=True, max_length={b.ids.shape[1]},",
        "          return_tensors=\"pt\")",
        "ids, mask = enc.input_ids, enc.attention_mask   # [B, T] each; mask: 1 = real token, 0 = padding",
        "pos = (mask.cumsum(-1) - 1).clamp(min=0)   # positions count real tokens only",
        "with torch.inference_mode():",
        "    logits = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits   # [B, T, V]",
        ("last = mask.sum(-1) - 1   # each prompt's last real token (padding on the right)" if b.side == "right" else
         "last = torch.full((ids.shape[0],), ids.shape[1] - 1)   # padding on the left: the last column"),
        "probs = logits[torch.arange(ids.shape[0]), last].double().softmax(-1)   # [B, V] after each prompt",
        "top = probs.argmax(-1)",
        "with torch.inference_mode():   # each prompt alone, without padding",
        "    alone = [model(row[m.bool()][None]).logits[0, -1].softmax(-1) for row, m in zip(ids, mask)]",
        "for p, t, a in zip(prompts, top, alone):",
        "    same = \"same\" if int(a.argmax()) == int(t) else f\"alone: {tok.decode([int(a.argmax())])!r}\"",
        "    print(f\"{p!r} -> {tok.decode([int(t)])!r} ({same})\")",
    ]
    return _join(L)


def analogy(lm: LoadedModel, positive: Sequence[str], negative: Sequence[str], k: int = 10,
            exclude_variants: bool = True) -> str:
    """Word vectors' analogies: rows of the input embedding matrix added and subtracted, every token ranked by
    cosine, the inputs left out (and their other spellings, with `exclude_variants`)."""
    words = _words([*positive, *negative])
    L = _word_vectors(lm, words) + [
        "",
        f"positive, negative = {words[:len(positive)]!r}, {words[len(positive):]!r}",
        "target = sum(vec(w) for w in positive) - sum((vec(w) for w in negative), torch.zeros(E.shape[1]))",
        "cos = torch.nn.functional.cosine_similarity(E, target[None], dim=1)   # [V]: every token against it",
        "exclude = {i for w in positive + negative for i in word_ids(w)}   # the inputs themselves"]
    if exclude_variants:
        L += ["for w in positive + negative:   # and their other spellings: King, KING, without the space",
              "    for f in {w, w.lower(), w.capitalize(), w.upper()}:",
              "        for text in (f, \" \" + f):",
              "            ids = tok(text, add_special_tokens=False).input_ids",
              "            if len(ids) == 1:",
              "                exclude.add(ids[0])"]
    L += ["cos[list(exclude)] = -float(\"inf\")",
          f"best = cos.topk({int(k)})",
          "for c, i in zip(best.values, best.indices):",
          "    print(repr(tok.decode([int(i)])), f\"{c:.3f}\")"]
    return _join(L)


def neighbours(lm: LoadedModel, word: str, k: int = 10) -> str:
    """Word vectors' nearest neighbours: every token's row ranked by its cosine with the word's, the word's own
    token(s) left out."""
    w = _words([word])[0]
    return _join(_word_vectors(lm, [w]) + [
        "",
        f"word = {w!r}",
        "cos = torch.nn.functional.cosine_similarity(E, vec(word)[None], dim=1)   # [V]: every token against it",
        "cos[word_ids(word)] = -float(\"inf\")   # the word itself left out",
        f"best = cos.topk({int(k)})",
        "for c, i in zip(best.values, best.indices):",
        "    print(repr(tok.decode([int(i)])), f\"{c:.3f}\")"])


def similarity(lm: LoadedModel, words: Sequence[str]) -> str:
    """Word vectors' dot product against cosine: every pair of the words' vectors, both ways."""
    ws = _words(words)
    return _join(_word_vectors(lm, ws) + [
        "",
        f"words = {ws!r}",
        "X = torch.stack([vec(w) for w in words]).double()   # [N, D]",
        "dot = X @ X.T   # [N, N] a · b: grows with the vectors' lengths",
        "norms = X.norm(dim=1)   # [N] |a|",
        "cosine = dot / torch.outer(norms, norms)   # [N, N] a · b / (|a| |b|): the direction only",
        "for w, n in zip(words, norms):",
        "    print(f\"{w:>12} |v| = {n:.2f}\")"])


def word_map(lm: LoadedModel, words: Sequence[str], n_components: int = 2,
             arrows: Sequence[tuple[str, str]] = ()) -> str:
    """Word vectors' map: scikit-learn's PCA of the words' vectors; with `arrows` (the page's "Align to arrows"),
    the first axis is the average arrow and the others PCA of what is left."""
    ws = _words(words)
    L = _word_vectors(lm, ws) + [
        "",
        f"words = {ws!r}",
        "X = torch.stack([vec(w) for w in words]).double().numpy()   # [N, D]",
        f"k = {int(min(n_components, len(ws)))}   # axes"]
    if not arrows:
        return _join(L + [
            "from sklearn.decomposition import PCA",
            "",
            "pca = PCA(n_components=k, svd_solver=\"full\").fit(X)",
            "coords = pca.transform(X)   # [N, k] where each word sits on the map",
            "print(\"share of the spread on each axis:\", pca.explained_variance_ratio_.round(3))"])
    pairs = _pairs(arrows)
    return _join(L + [
        "import numpy as np",
        "",
        f"arrows = {pairs!r}   # from → to",
        "at = {w: i for i, w in enumerate(words)}",
        "arrow = np.mean([X[at[b]] - X[at[a]] for a, b in arrows], axis=0)   # [D] the average arrow",
        "e1 = arrow / np.linalg.norm(arrow)   # the first axis",
        "Xc = X - X.mean(axis=0)   # [N, D] centred",
        "rest = Xc - np.outer(Xc @ e1, e1)   # the first axis taken out of every vector",
        "axes = [e1]",
        "for u in np.linalg.svd(rest, full_matrices=False)[2][:k - 1]:   # PCA of the rest",
        "    axes.append(u * np.sign(u[np.argmax(np.abs(u))]))   # the sign scikit-learn would give",
        "coords = Xc @ np.stack(axes).T   # [N, k] where each word sits on the map",
        "print(\"share of the spread on each axis:\", ((coords ** 2).sum(0) / (Xc ** 2).sum()).round(3))"])


def direction(lm: LoadedModel, pairs: Sequence[tuple[str, str]], words: Sequence[str]) -> str:
    """Word vectors' directions: the average of (to − from) over the pairs as an axis, and every word placed on
    it so that the average 'from' word sits at −1 and the average 'to' word at +1."""
    ps = _pairs(pairs)
    ws = _words(words)
    return _join(_word_vectors(lm, [*ws, *(w for p in ps for w in p)]) + [
        "",
        f"pairs = {ps!r}   # from → to",
        f"words = {ws!r}",
        "A = torch.stack([vec(a) for a, _ in pairs]).double()   # [P, D] the 'from' words",
        "B = torch.stack([vec(b) for _, b in pairs]).double()   # [P, D] the 'to' words",
        "d = (B - A).mean(0)   # [D] the axis: the average arrow",
        "mid = ((A + B) / 2).mean(0)   # [D] halfway between the two ends",
        "X = torch.stack([vec(w) for w in words]).double()   # [N, D]",
        "position = 2 * (X - mid) @ d / (d @ d)   # [N] −1: the 'from' end, +1: the 'to' end",
        "cosine = torch.nn.functional.cosine_similarity(X, d[None], dim=1)   # [N] with the axis",
        "for w, p in sorted(zip(words, position.tolist()), key=lambda t: t[1]):",
        "    print(f\"{p:+.2f} {w}\")"])


def attention_head(lm: LoadedModel, tr, layer: int, head: int) -> str:
    """One head's attention pattern (Attention §2): `output_attentions=True`."""
    L = _load(lm) + _ids(lm, tr.text, _kept(tr)) + [
        "",
        "with torch.inference_mode():",
        "    out = model(ids, output_attentions=True)",
        f"pattern = out.attentions[{int(layer)}][0, {int(head)}]   # [T, T] layer {int(layer)}, head {int(head)}: "
        "rows = queries, columns = keys",
        "",
        "tokens = [tok.decode([i]) for i in ids[0]]",
        "for t, row in zip(tokens, pattern):",
        "    j = int(row.argmax())",
        "    print(f\"{t!r:>14} looks most at {tokens[j]!r} ({row[j]:.0%})\")",
    ]
    return _join(L)


def _catch_attention(lm: LoadedModel, layer: int) -> list[str]:
    """Run the model once with one layer's attention function wrapped (transformers' AttentionInterface), so
    that its queries, keys and values are caught exactly as that function receives them: split into heads,
    rotary positions already turned in. `caught` holds `q` [H, T, dh], `k` and `v` [Hkv, T, dh] and
    `scaling`; `out` is the model's own output, `out.attentions[layer]` its own pattern."""
    attn = _module_name(lm, site(lm, f"blocks.{int(layer)}.attn.hook_pattern").module)
    return [
        "",
        "from transformers import AttentionInterface, AttentionMaskInterface",
        "from transformers.masking_utils import eager_mask",
        f"from {type(lm.model).__module__} import eager_attention_forward",
        "",
        f"layer = {int(layer)}",
        f"attn = model.get_submodule({attn!r})   # layer {int(layer)}'s attention",
        "caught = {}",
        "",
        "def catch(module, query, key, value, attention_mask, **kwargs):",
        "    # the attention function gets the queries, keys and values ready: split into heads, positions turned in",
        "    if module is attn:",
        "        caught.update(q=query[0], k=key[0], v=value[0], scaling=kwargs.get(\"scaling\"))",
        "    return eager_attention_forward(module, query, key, value, attention_mask, **kwargs)",
        "",
        "AttentionInterface.register(\"catch\", catch)",
        "AttentionMaskInterface.register(\"catch\", eager_mask)   # the causal mask eager attention uses",
        "model.set_attn_implementation(\"catch\")",
        "try:",
        "    with torch.inference_mode():",
        "        out = model(ids, output_attentions=True)",
        "finally:",
        "    model.set_attn_implementation(\"eager\")",
        "q, k, v = caught[\"q\"], caught[\"k\"], caught[\"v\"]   # [H, T, dh], [Hkv, T, dh], [Hkv, T, dh]",
        "group = q.shape[0] // k.shape[0]   # query heads per key/value head (grouped-query attention)",
        "scaling = caught[\"scaling\"] or q.shape[-1] ** -0.5   # 1/√d_head",
    ]


def qk_steps(lm: LoadedModel, tr, layer: int, head: int) -> str:
    """Attention §3: one head's pattern from its real queries and keys, in the page's four steps: q·k, × 1/√d_head,
    the causal mask, softmax; checked against the model's own pattern."""
    L = _load(lm) + _ids(lm, tr.text, _kept(tr)) + _catch_attention(lm, layer) + [
        "",
        f"head = {int(head)}",
        "raw = q[head] @ k[head // group].T   # 1 · [T, T] every query · every key: rows = queries, columns = keys",
        "scaled = raw * scaling   # 2 · scaled by 1/√d_head",
        "T = raw.shape[0]",
        "future = torch.ones(T, T, dtype=torch.bool).triu(1)",
        "masked = scaled.masked_fill(future, float(\"-inf\"))   # 3 · a token may not look at later ones",
        "pattern = masked.softmax(-1)   # 4 · softmax along each row: every row sums to 1",
        "",
        "print(\"largest difference from the model's own pattern:\",",
        "      float((pattern - out.attentions[layer][0, head]).abs().max()))",
    ]
    return _join(L)


def head_writes(lm: LoadedModel, tr, layer: int, head: int) -> str:
    """Attention §4: what one head writes. Its values, the weighted sum z = A · V, and each head's part of the
    output projection (W_O applied to that head's slice alone, the bias taken off) at the last token."""
    proj = _module_name(lm, site(lm, f"blocks.{int(layer)}.attn.hook_z").module)
    L = _load(lm) + _ids(lm, tr.text, _kept(tr)) + _catch_attention(lm, layer) + [
        "",
        f"head = {int(head)}",
        "A = out.attentions[layer][0]   # [H, T, T] the layer's patterns",
        "values = v[head // group]   # [T, dh] the values this head reads",
        "z = A[head] @ values   # [T, dh] each token's row of the pattern as weights on the values",
        "",
        "# the output projection W_O reads every head's z side by side; each head's part is W_O applied to its",
        "# slice alone (the others zeroed), without the bias",
        f"W_O = model.get_submodule({proj!r})",
        "H, T, dh = q.shape",
        "with torch.inference_mode():",
        "    bias = W_O(torch.zeros(1, H * dh))[0]   # [D] (zeros where the projection has no bias)",
        "    parts = []",
        "    for h in range(H):",
        "        alone = torch.zeros(T, H * dh)",
        "        alone[:, h * dh:(h + 1) * dh] = A[h] @ v[h // group]",
        "        parts.append(W_O(alone) - bias)   # [T, D] what head h writes",
        "    parts = torch.stack(parts)   # [H, T, D]",
        "norms = parts[:, -1].norm(dim=-1)   # [H] the length of what each head writes at the last token",
        "print(f\"head {head} writes {norms[head]:.2f} at the last token;\",",
        "      f\"the longest part is head {int(norms.argmax())}'s ({float(norms.max()):.2f})\")",
    ]
    return _join(L)


def _repeated(n: int, batch: int, seed: int) -> list[str]:
    """`ids` [B, P + 2n]: B random sequences of n distinct ordinary tokens, each repeated once, after the prefix the
    tokenizer puts before any text (heads.repeated_tokens, drawn the same way)."""
    return [
        "",
        "import numpy as np",
        "",
        "prefix = tok(\"\", add_special_tokens=True).input_ids   # what the tokenizer puts before any text",
        f"n = {int(n)}   # tokens in each copy",
        "special = set(tok.all_special_ids)",
        "candidates = np.array([i for i in range(min(model.config.vocab_size, len(tok))) if i not in special])",
        f"rng = np.random.default_rng({int(seed)})",
        "rows = []",
        f"for _ in range({int(batch)}):   # sequences",
        "    r = rng.choice(candidates, size=n, replace=False)   # n different random tokens",
        "    rows.append(np.concatenate([np.asarray(prefix, dtype=np.int64), r, r]))   # ... then the same again",
        "ids = torch.tensor(np.stack(rows))   # [B, P + 2n]",
        "P, T = len(prefix), ids.shape[1]",
    ]


def head_roles(lm: LoadedModel, n: int = 40, batch: int = 4, seed: int = 0) -> str:
    """Attention §6: every head's three role scores on random sequences repeated twice (heads.head_scores): the
    mean weight on the previous token and on the first token (queries 2.., all of the sequence), and, in the
    second copy, on the token after the same token's first occurrence."""
    from .heads import repeated_period

    n = repeated_period(lm, n)                                         # shrunk to fit the context window
    L = _load(lm) + _repeated(n, batch, seed) + [
        "",
        "with torch.inference_mode():",
        "    out = model(ids, output_attentions=True)",
        "A = torch.stack(out.attentions, dim=1).double()   # [B, L, H, T, T]",
        "i = torch.arange(2, T)   # the queries scored",
        "previous_token = A[..., i, i - 1].mean(dim=(0, -1))   # [L, H] weight on the token just before",
        "first_token = A[..., i, 0].mean(dim=(0, -1))   # [L, H] weight on the very first token",
        "j = torch.arange(P + n, P + 2 * n)   # the second copy",
        "induction = A[..., j, j - n + 1].mean(dim=(0, -1))   # [L, H] weight on what came next last time",
        "",
        "for name, s in ((\"previous-token\", previous_token), (\"first-token\", first_token),",
        "                (\"induction\", induction)):",
        "    layer, head = divmod(int(s.argmax()), s.shape[1])",
        "    print(f\"strongest {name} head: layer {layer}, head {head} ({s.max():.2f})\")",
    ]
    return _join(L)


def induction(lm: LoadedModel, layer: int, head: int, n: int = 16, seed: int = 1) -> str:
    """Attention's induction head at work (heads.induction_demo): one random sequence repeated, that head's
    pattern, and its mean weight on the cells an induction head looks at."""
    from .heads import repeated_period

    n = repeated_period(lm, n)
    L = _load(lm) + _repeated(n, 1, seed) + [
        "",
        "with torch.inference_mode():",
        "    out = model(ids, output_attentions=True)",
        f"pattern = out.attentions[{int(layer)}][0, {int(head)}]   # [T, T] layer {int(layer)}, head {int(head)}",
        "q = torch.arange(P + n, P + 2 * n)   # the second copy's tokens ...",
        "k = q - n + 1   # ... look at the token after their first occurrence",
        "hit = pattern[q, k].mean()",
        "rest = pattern[1:P + n, 0].mean()   # the first copy: nothing to copy yet",
        "print(f\"weight on the outlined cells: {hit:.0%}; in the first copy, on the first token: {rest:.0%}\")",
    ]
    return _join(L)


def word_order(lm: LoadedModel, pos) -> str:
    """Attention §5: how the model knows word order, for `pos` = positions.positions(lm) as the page shows it.
    Learned: the cosine between its first position vectors. Rotary: how fast each pair of numbers turns, read from
    the model's own rotary module, and q·k of a vector of ones as query at distance d from itself as key, against
    distance."""
    L = _load(lm)
    if lm.arch.pos_embed:
        wpe = _module_name(lm, lm.arch.pos_embed_module(lm.model))
        return _join(L + [
            "",
            f"W = model.get_submodule({wpe!r}).weight.detach()   # [n_ctx, D] row p goes to the token at position p",
            f"unit = W[:{pos.shown}] / W[:{pos.shown}].norm(dim=-1, keepdim=True)",
            "similarity = unit @ unit.T   # cosine between the first position vectors",
            "print(\"neighbours:\", similarity.diagonal(1).mean().item(),",
            "      \"10 apart:\", similarity.diagonal(10).mean().item())",
        ])
    rotary = _module_name(lm, lm.arch.base_model(lm.model).rotary_emb)
    P = len(pos.distances)
    L += ["",
          "import math",
          "",
          f"rotary = model.get_submodule({rotary!r})",
          f"P, dh = {P}, {lm.d_head}   # distances 0 … P-1; numbers per head",
          "with torch.inference_mode():"]
    if pos.interleaved:   # GPT-J: (sin, cos) for each angle once; pairs are neighbouring numbers
        L += ["    sin, cos = rotary(torch.ones(1, P, dh), position_ids=torch.arange(P)[None])   # [1, P, rot/2]",
              "inv_freq = torch.atan2(sin[0, 1], cos[0, 1])   # [rot/2] radians per token: position 1's angle",
              "cos, sin = cos[0].repeat_interleave(2, -1), sin[0].repeat_interleave(2, -1)   # [P, rot]",
              "x = torch.ones(P, dh)",
              "rot = cos.shape[-1]",
              "pairs = x[:, :rot].unflatten(-1, (-1, 2))   # neighbours (2i, 2i+1) turn together",
              "turn = torch.stack([-pairs[..., 1], pairs[..., 0]], -1).flatten(-2)"]
    else:                 # Llama, NeoX: cos, sin with the angles twice; number i pairs with i + rot/2
        L += ["    cos, sin = rotary(torch.ones(1, P, dh), position_ids=torch.arange(P)[None])   # [1, P, rot]",
              "inv_freq = rotary.inv_freq   # [rot/2] radians per token, pair by pair",
              "cos, sin = cos[0], sin[0]   # [P, rot]",
              "x = torch.ones(P, dh)",
              "rot = cos.shape[-1]",
              "x1, x2 = x[:, :rot].chunk(2, dim=-1)   # number i turns with number i + rot/2",
              "turn = torch.cat([-x2, x1], dim=-1)"]
    L += ["turned = torch.cat([x[:, :rot] * cos + turn * sin, x[:, rot:]], dim=-1)   # [P, dh] at positions 0…P-1",
          "degrees = torch.rad2deg(inv_freq)   # how far each pair turns per token",
          "wavelength = 2 * math.pi / inv_freq   # tokens for one full turn",
          "dots = (turned @ turned[0]).double()   # q·k, query at distance d from the key",
          "similarity = dots / dots[0]",
          "print(f\"pair 0 turns {degrees[0]:.1f}° per token, the last pair {degrees[-1]:.2g}°\")"]
    return _join(L)


def logit_lens(lm: LoadedModel, tr, position: int, token_id: int | None = None) -> str:
    """The logit lens at one position (Logit lens §2): the final norm and the unembedding applied to every
    layer's residual stream (`output_hidden_states=True`)."""
    norm = _module_name(lm, site(lm, "ln_final.hook_normalized").module)
    pos = int(position) % tr.n_tokens
    L = _load(lm) + _ids(lm, tr.text, _kept(tr)) + [
        "",
        f"pos = {pos}   # the token after which the next one is guessed",
        "with torch.inference_mode():",
        "    out = model(ids, output_hidden_states=True)",
        f"    norm, unembed = model.get_submodule({norm!r}), model.get_output_embeddings()",
        "    # hidden_states: the embeddings, then every block's output (L + 1 in all). transformers hands the last",
        "    # one back after the final norm already, so the last row is simply the model's own logits.",
        "    rows = [unembed(norm(h[0, pos])) for h in out.hidden_states[:-1]] + [out.logits[0, pos]]",
        "    lens = torch.stack(rows).softmax(-1)   # [L+1, V] row 0: the embeddings; row l: after block l-1",
        "",
        "best = lens.max(-1)",
        "for row, (pr, i) in enumerate(zip(best.values, best.indices)):",
        "    where = \"embeddings\" if row == 0 else f\"after block {row - 1}\"",
        "    print(f\"{where:>16}: {tok.decode([int(i)])!r} {pr:.1%}\")",
    ]
    if token_id is not None:
        L += ["", f"tracked = lens[:, {int(token_id)}]   # [L+1] the probability of "
                  f"{lm.tokenizer.decode([int(token_id)])!r} at every layer"]
    return _join(L)


def lens_grid(lm: LoadedModel, tr, positions: Sequence[int]) -> str:
    """Logit lens §1: the grid, every layer's top guess and its probability at each position shown."""
    norm = _module_name(lm, site(lm, "ln_final.hook_normalized").module)
    shown = [int(p) % tr.n_tokens for p in positions]
    span = len(shown) >= 12 and shown == list(range(shown[0], shown[-1] + 1))   # a long window: written as a range
    L = _load(lm) + _ids(lm, tr.text, _kept(tr)) + [
        "",
        f"positions = {f'range({shown[0]}, {shown[-1] + 1})' if span else shown}   # the grid's columns",
        "with torch.inference_mode():",
        "    out = model(ids, output_hidden_states=True)",
        f"    norm, unembed = model.get_submodule({norm!r}), model.get_output_embeddings()",
        "    guess, prob = [], []",
        "    for pos in positions:   # one column at a time: [L+1, V] each",
        "        # every layer's residual stream through the final norm and the unembedding; the last row is the",
        "        # model's own logits (transformers hands the last hidden state back already normed)",
        "        rows = [unembed(norm(h[0, pos])) for h in out.hidden_states[:-1]] + [out.logits[0, pos]]",
        "        best = torch.stack(rows).softmax(-1).max(-1)",
        "        guess.append(best.indices)",
        "        prob.append(best.values)",
        "guess, prob = torch.stack(guess, 1), torch.stack(prob, 1)   # [L+1, positions] row 0: the embeddings",
        "",
        "for row in reversed(range(guess.shape[0])):   # the top row is the output, as on the page",
        "    where = \"embeddings\" if row == 0 else f\"after block {row - 1}\"",
        "    print(f\"{where:>16}:\", \" \".join(repr(tok.decode([int(i)])) for i in guess[row]))",
    ]
    return _join(L)


def _per_layer(lm: LoadedModel, var: str, hook: str) -> str:
    """`var = [...]`: the module path of hook site `blocks.{i}.<hook>` for every block, as a comprehension when
    the paths differ only in the block's number."""
    paths = [_module_name(lm, site(lm, f"blocks.{i}.{hook}").module) for i in range(lm.n_layers)]
    pattern = paths[0].replace(".0.", ".{}.", 1)
    if all(pattern.format(i) == p for i, p in enumerate(paths)):
        return f"{var} = [f{pattern.replace('{}', '{i}')!r} for i in range({lm.n_layers})]"
    return f"{var} = {paths!r}"


def _mlp_acts(lm: LoadedModel) -> list[str]:
    """Every block's MLP neurons in one pass: `acts` [L, T, M], the input of each down-projection."""
    return [
        "",
        _per_layer(lm, "downs", "mlp.hook_post"),
        "caught = {}",
        "def keep(i):   # the down-projection's input is the MLP's neurons",
        "    return lambda module, args: caught.update({i: args[0][0]})",
        "hooks = [model.get_submodule(d).register_forward_pre_hook(keep(i)) for i, d in enumerate(downs)]",
        "try:",
        "    with torch.inference_mode():",
        "        model(ids)",
        "finally:",
        "    for hook in hooks:",
        "        hook.remove()",
        "acts = torch.stack([caught[i] for i in range(len(downs))])   # [L, T, M] every neuron of every block",
    ]


def mlp_layer(lm: LoadedModel, tr, layer: int, n: int, skip_first: bool) -> str:
    """MLP neurons §1 and §4: the layer's most active neurons (largest |activation| anywhere, the first token left
    out on request), its activations' histogram, and every layer's strongest |activation| at each token."""
    skip = bool(skip_first) and tr.n_tokens > 1
    L = _load(lm) + _ids(lm, tr.text, _kept(tr)) + _mlp_acts(lm) + [
        "",
        f"layer = {int(layer)}",
        f"a = acts[layer{', 1:' if skip else ''}]   # [T{' - 1' if skip else ''}, M]"
        + ("   the first token left out" if skip else ""),
        f"top = a.abs().amax(0).topk({int(n)})   # §1: the neurons with the largest |activation| anywhere",
        "counts, edges = torch.histogram(a.flatten().double(), bins=80)   # §4: all the layer's activations",
        "activity = acts.abs().amax(-1)   # [L, T] §4: every layer's strongest |activation| at each token",
    ]
    if skip:
        L += ["activity[:, 0] = float(\"nan\")   # the first token left out"]
    L += ["for i, score in zip(top.indices, top.values):",
          "    print(f\"L{layer}.N{int(i)}: {score:.2f}\")"]
    return _join(L)


def _layer_neurons(lm: LoadedModel, tr, layer: int) -> list[str]:
    """The model, the prompt, and one block's MLP neurons in `caught["post"]` [1, T, M]: a forward pre-hook on the
    down-projection, whose input is the neurons' activations (`blocks.{layer}.mlp.hook_post`)."""
    down = _module_name(lm, site(lm, f"blocks.{int(layer)}.mlp.hook_post").module)
    return _load(lm) + _ids(lm, tr.text, _kept(tr)) + [
        "",
        "caught = {}",
        f"down = model.get_submodule({down!r})   # the MLP's down-projection: its input is the neurons",
        "hook = down.register_forward_pre_hook(lambda module, args: caught.update(post=args[0]))",
        "try:",
        "    with torch.inference_mode():",
        "        model(ids)",
        "finally:",
        "    hook.remove()",
    ]


def mlp_token(lm: LoadedModel, tr, layer: int, position: int, n: int = 10) -> str:
    """MLP neurons §2: the neurons of one layer firing hardest (|activation|) at one token."""
    pos = int(position) % tr.n_tokens
    L = _layer_neurons(lm, tr, layer) + [
        f"pos = {pos}   # the token",
        f"at = caught[\"post\"][0, pos]   # [M] every neuron of block {int(layer)} at that token",
        f"top = at.abs().topk({int(n)})",
        "for i in top.indices:",
        f"    print(f\"L{int(layer)}.N{{int(i)}}: {{at[i]:+.3f}}\")",
    ]
    return _join(L)


def mlp_neuron(lm: LoadedModel, tr, layer: int, neuron: int) -> str:
    """One MLP neuron's activation at every token (MLP neurons §3): a forward pre-hook on the down-projection,
    whose input is the neurons' activations (`blocks.{layer}.mlp.hook_post`)."""
    L = _layer_neurons(lm, tr, layer) + [
        f"acts = caught[\"post\"][0, :, {int(neuron)}]   # [T] neuron {int(neuron)} of block {int(layer)}",
        "",
        "for i, a in zip(ids[0], acts):",
        "    print(f\"{tok.decode([int(i)])!r:>14} {a:+.3f}\")",
    ]
    return _join(L)


_ZERO_HEADS = [   # `zero_heads(hs)`: a forward pre-hook that switches heads off (needs `dh`)
    "def zero_heads(hs):   # the output projection's input holds every head's z side by side: zero a head's slice",
    "    def pre(module, args):",
    "        z = args[0].clone()",
    "        for h in hs:",
    "            z[..., h * dh:(h + 1) * dh] = 0",
    "        return (z, *args[1:])",
    "    return pre",
]


def attribution(lm: LoadedModel, tr, target: int | None = None) -> str:
    """Interventions §3: gradient × activation for log p(target) at every head's output z and every MLP neuron
    (interventions.attribution): one forward and one backward pass; switching a part off changes log p by about
    −(gradient · activation)."""
    import numpy as np

    target = int(np.argmax(tr.logits[-1])) if target is None else int(target)
    L = _load(lm) + _ids(lm, tr.text, _kept(tr)) + [
        "",
        f"target = {target}   # {lm.tokenizer.decode([target])!r}, the model's prediction",
        f"dh = {lm.d_head}   # numbers per head",
        _per_layer(lm, "out_projs", "attn.hook_z") + "   # their input: every head's z side by side",
        _per_layer(lm, "downs", "mlp.hook_post") + "   # their input: the MLP's neurons",
        "kept = {}",
        "",
        "def keep(key):   # the module's input, kept with its gradient",
        "    def pre(module, args):",
        "        x = args[0].clone()",
        "        x.retain_grad()",
        "        kept[key] = x",
        "        return (x, *args[1:])",
        "    return pre",
        "",
        "model.requires_grad_(False)   # gradients for the activations only, not the weights",
        "hooks = [model.get_submodule(m).register_forward_pre_hook(keep((\"head\", i)))",
        "         for i, m in enumerate(out_projs)]",
        "hooks += [model.get_submodule(m).register_forward_pre_hook(keep((\"mlp\", i))) for i, m in enumerate(downs)]",
        "try:",
        "    emb = model.get_input_embeddings()(ids).detach().requires_grad_(True)   # so that the pass keeps a graph",
        "    logp = model(inputs_embeds=emb).logits[0, -1].log_softmax(-1)[target]",
        "    logp.backward()",
        "finally:",
        "    for hook in hooks:",
        "        hook.remove()",
        "with torch.no_grad():",
        "    T = ids.shape[1]",
        "    heads = torch.stack([-(kept[\"head\", i].grad * kept[\"head\", i])[0].view(T, -1, dh).sum(dim=(0, 2))",
        "                         for i in range(len(out_projs))])   # [L, H] ≈ change in log p if switched off",
        "    neurons = torch.stack([-(kept[\"mlp\", i].grad * kept[\"mlp\", i])[0].sum(0)",
        "                           for i in range(len(downs))])   # [L, M]",
        "layer, head = divmod(int(heads.abs().argmax()), heads.shape[1])",
        "print(f\"log p = {logp.item():.3f}; the head that matters most:\",",
        "      f\"L{layer}.H{head} ({heads[layer, head]:+.2f})\")",
    ]
    return _join(L)


def knockout(lm: LoadedModel, heads: Sequence[tuple[int, int]], n: int = 20, seed: int = 5, trials: int = 5) -> str:
    """Interventions' named experiment (interventions.knockout_copying): copying on a random sequence repeated
    twice, as is, with the given heads switched off, and with as many random other heads switched off."""
    from .heads import repeated_period

    n = repeated_period(lm, n)
    chosen = [(int(a), int(b)) for a, b in heads]
    L = _load(lm) + _repeated(n, 1, seed) + [
        "",
        f"heads = {chosen!r}   # (layer, head): the strongest induction heads",
        f"dh = {lm.d_head}   # numbers per head",
        _per_layer(lm, "out_projs", "attn.hook_z") + "   # their input: every head's z side by side",
        "",
        *_ZERO_HEADS,
        "",
        "q = torch.arange(P + n, P + 2 * n - 1)   # second-copy positions that have a next token",
        "",
        "def copying(off):   # the mean probability of the right next token, with the heads `off` switched off",
        "    by_layer = {}",
        "    for layer, h in off:",
        "        by_layer.setdefault(layer, []).append(h)",
        "    hooks = [model.get_submodule(out_projs[layer]).register_forward_pre_hook(zero_heads(hs))",
        "             for layer, hs in by_layer.items()]",
        "    try:",
        "        with torch.inference_mode():",
        "            p = model(ids).logits[0].double().softmax(-1)   # [T, V]",
        "    finally:",
        "        for hook in hooks:",
        "            hook.remove()",
        "    return p[q, ids[0, q + 1]].mean().item()",
        "",
        "others = [(layer, h) for layer in range(len(out_projs)) for h in range(model.config.num_attention_heads)",
        "          if (layer, h) not in heads]",
        "before, without = copying([]), copying(heads)",
        f"rng = np.random.default_rng({int(seed)})   # the control: as many random other heads, {int(trials)} times",
        "random = [copying([others[i] for i in rng.choice(len(others), size=len(heads), replace=False)])",
        f"          for _ in range({int(trials)})]",
        "print(f\"copying {before:.1%}; with {heads} off {without:.1%}; random heads off:\",",
        "      \", \".join(f\"{r:.1%}\" for r in random))",
    ]
    return _join(L)


def ablation(lm: LoadedModel, tr, heads: Sequence[tuple[int, int]] = (), neurons: Sequence[tuple[int, int]] = ()
             ) -> str:
    """Interventions §2: the next-token distribution with heads and MLP neurons switched off, by forward
    pre-hooks that zero a head's slice of the output projection's input (`blocks.{l}.attn.hook_z`) and a neuron's
    column of the down-projection's input (`blocks.{l}.mlp.hook_post`)."""
    from .interventions import by_layer

    by_head, by_neuron = by_layer(heads), by_layer(neurons)
    out_proj = {layer: _module_name(lm, site(lm, f"blocks.{layer}.attn.hook_z").module) for layer in by_head}
    down = {layer: _module_name(lm, site(lm, f"blocks.{layer}.mlp.hook_post").module) for layer in by_neuron}
    L = _load(lm) + _ids(lm, tr.text, _kept(tr)) + [
        "",
        f"heads = {by_head!r}   # layer -> the heads switched off",
        f"neurons = {by_neuron!r}   # layer -> the MLP neurons switched off",
        f"dh = {lm.d_head}   # numbers per head",
        "",
        *_ZERO_HEADS,
        "",
        "def zero_neurons(ns):   # the down-projection's input is the MLP's neurons",
        "    def pre(module, args):",
        "        x = args[0].clone()",
        "        x[..., ns] = 0",
        "        return (x, *args[1:])",
        "    return pre",
        "",
        "with torch.inference_mode():",
        "    before = model(ids).logits[0, -1].softmax(-1)   # [V] the next token, as the model is",
        f"out_proj = {out_proj!r}",
        f"down = {down!r}",
        "hooks = [model.get_submodule(out_proj[layer]).register_forward_pre_hook(zero_heads(hs))",
        "         for layer, hs in heads.items()]",
        "hooks += [model.get_submodule(down[layer]).register_forward_pre_hook(zero_neurons(ns))",
        "          for layer, ns in neurons.items()]",
        "try:",
        "    with torch.inference_mode():",
        "        after = model(ids).logits[0, -1].softmax(-1)   # [V] with those parts switched off",
        "finally:",
        "    for hook in hooks:",
        "        hook.remove()",
        "",
        "top = int(before.argmax())",
        "print(f\"{tok.decode([top])!r}: {before[top]:.1%} before, {after[top]:.1%} after\")",
        "print(\"prediction after:\", repr(tok.decode([int(after.argmax())])))",
    ]
    return _join(L)


def _resid_stream(lm: LoadedModel) -> list[str]:
    """`resid_stream(ids)`: the residual stream at every layer boundary, [L+1, T, D]."""
    return [
        "",
        "# hidden_states ends with the last block's output after the final norm; the stream itself (what the app",
        "# and TransformerLens call blocks.{L-1}.hook_resid_post) is caught before it with a hook on that block.",
        f"last = model.get_submodule({_blocks_path(lm)!r})[-1]",
        "",
        "def resid_stream(ids):   # [L+1, T, D] row 0: the embeddings; row l: after block l-1",
        "    caught = {}",
        "    hook = last.register_forward_hook(",
        "        lambda module, args, out: caught.update(resid=out[0] if isinstance(out, tuple) else out))",
        "    try:",
        "        with torch.inference_mode():",
        "            out = model(ids, output_hidden_states=True)",
        "    finally:",
        "        hook.remove()",
        "    return torch.stack([*out.hidden_states[:-1], caught[\"resid\"]])[:, 0]",
    ]


def residual_norms(lm: LoadedModel, tr) -> str:
    """The length of the residual stream after every block (Logit lens §3)."""
    L = _load(lm) + _ids(lm, tr.text, _kept(tr)) + _resid_stream(lm) + [
        "",
        "norms = resid_stream(ids).norm(dim=-1)   # [L+1, T] row 0: the embeddings; row l: after block l-1",
        "print(norms.median(dim=1).values)   # the median token's length, layer by layer",
    ]
    return _join(L)


def in_context(lm: LoadedModel, sentences: Sequence[str], word: str, centered: bool = False) -> str:
    """Word vectors' in context: the residual stream at the word's (last) token in each sentence, layer by
    layer; optionally centred on each layer's mean over every token but the first; scaled to length 1, then the
    cosine between the sentences at each layer and one PCA of all the points (the trajectories)."""
    w = " ".join(str(word).split())
    L = _load(lm) + _resid_stream(lm) + [
        "",
        "import re",
        "from sklearn.decomposition import PCA",
        "",
        f"word = {w!r}",
        f"sentences = {list(sentences)!r}",
        "",
        "def position(sentence):   # the last token of the word's first whole-word use (any case)",
        "    enc = tok(sentence, return_offsets_mapping=True)",
        "    m = re.search(rf\"(?<!\\w){re.escape(word)}(?!\\w)\", sentence, flags=re.IGNORECASE)",
        "    return [t for t, (a, b) in enumerate(enc.offset_mapping) if b > a and a < m.end() and b > m.start()][-1]",
        "",
        "streams = [resid_stream(tok(s, return_tensors=\"pt\").input_ids).double() for s in sentences]"
        "   # [L+1, T, D] each",
        "X = torch.stack([r[:, position(s)] for r, s in zip(streams, sentences)])   # [C, L+1, D]: the word's vectors",
    ]
    if centered:
        L += ["# centre: take off each layer's mean over every token of the sentences (their first tokens, which",
              "# carry huge values, left out)",
              "X = X - torch.cat([r[:, 1:] for r in streams], dim=1).mean(1)[None]"]
    L += [
        "U = X / X.norm(dim=-1, keepdim=True)   # length 1: only the direction counts",
        "cosine = torch.einsum(\"ild,jld->lij\", U, U)   # [L+1, C, C] between the sentences, at each layer",
        "C, n, D = U.shape",
        "coords = PCA(n_components=2, svd_solver=\"full\").fit_transform(U.reshape(C * n, D).numpy()).reshape(C, n, 2)",
        "print(\"cosine between sentences 1 and 2, layer by layer:\", cosine[:, 0, 1].numpy().round(2))",
    ]
    return _join(L)


def parameters(lm: LoadedModel) -> str:
    """Anatomy §1: the parameter counts, from the configuration alone: the model built on PyTorch's meta device
    (shapes, no numbers), its tensors counted; a tied matrix is one tensor, counted once."""
    path, extra = model_source(lm)
    blocks = _blocks_path(lm)
    block = lm.arch.block_list(lm.model)[0]
    attn, mlp = (_module_name(lm, m)[len(_module_name(lm, block)) + 1:]
                 for m in (lm.arch.attention(block), block.get_submodule(lm.arch.mlp)))
    return _join([
        "import torch",
        "from transformers import AutoConfig, AutoModelForCausalLM",
        "",
        *path,
        f"config = AutoConfig.from_pretrained(path{extra})",
        "with torch.device(\"meta\"):   # shapes only: no memory for the numbers, no weights read",
        "    model = AutoModelForCausalLM.from_config(config)",
        "",
        "def count(module):",
        "    return sum(p.numel() for p in module.parameters())",
        "",
        "total = count(model)   # a tied output matrix is the embedding's own tensor: counted once",
        "embedding = model.get_input_embeddings().weight.numel()",
        "tied = model.get_output_embeddings().weight is model.get_input_embeddings().weight",
        f"block = model.get_submodule({blocks!r})[0]   # every block has the same shapes",
        f"attention, mlp = count(block.get_submodule({attn!r})), count(block.get_submodule({mlp!r}))",
        "norms = count(block) - attention - mlp",
        "matrices = sum(p.ndim == 2 for p in model.parameters())",
        "print(f\"{total:,} parameters; per block: attention {attention:,}, MLP {mlp:,}, norms {norms:,}\")",
        "print(f\"token embedding {embedding:,} ({embedding / total:.0%}), tied: {tied}, {matrices} weight matrices\")",
        "for precision, nbytes in ((\"float32\", 4), (\"float16\", 2), (\"4-bit\", 0.5)):",
        "    print(f\"{precision}: {total * nbytes / 1e6:,.0f} MB\")",
    ])


def map_box(lm: LoadedModel, tr, part, position: int) -> str:
    """Model map §2: one box's real values at one token (`model_map.part_values`), caught in one forward pass:
    a hook on the module whose output the box is (or whose input, for the heads' z and the MLP's neurons), the
    attention function's own queries, keys and values, or the model's outputs."""
    pos = int(position) % tr.n_tokens
    kind, layer = part.kind, part.layer
    L = _load(lm) + _ids(lm, tr.text, _kept(tr)) + ["", f"pos = {pos}   # the token looked at"]
    where = f"{part.name}" + ("" if layer is None else f" in block {layer}")
    if kind == "tokens":
        return _join(L + [f"values = ids[0, pos:pos + 1]   # {where}: the token's id", "print(values)"])
    if kind in ("q", "k", "v"):
        name = {"q": "queries", "k": "keys", "v": "values"}[kind]
        return _join(L + _catch_attention(lm, layer) + [
            "", f"values = {kind}[:, pos]   # [heads, d_head] the {name} at the token, one row a head",
            "print(values.shape)"])
    if kind in ("pattern", "unembed", "softmax"):
        pick = (f"out.attentions[{layer}][0, :, pos]   # [H, T] the token's row of every head" if kind == "pattern"
                else "out.logits[0, pos]   # [V] the logits" if kind == "unembed"
                else "out.logits[0, pos].softmax(-1)   # [V] the next token's probabilities")
        return _join(L + ["with torch.inference_mode():",
                          f"    out = model(ids{', output_attentions=True' if kind == 'pattern' else ''})",
                          f"values = {pick}", "print(values.shape)"])
    catch, note = [], ""
    if kind in ("z", "act"):       # the input of the output projection / the down-projection
        hook = f"blocks.{int(layer)}.attn.hook_z" if kind == "z" else f"blocks.{int(layer)}.mlp.hook_post"
        catch = [(_module_name(lm, site(lm, hook).module), "input")]
        note = ("the output projection's input: every head's z side by side" if kind == "z"
                else "the down-projection's input: the MLP's neurons")
    elif kind == "add" and part.module is None:   # after attention: the block's input plus what attention wrote
        block = _module_name(lm, lm.arch.block_list(lm.model)[int(layer)])
        catch = [(block, "input"), (_module_name(lm, site(lm, f"blocks.{int(layer)}.hook_attn_out").module), "output")]
        note = "the block's input plus the attention's output"
    else:
        catch = [(part.module, "output")]
        note = f"the output of {part.module}"
    L += ["",
          "caught = {}",
          "def first(x):",
          "    return x[0] if isinstance(x, tuple) else x",
          "",
          "hooks = []"]
    for i, (module, what) in enumerate(catch):
        if what == "input":
            L += [f"hooks.append(model.get_submodule({module!r}).register_forward_pre_hook(",
                  "    lambda module, args, kwargs: caught.update("
                  f"{{{i}: args[0] if args else kwargs[\"hidden_states\"]}}), with_kwargs=True))"]
        else:
            L += [f"hooks.append(model.get_submodule({module!r}).register_forward_hook(",
                  f"    lambda module, args, out: caught.update({{{i}: first(out)}})))"]
    L += ["try:",
          "    with torch.inference_mode():",
          "        model(ids)",
          "finally:",
          "    for hook in hooks:",
          "        hook.remove()"]
    total = " + ".join(f"caught[{i}]" for i in range(len(catch)))
    L += [f"values = ({total})[0, pos]   # {where}: {note}"]
    if kind == "z":
        L += [f"values = values.view({lm.n_heads}, -1)   # [heads, d_head]"]
    return _join(L + ["print(values.shape)"])


# -- the Tiny LM lab: its own small model (explainer.makemore), in plain PyTorch ----------------------------------


def _lab(block_size: int, n_embd: int, n_hidden: int) -> list[str]:
    """The lab's data and model, written out: the census names shuffled with seed 42 and split 80/10/10 by name,
    every (context, next character) example, and `new_model(seed)`, `logits(params, x)`, `sgd(params, lr)`."""
    from .makemore import _NAME_FILES

    return [
        "import importlib.util",
        "import math",
        "import random",
        "from pathlib import Path",
        "",
        "import torch",
        "import torch.nn.functional as F",
        "",
        "torch.set_num_threads(1)   # the app trains on one thread: the same sums in the same order, the same numbers",
        "",
        "# the US census first names (pip install names), lowercased, letters only, each once",
        "folder = Path(importlib.util.find_spec(\"names\").submodule_search_locations[0])",
        "seen = {}",
        f"for fname in {_NAME_FILES!r}:",
        "    for line in (folder / fname).read_text(encoding=\"ascii\").splitlines():",
        "        name = line.split()[0].lower() if line.strip() else \"\"",
        "        if name.isascii() and name.isalpha():",
        "            seen[name] = None",
        "words = list(seen)",
        "random.Random(42).shuffle(words)",
        "n1, n2 = int(0.8 * len(words)), int(0.9 * len(words))   # 80 / 10 / 10, by name",
        "",
        "CHARS = \".abcdefghijklmnopqrstuvwxyz\"   # '.' pads the start and marks the end",
        f"block = {int(block_size)}   # characters of context",
        "",
        "def examples(ws):   # for every character of every name (and its end), the block characters before it",
        "    xs, ys = [], []",
        "    for w in ws:",
        "        context = [0] * block",
        "        for ch in w + \".\":",
        "            xs.append(context)",
        "            ys.append(CHARS.index(ch))",
        "            context = context[1:] + [ys[-1]]",
        "    return torch.tensor(xs).reshape(-1, block), torch.tensor(ys)",
        "",
        "Xtr, Ytr = examples(words[:n1])",
        "Xdev, Ydev = examples(words[n1:n2])",
        f"E, H = {int(n_embd)}, {int(n_hidden)}   # numbers per character; tanh units",
        "",
        "def new_model(seed):   # C [27, E], W1 [block·E, H], b1 [H], W2 [H, 27], b2 [27]",
        "    g = torch.Generator().manual_seed(seed)",
        "    C = torch.randn(27, E, generator=g)",
        "    W1 = torch.randn(block * E, H, generator=g) * (5 / 3) / (block * E) ** 0.5   # Kaiming, for tanh",
        "    b1 = torch.randn(H, generator=g) * 0.01",
        "    W2 = torch.randn(H, 27, generator=g) * 0.01   # small: the first guess is nearly uniform",
        "    b2 = torch.zeros(27)",
        "    return [p.requires_grad_(True) for p in (C, W1, b1, W2, b2)]",
        "",
        "def logits(params, x):   # [N, block] -> [N, 27]",
        "    C, W1, b1, W2, b2 = params",
        "    h = torch.tanh(C[x].view(x.shape[0], -1) @ W1 + b1)",
        "    return h @ W2 + b2",
        "",
        "def sgd(params, lr):",
        "    with torch.no_grad():",
        "        for p in params:",
        "            p -= lr * p.grad",
        "            p.grad = None",
    ]


def lab_lr(block_size: int, n_embd: int, n_hidden: int, batch_size: int = 32, steps: int = 300) -> str:
    """Tiny LM lab §2: the learning-rate finder (makemore.lr_finder): a fresh model (seed 0) trained while the rate
    grows from 0.001 to 10, until the loss blows up; the suggestion is a third of the rate at the smoothed minimum."""
    return _join(_lab(block_size, n_embd, n_hidden) + [
        "",
        "import numpy as np",
        "",
        "params = new_model(0)",
        "g = torch.Generator().manual_seed(1)   # the batches",
        f"lrs = np.geomspace(1e-3, 10.0, {int(steps)})",
        "losses = []",
        "for lr in lrs:",
        f"    ix = torch.randint(0, len(Ytr), ({int(batch_size)},), generator=g)",
        "    loss = F.cross_entropy(logits(params, Xtr[ix]), Ytr[ix])",
        "    if not math.isfinite(loss.item()) or loss.item() > 4 * min(losses, default=math.inf):",
        "        break   # blown up",
        "    losses.append(loss.item())",
        "    loss.backward()",
        "    sgd(params, float(lr))",
        "smoothed, avg = [], losses[0]",
        "for v in losses:",
        "    avg = 0.9 * avg + 0.1 * v",
        "    smoothed.append(avg)",
        "suggested = float(lrs[int(np.argmin(smoothed))]) / 3",
        "print(f\"ran {len(losses)} steps; suggested learning rate {suggested:.2g}\")",
    ])


def lab_train(block_size: int, n_embd: int, n_hidden: int, seed: int, calls: Sequence[tuple],
              n: int = 20, temperature: float = 1.0, sample_seed: int = 0, prefix: str = "") -> str:
    """Tiny LM lab §3 and §4: the model of `seed` trained as the page trained it (`calls`: each press of Train or
    Train more, as (steps, learning rate, minibatch, batch seed)), its losses, then new names drawn with a seeded
    generator and the next character's probabilities after `prefix`."""
    L = _lab(block_size, n_embd, n_hidden) + [
        "",
        f"params = new_model({int(seed)})",
        "# each press of Train / Train more: (steps, learning rate, minibatch size, seed of its batches)",
        f"calls = {[(int(a), float(b), int(c), int(d)) for a, b, c, d in calls]!r}",
        "for steps, lr, batch, batch_seed in calls:",
        "    g = torch.Generator().manual_seed(batch_seed)",
        "    for step in range(1, steps + 1):",
        "        ix = torch.randint(0, len(Ytr), (batch,), generator=g)",
        "        loss = F.cross_entropy(logits(params, Xtr[ix]), Ytr[ix])",
        "        loss.backward()",
        "        sgd(params, lr if step <= 0.75 * steps else lr / 10)   # a tenth of the rate for the last quarter",
        "with torch.no_grad():",
        "    train_loss = F.cross_entropy(logits(params, Xtr), Ytr).item()",
        "    dev_loss = F.cross_entropy(logits(params, Xdev), Ydev).item()   # names it never trained on",
        "print(f\"train loss {train_loss:.3f}, dev loss {dev_loss:.3f} (ln 27 = {math.log(27):.3f})\")",
        "",
        f"# §4: {int(n)} new names, one character at a time, all side by side",
        f"g = torch.Generator().manual_seed({int(sample_seed)})",
        f"n, temperature, longest = {int(n)}, {_num(temperature)}, 30",
        "context = torch.zeros(n, block, dtype=torch.long)",
        "out = torch.zeros(n, longest, dtype=torch.long)",
        "alive = torch.ones(n, dtype=torch.bool)",
        "with torch.no_grad():",
        "    for t in range(longest):",
        "        probs = F.softmax(logits(params, context) / max(temperature, 1e-4), dim=-1)",
        "        ix = torch.multinomial(probs, 1, generator=g)[:, 0]",
        "        alive &= ix != 0   # '.' ends a name",
        "        out[:, t] = torch.where(alive, ix, 0)",
        "        if not alive.any():",
        "            break",
        "        context = torch.cat([context[:, 1:], ix[:, None]], dim=1)",
        "names = [\"\".join(CHARS[i] for i in row if i) for row in out.tolist()]",
        "print(names)",
    ]
    from .makemore import CHARS

    text = str(prefix or "").strip().lower()
    if text and all(c in CHARS and c != "." for c in text):
        L += ["",
              f"prefix = {text!r}   # the start of a name: the next character's probabilities",
              "context = ([0] * block + [CHARS.index(c) for c in prefix])[-block:]",
              "with torch.no_grad():",
              "    next_char = F.softmax(logits(params, torch.tensor([context])), dim=-1)[0]   # [27]; 0 is '.'",
              "print({c: round(float(p), 3) for c, p in zip(CHARS, next_char)})"]
    return _join(L)


def lab_overfit(block_size: int, n_names: int, n_hidden: int, n_embd: int = 10, steps: int = 600, lr: float = 0.3,
                seed: int = 0, eval_every: int = 25) -> str:
    """Tiny LM lab §5 (makemore.overfit_demo): a big network trained on all of a few names at every step, its loss
    on them and on the dev names every `eval_every` steps."""
    return _join(_lab(block_size, n_embd, n_hidden) + [
        "",
        f"Xfew, Yfew = examples(words[:max(2, {int(n_names)})])   # the first {int(n_names)} training names only",
        f"params = new_model({int(seed)})",
        "steps, train, dev = [], [], []",
        f"for step in range({int(steps)} + 1):",
        f"    if step % {int(eval_every)} == 0 or step == {int(steps)}:",
        "        with torch.no_grad():",
        "            steps.append(step)",
        "            train.append(F.cross_entropy(logits(params, Xfew), Yfew).item())",
        "            dev.append(F.cross_entropy(logits(params, Xdev), Ydev).item())",
        f"    if step == {int(steps)}:",
        "        break",
        "    F.cross_entropy(logits(params, Xfew), Yfew).backward()   # all the few names at every step",
        f"    sgd(params, {_num(lr)})",
        "best = steps[dev.index(min(dev))]",
        "print(f\"train loss {train[-1]:.2f}; dev loss lowest at step {best} ({min(dev):.2f}),\",",
        "      f\"at the end {dev[-1]:.2f}\")",
    ])


# The registry: every view with a code expander has its snippet here (tests/test_snippets.py runs each one and
# fails on a page's view that is missing).
VIEWS: dict[str, Callable[..., str]] = {
    "next_token": next_token,
    "timeline": timeline,
    "generate": generate,
    "chat": chat,
    "batch": batch,
    "analogy": analogy,
    "neighbours": neighbours,
    "similarity": similarity,
    "word_map": word_map,
    "direction": direction,
    "ablation": ablation,
    "attribution": attribution,
    "knockout": knockout,
    "attention_head": attention_head,
    "qk_steps": qk_steps,
    "head_writes": head_writes,
    "word_order": word_order,
    "head_roles": head_roles,
    "induction": induction,
    "logit_lens": logit_lens,
    "mlp_neuron": mlp_neuron,
    "mlp_layer": mlp_layer,
    "mlp_token": mlp_token,
    "lens_grid": lens_grid,
    "residual_norms": residual_norms,
    "in_context": in_context,
    "parameters": parameters,
    "map_box": map_box,
    "lab_lr": lab_lr,
    "lab_train": lab_train,
    "lab_overfit": lab_overfit,
}
