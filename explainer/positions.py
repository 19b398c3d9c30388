"""How a model knows word order: rotary positions (Llama, GPT-J, GPT-NeoX) or learned position vectors (GPT-2).

Rotary: before q·k, each head's query and key are cut into pairs of numbers and pair i is turned by the
angle p·θᵢ at position p, with θᵢ = 1 / base^(2i / rot) radians per position (rot: the dimensions rotated,
all of d_head or, for NeoX, a fraction). A query at position m and a key at position n then meet at the
angle (m − n)·θᵢ in every pair: q·k depends on how far apart they are, not on where. The frequencies are
read from the model's own rotary module (the `inv_freq` buffer of Llama's and NeoX's `rotary_emb`; GPT-J's
sinusoid table, whose position-1 row holds sin θᵢ and cos θᵢ), and also worked out from the config, so
that the page can say whether the two agree (they differ under rope scaling, e.g. Llama 3's).

Learned (GPT-2): a table `wpe` [n_ctx, D] whose row p is added to the token embedding at position p.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .arch import apply_rotary, config_value
from .models import LoadedModel
from .trace import readonly

GPTJ_BASE = 10000.0          # GPT-J's sinusoid table is built with a fixed base (create_sinusoidal_positions)


@dataclass(frozen=True, eq=False)
class Rotary:
    """A rotary model's position scheme, read from its own modules."""

    family: str
    d_head: int
    rot_dims: int              # dimensions rotated in each head (the rest pass through)
    interleaved: bool          # GPT-J pairs neighbours (2i, 2i+1); Llama and NeoX pair i with i + rot/2
    base: float                # θᵢ = 1 / base^(2i / rot)
    rope_type: str             # "default", or the rope scaling the config names
    source: str                # where inv_freq was read: the module and buffer
    inv_freq: np.ndarray       # [rot/2] θᵢ, radians per position, from the model's rotary module
    config_inv_freq: np.ndarray  # [rot/2] 1 / base^(2i / rot), from the config
    distances: np.ndarray      # [P] 0 … P-1
    similarity: np.ndarray     # [P] q·k of one vector (every number 1) as query at position d and key at 0,
                               # divided by its value at distance 0; rotated with the model's own cos and sin

    @property
    def n_pairs(self) -> int:
        return self.rot_dims // 2

    @property
    def degrees_per_token(self) -> np.ndarray:
        """How far each pair turns from one position to the next.  # [rot/2]"""
        return np.degrees(self.inv_freq.astype(np.float64))

    @property
    def wavelength(self) -> np.ndarray:
        """Positions for one full turn of each pair.  # [rot/2]"""
        return 2 * np.pi / self.inv_freq.astype(np.float64)

    @property
    def step_ratio(self) -> float | None:
        """How much faster each pair turns than the next one, when that is the same for every pair (a plain
        geometric series, base^(-2/rot)); None otherwise (rope scaling) or with a single pair."""
        deg = self.degrees_per_token
        if len(deg) < 2:
            return None
        ratios = deg[1:] / deg[:-1]
        return float(ratios[0]) if np.allclose(ratios, ratios[0], rtol=1e-4) else None

    @property
    def matches_config(self) -> bool:
        return bool(np.allclose(self.inv_freq, self.config_inv_freq, rtol=1e-5, atol=0))

    def pair(self, i: int) -> tuple[int, int]:
        """The two dimensions of a head that pair i turns together."""
        return (2 * i, 2 * i + 1) if self.interleaved else (i, i + self.n_pairs)


@dataclass(frozen=True, eq=False)
class Learned:
    """A model with a learned position table (GPT-2's `wpe`)."""

    family: str
    n_ctx: int
    d_model: int
    shown: int                 # P: positions compared below
    similarity: np.ndarray     # [P, P] cosine similarity between the position vectors 0 … P-1
    norms: np.ndarray          # [P] their lengths

    def mean_similarity(self, distance: int) -> float:
        """Average cosine similarity of position vectors `distance` apart (among the first P)."""
        return float(np.diagonal(self.similarity, offset=distance).mean())


def _rope_settings(config, d_head: int) -> tuple[float, float, str]:
    """(base, fraction of d_head rotated, rope type) as the config gives them (transformers 5 keeps them in
    `rope_parameters`; older configs as attributes; NeoX also as `rotary_pct`)."""
    rp = dict(getattr(config, "rope_parameters", None) or {})
    base = rp.get("rope_theta") or config_value(config, "rope_theta", "rotary_emb_base", default=10000.0)
    frac = rp.get("partial_rotary_factor") or config_value(config, "partial_rotary_factor", "rotary_pct", default=1.0)
    return float(base), float(frac), str(rp.get("rope_type") or "default")


def _config_inv_freq(base: float, rot: int) -> np.ndarray:
    return 1.0 / base ** (np.arange(0, rot, 2, dtype=np.float64) / rot)          # [rot/2]


def positions(lm: LoadedModel, max_distance: int = 1024, learned_shown: int = 64) -> Rotary | Learned:
    """The model's position scheme: `Rotary` (its frequencies and the q·k-against-distance curve over
    distances 0 … min(max_distance, n_ctx) - 1) or `Learned` (similarities of its first position vectors)."""
    arch, model, dh = lm.arch, lm.model, lm.d_head
    base_model = arch.base_model(model)
    if arch.pos_embed:
        w = arch.pos_embed_module(model).weight.detach().float().cpu().numpy().astype(np.float64)  # [n_ctx, D]
        P = min(learned_shown, w.shape[0])
        unit = w[:P] / np.linalg.norm(w[:P], axis=-1, keepdims=True)
        return Learned(family=arch.family, n_ctx=w.shape[0], d_model=w.shape[1], shown=P,
                       similarity=readonly(unit @ unit.T), norms=readonly(np.linalg.norm(w[:P], axis=-1)))
    rotary = base_model.rotary_emb
    P = min(max_distance, lm.n_ctx)
    pos = torch.arange(P, device=lm.device)[None]                                  # [1, P]
    probe = torch.ones(1, P, dh, dtype=torch.float32, device=lm.device)           # dtype and device for the module
    with torch.inference_mode():
        if arch.family == "gptj":   # GPT-J's module returns (sin, cos) [1, P, rot/2], each angle once
            sin, cos = (t.float() for t in rotary(probe, position_ids=pos))
            inv_freq = torch.atan2(sin[0, 1], cos[0, 1])                        # position 1: θᵢ itself
            cos, sin = cos.repeat_interleave(2, dim=-1), sin.repeat_interleave(2, dim=-1)   # [1, P, rot]
            base, frac, rope_type, source = GPTJ_BASE, (lm.model.config.rotary_dim or dh) / dh, "default", \
                "rotary_emb.embed_positions (position 1: sin θ, cos θ)"
            interleaved = True
        else:                       # Llama, NeoX: cos, sin [1, P, rot] (the angles twice: halves)
            inv_freq = rotary.inv_freq.float()                                    # [rot/2]
            cos, sin = (t.float() for t in rotary(probe, position_ids=pos))
            base, frac, rope_type = _rope_settings(model.config, dh)
            source, interleaved = "rotary_emb.inv_freq", False
        rot = cos.shape[-1]
        u = apply_rotary(torch.ones(1, 1, P, dh, device=lm.device), cos, sin, interleaved)[0, 0]   # [P, dh]
        dots = (u @ u[0]).double()                                                # [P] q at d, k at 0
    return Rotary(family=arch.family, d_head=dh, rot_dims=rot, interleaved=interleaved, base=base,
                  rope_type=rope_type, source=source, inv_freq=readonly(inv_freq.double().cpu().numpy()),
                  config_inv_freq=readonly(_config_inv_freq(base, int(dh * frac))),
                  distances=readonly(np.arange(P)), similarity=readonly((dots / dots[0]).cpu().numpy()))
