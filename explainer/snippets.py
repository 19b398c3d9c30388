"""The code behind each view: the few lines of plain `torch` + `transformers` that compute exactly what a view
shows, filled in with its live settings, to paste into a notebook and run as they are.

Every function returns Python source text. The model is loaded the way a student would load it
(`AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager")`, float32, on the CPU): for the
bundled model, `path` is the app's own safetensors cache folder (`models.bundled_cache_dir()`), so the snippet
runs offline. Module paths (the final norm, a block's MLP down-projection) are read from the hook sites
(`explainer.sites`), so they are right for every family. `tests/test_snippets.py` runs every snippet on the
bundled model and checks its numbers against the engine values the page charts.

Each snippet leaves its result in named variables (the test reads them): `probs` (next token), `pattern`
(one head), `lens` and `tracked` (logit lens), `acts` (one neuron), `norms` (residual stream), `new_ids` and
`text` (generate), `reply` (chat), `best` (analogy), `before` and `after` (ablation). Nothing here imports
Streamlit; the page passes its live settings in.
"""

from __future__ import annotations

import math
import os
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


def _module_name(lm: LoadedModel, module) -> str:
    for name, m in lm.model.named_modules():
        if m is module:
            return name
    raise LookupError(f"{module!r} is not a module of {lm.name}")


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


def analogy(lm: LoadedModel, positive: Sequence[str], negative: Sequence[str], k: int = 10,
            exclude_variants: bool = True) -> str:
    """Word vectors' analogies: rows of the input embedding matrix added and subtracted, every token ranked by
    cosine, the inputs left out (and their other spellings, with `exclude_variants`)."""
    from .words import word_ids

    words = [" ".join(str(w).split()) for w in (*positive, *negative)]
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
    L += ["",
          "def vec(w):   # a word of several tokens gets the mean of its pieces' rows",
          "    return E[word_ids(w)].mean(0)",
          "",
          f"positive, negative = {[words[i] for i in range(len(positive))]!r}, {words[len(positive):]!r}",
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


def mlp_neuron(lm: LoadedModel, tr, layer: int, neuron: int) -> str:
    """One MLP neuron's activation at every token (MLP neurons §3): a forward pre-hook on the down-projection,
    whose input is the neurons' activations (`blocks.{layer}.mlp.hook_post`)."""
    down = _module_name(lm, site(lm, f"blocks.{int(layer)}.mlp.hook_post").module)
    L = _load(lm) + _ids(lm, tr.text, _kept(tr)) + [
        "",
        "caught = {}",
        f"down = model.get_submodule({down!r})   # the MLP's down-projection: its input is the neurons",
        "hook = down.register_forward_pre_hook(lambda module, args: caught.update(post=args[0]))",
        "try:",
        "    with torch.inference_mode():",
        "        model(ids)",
        "finally:",
        "    hook.remove()",
        f"acts = caught[\"post\"][0, :, {int(neuron)}]   # [T] neuron {int(neuron)} of block {int(layer)}",
        "",
        "for i, a in zip(ids[0], acts):",
        "    print(f\"{tok.decode([int(i)])!r:>14} {a:+.3f}\")",
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
        "def zero_heads(hs):   # the output projection's input holds every head's output z side by side",
        "    def pre(module, args):",
        "        z = args[0].clone()",
        "        for h in hs:",
        "            z[..., h * dh:(h + 1) * dh] = 0",
        "        return (z, *args[1:])",
        "    return pre",
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


def residual_norms(lm: LoadedModel, tr) -> str:
    """The length of the residual stream after every block (Logit lens §3)."""
    L = _load(lm) + _ids(lm, tr.text, _kept(tr)) + [
        "",
        "# hidden_states ends with the last block's output after the final norm; the stream itself (what the app",
        "# and TransformerLens call blocks.{L-1}.hook_resid_post) is caught before it with a hook on that block.",
        "caught = {}",
        f"last = model.get_submodule({_blocks_path(lm)!r})[-1]",
        "hook = last.register_forward_hook(",
        "    lambda module, args, out: caught.update(resid=out[0] if isinstance(out, tuple) else out))",
        "try:",
        "    with torch.inference_mode():",
        "        out = model(ids, output_hidden_states=True)",
        "finally:",
        "    hook.remove()",
        "resid = torch.stack([*out.hidden_states[:-1], caught[\"resid\"]])[:, 0]   # [L+1, T, D]",
        "norms = resid.norm(dim=-1)   # [L+1, T] row 0: the embeddings; row l: after block l-1",
        "print(norms.median(dim=1).values)   # the median token's length, layer by layer",
    ]
    return _join(L)


# The registry: every view with a code expander has its snippet here (tests/test_snippets.py runs each one and
# fails on a page's view that is missing).
VIEWS: dict[str, Callable[..., str]] = {
    "next_token": next_token,
    "generate": generate,
    "chat": chat,
    "analogy": analogy,
    "ablation": ablation,
    "attention_head": attention_head,
    "logit_lens": logit_lens,
    "mlp_neuron": mlp_neuron,
    "residual_norms": residual_norms,
}
