#!/usr/bin/env python3
"""PyTorch reference for GateLoop.Compiler's benchmarks and weight/logit checks.

Written from DESIGN.md, a plain port of the seed's code for benchmarking; not part of the product.
(The seed is lucidrains/gateloop-transformer: gateloop_transformer.py, simplified_gate_loop.py,
associative_scan.py and train.py.) The module tree follows the seed's, so state_dict names are the
checkpoint names DESIGN.md lists (layers.{i}.0.fn.to_qkv.weight, layers.{i}.0.norm.weight, to_logits...).
The gate loop runs the seed's way: a log-depth associative scan over the sequence with the operator
(a_i, kv_i) . (a_j, kv_j) = (a_j a_i, a_j kv_i + kv_j), checkpointed during training.

Needs only PyTorch (Debian: apt-get install python3-torch; use /usr/bin/python3). No einops, no
safetensors package needed (safetensors files are written and read by hand when it is missing).

Commands (see README.md beside this file):
  bench  --config small|seed|tiny|attention-small|enwik8-attention [--threads 2] [--device cpu|cuda] [--json]
  train  --config small|seed --data FILE [--steps 300] [--device cpu|cuda] [--json]
  long   --dim 512 --seq 65536 [--threads 2] [--device cpu|cuda] [--json]
  export --config small --out DIR
  verify
"""

import argparse
import json
import math
import os
import resource
import struct
import sys
import time


def _option(argv, name):
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def _early_threads(argv):
    # OpenBLAS and libgomp read these when they load: set them before torch is imported.
    threads = _option(argv, "--threads")
    if threads is not None:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ.setdefault(var, threads)
    # libgomp's default lets idle OpenMP threads spin. On a 2-core machine that other processes share, a
    # spinning thread holds a core that the other thread (or OpenBLAS's) needs, and every parallel region
    # waits for a time slice: forwards ran 10-40x slower with 2 threads than with 1. PASSIVE (threads sleep
    # at once) avoids that; --omp-wait-policy default leaves libgomp's own behaviour.
    policy = _option(argv, "--omp-wait-policy") or "passive"
    if policy.lower() != "default":
        os.environ.setdefault("OMP_WAIT_POLICY", policy.upper())


_early_threads(sys.argv)

try:
    import torch  # noqa: E402
except ImportError:
    # a pyenv or venv python3 on PATH often lacks Debian's python3-torch: retry with Debian's own python
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3", os.path.abspath(__file__)] + sys.argv[1:])
    sys.exit("PyTorch is missing: apt-get install -y python3-torch libopenblas0-pthread, then use /usr/bin/python3")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.checkpoint import checkpoint  # noqa: E402


# ----------------------------------------------------------------------------------------------
# helpers


class Fn(nn.Module):
    """A parameterless step (the seed uses einops' Rearrange layers here); keeps Sequential indices."""

    def __init__(self, fn, name=""):
        super().__init__()
        self.fn = fn
        self.name = name

    def forward(self, x):
        return self.fn(x)

    def extra_repr(self):
        return self.name


def sequential(*modules):
    modules = [m for m in modules if m is not None]
    if not modules:
        return nn.Identity()
    if len(modules) == 1:
        return modules[0]
    return nn.Sequential(*modules)


# ----------------------------------------------------------------------------------------------
# associative scan along dim 1 (the seed's port of jax.lax.associative_scan)


def associative_scan(operator, elems):
    """Inclusive scan of the tuple `elems` along dim 1; operator(earlier, later) -> combined."""
    elems = list(elems)
    n = elems[0].shape[1]
    if any(e.shape[1] != n for e in elems[1:]):
        raise ValueError("associative_scan: all elements need the same length along dim 1")
    if n < 2:
        return elems

    # combine neighbouring pairs (0,1), (2,3), ...; scan the halves; fill in the even positions
    reduced = operator([e[:, 0:-1:2] for e in elems], [e[:, 1::2] for e in elems])
    odd = associative_scan(operator, reduced)  # prefixes ending at positions 1, 3, 5, ...

    if n % 2 == 0:
        even = operator([e[:, :-1] for e in odd], [e[:, 2::2] for e in elems])
    else:
        even = operator(odd, [e[:, 2::2] for e in elems])

    even = [torch.cat([e[:, :1], r], dim=1) for e, r in zip(elems, even)]  # position 0 is itself
    return [_interleave(a, b) for a, b in zip(even, odd)]


def _interleave(a, b):
    length = a.shape[1] + b.shape[1]
    if a.shape[1] == b.shape[1] + 1:
        b = torch.cat([b, torch.zeros_like(b[:, :1])], dim=1)
    return torch.stack([a, b], dim=2).flatten(1, 2)[:, :length]


# ----------------------------------------------------------------------------------------------
# norms and wrappers


class RMSNorm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.scale = dim ** 0.5
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return F.normalize(x, dim=-1) * self.scale * self.gamma


class PreNorm(nn.Module):
    def __init__(self, dim, fn):
        super().__init__()
        self.fn = fn
        self.norm = RMSNorm(dim)

    def forward(self, x, **kwargs):
        return self.fn(self.norm(x), **kwargs) + x


class PostNorm(nn.Module):
    def __init__(self, dim, fn):
        super().__init__()
        self.fn = fn
        self.norm = nn.LayerNorm(dim)

    def forward(self, x, **kwargs):
        return self.norm(self.fn(x, **kwargs) + x)


def FeedForward(dim, mult=4):
    return nn.Sequential(nn.Linear(dim, dim * mult), nn.GELU(), nn.Linear(dim * mult, dim))


# ----------------------------------------------------------------------------------------------
# gate-looped attention


def gate_loop_operator(q, k, v, a):
    """q, k, v: (BH, N, P) real; a: (BH, N, 1, 1) complex. Returns (BH, N, P)."""
    kv = torch.einsum("bnd,bne->bnde", k, v) + 0.0j

    def op(x, y):
        a_i, kv_i = x
        a_j, kv_j = y
        return a_j * a_i, a_j * kv_i + kv_j

    _, kv = associative_scan(op, (a, kv))
    return torch.einsum("bnd,bnde->bne", q, kv.real)


def gate_loop_sequential(q, k, v, a):
    """The same recurrence as a plain loop over time (for verification only)."""
    bh, n, p = q.shape
    state = torch.zeros(bh, p, p, dtype=torch.complex64, device=q.device)
    outs = []
    for t in range(n):
        state = a[:, t] * state + (k[:, t, :, None] * v[:, t, None, :] + 0.0j)
        outs.append(torch.einsum("bd,bde->be", q[:, t], state.real))
    return torch.stack(outs, dim=1)


class GateLoopedAttention(nn.Module):
    def __init__(self, dim, heads=None, dim_inner=None, checkpoint_gate_looped_attn=True,
                 add_swish_gating=True, sub_ln=False, frac_gradient_state_transition=0.9):
        super().__init__()
        dim_inner = dim_inner or dim
        heads = heads or dim_inner
        assert dim_inner % heads == 0, f"dim_inner {dim_inner} must be divisible by gate loop heads {heads}"
        self.heads = heads
        self.frac_gradient_state_transition = frac_gradient_state_transition
        self.checkpoint_gate_looped_attn = checkpoint_gate_looped_attn

        self.to_qkv = nn.Linear(dim, dim_inner * 3, bias=False)
        self.to_a = nn.Sequential(nn.Linear(dim, heads * 2))  # seed: Linear, Rearrange -> name to_a.0
        self.maybe_sub_ln = nn.LayerNorm(dim_inner) if sub_ln else nn.Identity()
        self.to_gates = nn.Sequential(nn.Linear(dim, dim_inner, bias=False), nn.SiLU()) if add_swish_gating else None
        self.to_out = (nn.Linear(dim_inner, dim, bias=False)
                       if dim_inner != dim or add_swish_gating else nn.Identity())

    def split_heads(self, t):  # b n (h d) -> (b h) n d
        b, n, _ = t.shape
        return t.reshape(b, n, self.heads, -1).permute(0, 2, 1, 3).reshape(b * self.heads, n, -1)

    def merge_heads(self, t):  # (b h) n d -> b n (h d)
        bh, n, d = t.shape
        return t.reshape(bh // self.heads, self.heads, n, d).permute(0, 2, 1, 3).reshape(bh // self.heads, n, -1)

    def forward(self, x, ablate_complex=False, ablate_state_transition=False):
        b, n, _ = x.shape
        frac = self.frac_gradient_state_transition

        q, k, v = map(self.split_heads, self.to_qkv(x).chunk(3, dim=-1))

        a = self.to_a(x)  # b n (h c) -> (b h) n 1 1 c
        a = a.reshape(b, n, self.heads, 2).permute(0, 2, 1, 3).reshape(b * self.heads, n, 1, 1, 2)
        a = a * frac + a.detach() * (1 - frac)
        a = torch.view_as_complex(a)

        if ablate_complex:
            a = a.real + 0.0j

        if ablate_state_transition:
            a = torch.ones_like(a.real) + 0.0j
        else:
            a = torch.polar(a.abs().sigmoid(), a.angle())  # sigmoid on the magnitude, phase kept

        need_backwards = any(t.requires_grad for t in (q, k, v, a))
        if need_backwards and self.checkpoint_gate_looped_attn:
            # use_reentrant=True is torch 1.13's default, spelled out: newer torch warns (and may refuse) without it
            out = checkpoint(gate_loop_operator, q, k, v, a, use_reentrant=True)
        else:
            out = gate_loop_operator(q, k, v, a)

        out = self.maybe_sub_ln(self.merge_heads(out))
        if self.to_gates is not None:
            out = self.to_gates(x) * out
        return self.to_out(out)


# ----------------------------------------------------------------------------------------------
# softmax-attention baseline (the seed's CausalFullAttention)


class RotaryEmbedding(nn.Module):
    """rotary_embedding_torch's defaults: theta 10000, adjacent pairs rotated, frozen freqs parameter."""

    def __init__(self, dim, theta=10000):
        super().__init__()
        freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
        self.freqs = nn.Parameter(freqs, requires_grad=False)

    def rotate_queries_or_keys(self, t):
        n = t.shape[-2]
        pos = torch.arange(n, dtype=t.dtype, device=t.device)
        freqs = torch.einsum("n,f->nf", pos, self.freqs).repeat_interleave(2, dim=-1)
        rot = freqs.shape[-1]
        t_rot, t_pass = t[..., :rot], t[..., rot:]
        pairs = t_rot.reshape(*t_rot.shape[:-1], -1, 2)
        half = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).reshape(t_rot.shape)
        return torch.cat([t_rot * freqs.cos() + half * freqs.sin(), t_pass], dim=-1)


class CausalFullAttention(nn.Module):
    def __init__(self, dim, *, dim_head=64, heads=8, rotary_emb=False, add_swish_gating=False,
                 data_dependent_rel_pos=False, frac_gradient_data_dependent_rel_pos=0.5, softmax_normalize=None):
        super().__init__()
        dim_inner = dim_head * heads
        self.heads = heads
        self.softmax_normalize = (not data_dependent_rel_pos) if softmax_normalize is None else softmax_normalize
        self.scale = dim_head ** -0.5
        self.rotary_emb = RotaryEmbedding(dim_head) if rotary_emb else None

        def split(t):  # b n (h d) -> b h n d
            b, n, _ = t.shape
            return t.reshape(b, n, heads, -1).permute(0, 2, 1, 3)

        def split_qkv(t):  # b n (qkv h d) -> qkv b h n d
            b, n, _ = t.shape
            return t.reshape(b, n, 3, heads, -1).permute(2, 0, 3, 1, 4)

        def merge(t):  # b h n d -> b n (h d)
            b, h, n, d = t.shape
            return t.permute(0, 2, 1, 3).reshape(b, n, h * d)

        self.to_qkv = nn.Sequential(nn.Linear(dim, dim_inner * 3, bias=False), Fn(split_qkv, "b n (qkv h d) -> qkv b h n d"))

        self.data_dependent_rel_pos = data_dependent_rel_pos
        self.frac_gradient_data_dependent_rel_pos = frac_gradient_data_dependent_rel_pos
        if data_dependent_rel_pos:
            def split_c(t):  # b n (h d c) -> b h n d c
                b, n, _ = t.shape
                return t.reshape(b, n, heads, -1, 2).permute(0, 2, 1, 3, 4)
            self.to_a = nn.Sequential(nn.Linear(dim, dim_inner, bias=False), Fn(split_c, "b n (h d c) -> b h n d c"))

        self.to_gates = (nn.Sequential(nn.Linear(dim, dim_inner, bias=False), nn.SiLU(), Fn(split, "b n (h d) -> b h n d"))
                         if add_swish_gating else None)
        self.to_out = nn.Sequential(Fn(merge, "b h n d -> b n (h d)"), nn.Linear(dim_inner, dim))

    def forward(self, x, ablate_complex=False, ablate_state_transition=False):
        q, k, v = self.to_qkv(x)
        if self.rotary_emb is not None:
            q = self.rotary_emb.rotate_queries_or_keys(q)
            k = self.rotary_emb.rotate_queries_or_keys(k)
        q = q * self.scale

        if self.data_dependent_rel_pos and not ablate_state_transition:
            frac = self.frac_gradient_data_dependent_rel_pos
            a = self.to_a(x)
            a = a * frac + a.detach() * (1 - frac)
            a = torch.view_as_complex(a.contiguous())
            if ablate_complex:
                a = a.real + 0.0j
            a = torch.polar(a.abs().sigmoid(), a.angle())
            # as in the seed: the cumulative product runs over dim -2 of (b h n d 1), the channel pairs
            a_cumprod = a[..., None].cumprod(dim=-2)
            a_real = a_cumprod.real.clamp(min=1e-10)
            q = (q.reshape(*q.shape[:-1], -1, 2) * a_real).reshape(q.shape)
            k = (k.reshape(*k.shape[:-1], -1, 2) * (1.0 / a_real)).reshape(k.shape)

        sim = torch.einsum("bhid,bhjd->bhij", q, k)
        i, j = sim.shape[-2:]
        causal_mask = torch.ones((i, j), dtype=torch.bool, device=sim.device).triu(j - i + 1)
        if self.softmax_normalize:
            attn = sim.masked_fill(causal_mask, -torch.finfo(sim.dtype).max).softmax(dim=-1)
        else:
            attn = sim.masked_fill(causal_mask, 0.0)
        out = torch.einsum("bhij,bhjd->bhid", attn, v)
        if self.to_gates is not None:
            out = out * self.to_gates(x)
        return self.to_out(out)


# ----------------------------------------------------------------------------------------------
# transformer


class Transformer(nn.Module):
    def __init__(self, dim, *, num_tokens, depth, dim_head=64, heads=8, ff_mult=4, checkpoint_gate_looped_attn=True,
                 use_gate_looped_attn=True, gate_loop_heads=None, attn_add_swish_gating=True,
                 dim_gate_looped_attn=None, attn_softmax_normalize=None, data_dependent_rel_pos=False,
                 frac_gradient_state_transition=0.9, ablate_complex=False, ablate_state_transition=False,
                 rotary_emb=False, post_ln_norm=False, sub_ln=False):
        super().__init__()
        self.ablate_complex = ablate_complex
        self.ablate_state_transition = ablate_state_transition
        self.token_emb = nn.Embedding(num_tokens, dim)
        wrapper = PostNorm if post_ln_norm else PreNorm

        layers = []
        for _ in range(depth):
            if use_gate_looped_attn:
                mixer = GateLoopedAttention(dim=dim, heads=gate_loop_heads, dim_inner=dim_gate_looped_attn,
                                            add_swish_gating=attn_add_swish_gating, sub_ln=sub_ln,
                                            checkpoint_gate_looped_attn=checkpoint_gate_looped_attn,
                                            frac_gradient_state_transition=frac_gradient_state_transition)
            else:
                mixer = CausalFullAttention(dim=dim, dim_head=dim_head, heads=heads, rotary_emb=rotary_emb,
                                            add_swish_gating=attn_add_swish_gating,
                                            softmax_normalize=attn_softmax_normalize,
                                            data_dependent_rel_pos=data_dependent_rel_pos,
                                            frac_gradient_data_dependent_rel_pos=frac_gradient_state_transition)
            layers.append(nn.ModuleList([wrapper(dim, mixer), wrapper(dim, FeedForward(dim, ff_mult))]))
        self.layers = nn.ModuleList(layers)

        self.to_logits = sequential(None if post_ln_norm else RMSNorm(dim), nn.Linear(dim, num_tokens, bias=False))

    def forward(self, x, return_loss=False):
        if return_loss:
            x, labels = x[:, :-1], x[:, 1:]
        x = self.token_emb(x)
        for attn, ff in self.layers:
            x = attn(x, ablate_complex=self.ablate_complex, ablate_state_transition=self.ablate_state_transition)
            x = ff(x)
        logits = self.to_logits(x)
        if not return_loss:
            return logits
        return F.cross_entropy(logits.transpose(1, 2), labels)


# ----------------------------------------------------------------------------------------------
# simple gate loop (simplified_gate_loop.py)


def _simple_op(x, y):
    a_i, kv_i = x
    a_j, kv_j = y
    return a_j * a_i, torch.addcmul(kv_j, a_j, kv_i)


def heinsen_associative_scan(a, kv, eps=1e-20):
    """The seed's log-space scan (Heinsen 2023). The seed takes the complex log of kv to carry its sign and
    calls logcumsumexp on complex numbers, which torch 1.13 lacks; summing the positive and the negative
    terms apart in real log space gives the same result."""
    log_a = a.clamp(min=eps).log()
    a_star = torch.cumsum(log_a, dim=1)
    log_mag = kv.abs().clamp(min=eps).log() - a_star
    neg_inf = torch.full_like(log_mag, float("-inf"))
    pos = torch.logcumsumexp(torch.where(kv >= 0, log_mag, neg_inf), dim=1)
    neg = torch.logcumsumexp(torch.where(kv < 0, log_mag, neg_inf), dim=1)
    return a_star.exp(), (a_star + pos).exp() - (a_star + neg).exp()


def simple_gate_loop_operator(q, kv, a, cache=None, heinsen=False):
    """q, kv, a: (B*D, N, 1). cache: (last cumulative a, last state), each (B*D, 1)."""
    if cache is not None:
        a = torch.cat([cache[0][:, None], a], dim=1)
        kv = torch.cat([cache[1][:, None], kv], dim=1)
    if heinsen:
        a, kv = heinsen_associative_scan(a, kv)
    else:
        a, kv = associative_scan(_simple_op, (a, kv))
    if cache is not None:
        a, kv = a[:, 1:], kv[:, 1:]
    return q * kv, (a[:, -1], kv[:, -1])


class SimpleGateLoopLayer(nn.Module):
    def __init__(self, dim, prenorm=True, use_heinsen=False, post_ln=False, reverse=False):
        super().__init__()
        self.dim = dim
        self.norm = RMSNorm(dim) if prenorm else nn.Identity()

        def split(t):  # b n (qkva d) -> qkva (b d) n 1
            b, n, _ = t.shape
            return t.reshape(b, n, 3, dim).permute(2, 0, 3, 1).reshape(3, b * dim, n, 1)

        self.to_qkva = nn.Sequential(nn.Linear(dim, dim * 3, bias=False), Fn(split, "b n (qkva d) -> qkva (b d) n 1"))
        self.use_heinsen = use_heinsen
        self.maybe_post_ln = nn.LayerNorm(dim) if post_ln else nn.Identity()
        self.reverse = reverse

    def forward(self, x, cache=None, return_cache=False):
        if self.reverse:
            x = torch.flip(x, dims=(-2,))
        b, n, _ = x.shape
        q, kv, a = self.to_qkva(self.norm(x))
        out, cache = simple_gate_loop_operator(q, kv, a.sigmoid(), cache=cache, heinsen=self.use_heinsen)
        out = out.reshape(b, self.dim, n).transpose(1, 2)  # (b d) n 1 -> b n d
        out = self.maybe_post_ln(out)
        if self.reverse:
            out = torch.flip(out, dims=(-2,))
        if not return_cache:
            return out
        assert not self.reverse, "caching only works with non-reversed seq"
        return out, cache


# ----------------------------------------------------------------------------------------------
# configs (names as in GateLoop.Models' `gateloop models`)

CONFIGS = {
    "small": dict(num_tokens=256, dim=128, depth=4, gate_loop_heads=128, post_ln_norm=True),
    "seed": dict(num_tokens=256, dim=512, depth=6, gate_loop_heads=512, post_ln_norm=True),
    "tiny": dict(num_tokens=256, dim=64, depth=2, gate_loop_heads=64, post_ln_norm=True),
    # a pre-norm, multi-head (P = 4), sub-LayerNorm variant, to cover the other code paths in exports
    "tiny-prenorm": dict(num_tokens=256, dim=32, depth=2, gate_loop_heads=8, post_ln_norm=False, sub_ln=True),
    "attention-small": dict(num_tokens=256, dim=128, depth=4, post_ln_norm=True, use_gate_looped_attn=False,
                            heads=6, dim_head=30, rotary_emb=True),
    "enwik8-attention": dict(num_tokens=256, dim=512, depth=6, post_ln_norm=True, use_gate_looped_attn=False,
                             heads=8, dim_head=64, rotary_emb=True),
}
CONFIGS["gateloop-small"] = CONFIGS["small"]
CONFIGS["enwik8"] = CONFIGS["seed"]
CONFIGS["gateloop-tiny"] = CONFIGS["tiny"]

# attribute names of [GateLoopTransformer(...)] for config.json
ATTRIBUTE_NAMES = dict(num_tokens="NumTokens", dim="Dim", depth="Depth", gate_loop_heads="GateLoopHeads",
                       post_ln_norm="PostLayerNorm", sub_ln="SubLayerNorm", use_gate_looped_attn="UseGateLoopedAttn",
                       heads="Heads", dim_head="DimHead", rotary_emb="RotaryEmbedding", ff_mult="FeedForwardMult",
                       checkpoint_gate_looped_attn="CheckpointGateLoopedAttn")


# this script's config names -> `gateloop models` names
CLI_NAMES = {"small": "gateloop-small", "seed": "enwik8", "tiny": "gateloop-tiny"}


def build_model(config, checkpoint_gate_looped_attn=True):
    return Transformer(**CONFIGS[config], checkpoint_gate_looped_attn=checkpoint_gate_looped_attn)


# ----------------------------------------------------------------------------------------------
# sampling (train.py)


def gumbel_sample(t, temperature=1.0):
    noise = torch.zeros_like(t).uniform_(0, 1)
    gumbel = -torch.log((-torch.log(noise.clamp(min=1e-20))).clamp(min=1e-20))
    return (t / max(temperature, 1e-10) + gumbel).argmax(dim=-1)


def top_k(logits, thres=0.9):
    k = math.ceil((1 - thres) * logits.shape[-1])
    val, ind = torch.topk(logits, k)
    probs = torch.full_like(logits, float("-inf"))
    probs.scatter_(-1, ind, val)
    return probs


def base_decoding(net, prompt, seq_len, temperature=1.0, filter_thres=0.9):
    """The seed's generate: re-runs the whole prefix for every new token."""
    out = prompt.clone()
    for _ in range(max(0, seq_len - prompt.shape[-1])):
        logits = top_k(net(out)[:, -1], thres=filter_thres)
        out = torch.cat((out, gumbel_sample(logits, temperature)[..., None]), dim=-1)
    return out[..., prompt.shape[-1]:]


# ----------------------------------------------------------------------------------------------
# safetensors (by hand when the package is missing)


def save_safetensors(tensors, path, metadata=None):
    try:
        from safetensors.torch import save_file
        save_file({k: v.detach().contiguous().float() for k, v in tensors.items()}, path, metadata=metadata)
        return "safetensors"
    except ImportError:
        pass
    header, blobs, offset = {}, [], 0
    if metadata:  # first, as safetensors.torch.save_file writes it
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().to(torch.float32)
        data = t.numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)  # the data starts 8-byte aligned, as the safetensors package writes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    return "by hand"


def load_safetensors(path):
    import numpy as np
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        assert info["dtype"] == "F32", info
        b, e = info["data_offsets"]
        arr = np.frombuffer(raw[8 + n + b:8 + n + e], dtype="<f4").reshape(info["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


# ----------------------------------------------------------------------------------------------
# environment report


def blas_info():
    info = {"torch_blas_info": None, "blas_library": None, "openblas_core": None, "openblas_config": None,
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
            "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
            "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY")}
    cfg = torch.__config__.show()
    for part in cfg.replace("\n", ",").split(","):
        if "BLAS_INFO" in part and "LAPACK" not in part:
            info["torch_blas_info"] = part.strip()
    try:  # which libblas.so.3 the loader picked (Debian alternatives)
        with open("/proc/self/maps") as f:
            libs = sorted({line.split()[-1] for line in f if "blas" in line.lower() and "/" in line})
        info["blas_library"] = [os.path.realpath(p) for p in libs]
    except OSError:
        pass
    try:
        import ctypes
        lib = ctypes.CDLL("libblas.so.3")
        for key, fn in (("openblas_core", "openblas_get_corename"), ("openblas_config", "openblas_get_config")):
            if hasattr(lib, fn):
                f = getattr(lib, fn)
                f.restype = ctypes.c_char_p
                info[key] = f().decode()
        if hasattr(lib, "openblas_get_num_threads"):
            info["openblas_threads"] = lib.openblas_get_num_threads()
    except OSError:
        pass
    return info


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def summary(values, higher_is_better=True):
    best = max(values) if higher_is_better else min(values)
    return best, {"runs": [round(v, 4) for v in values], "best": round(best, 4),
                  "spread_pct": round(100 * (max(values) - min(values)) / best, 1) if best else None}


# ----------------------------------------------------------------------------------------------
# --device


def setup_device(name):
    """--device cpu|cuda -> torch.device. On cuda: float32 throughout (no autocast) with TF32 off, so GPU numbers
    are full-precision fp32 like the CPU's. Exits with code 2 when cuda is asked for and torch cannot use it."""
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        print(f"gateloop_reference.py: --device cuda: torch.cuda.is_available() is False (torch {torch.__version__}, "
              f"built with CUDA {torch.version.cuda})", file=sys.stderr, flush=True)
        sys.exit(2)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return torch.device("cuda", torch.cuda.current_device())


def now(device):
    """time.perf_counter(), read only after the GPU has finished the work queued so far (CUDA runs asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def reset_gpu_peak(device):
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def gpu_peak_bytes(device):
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device)


def device_info(device):
    """JSON keys for --device cuda; none on cpu, so the cpu JSON keeps its old keys."""
    if device.type != "cuda":
        return {}
    return dict(device=torch.cuda.get_device_name(device), device_type="cuda", cuda_version=torch.version.cuda,
                gpu_total_memory_bytes=torch.cuda.get_device_properties(device).total_memory,
                dtype="float32", autocast=False,
                tf32_matmul=torch.backends.cuda.matmul.allow_tf32, tf32_cudnn=torch.backends.cudnn.allow_tf32)


# ----------------------------------------------------------------------------------------------
# bench


def train_step(model, opt, batches, clip=0.5):
    """One optimizer step over accumulated micro-batches; returns their mean loss, as gateloop reports a step's."""
    total = 0.0
    for data in batches:
        loss = model(data, return_loss=True)
        (loss / len(batches)).backward()
        total += loss.item()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    opt.zero_grad()
    return total / len(batches)


def cmd_bench(args):
    device = setup_device(args.device)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    small = CONFIGS[args.config]["dim"] <= 128
    steps = args.steps or (3 if small else 1)
    repeats = args.repeats or (3 if small else 2)
    warmup = args.warmup if args.warmup is not None else 1

    model = build_model(args.config, checkpoint_gate_looped_attn=not args.no_checkpoint).to(device)  # init on CPU
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.99), eps=1e-8)
    corpus = torch.randint(0, 256, (1 << 20,), generator=torch.Generator().manual_seed(args.seed))

    def batch():
        starts = torch.randint(0, corpus.numel() - args.seq - 1, (args.batch,))
        return torch.stack([corpus[s:s + args.seq + 1] for s in starts.tolist()]).long().to(device)

    result = dict(config=args.config, model=CONFIGS[args.config], params=n_params, torch_version=torch.__version__,
                  threads=torch.get_num_threads(), checkpoint_gate_looped_attn=not args.no_checkpoint,
                  batch=args.batch, grad_accum=args.grad_accum, seq=args.seq, blas=blas_info())
    result.update(device_info(device))
    result["memory_before_train_bytes"] = peak_rss_bytes()

    if not args.skip_train:
        model.train()
        tokens_per_step = args.batch * args.grad_accum * args.seq
        t0 = now(device)
        for _ in range(warmup):
            first_loss = train_step(model, opt, [batch() for _ in range(args.grad_accum)])
        log(f"[{args.config}] warm-up: {warmup} step(s) in {now(device) - t0:.1f}s, loss {first_loss:.3f}")
        reset_gpu_peak(device)  # GPU peak of the timed steps
        rates = []
        for r in range(repeats):
            data = [[batch() for _ in range(args.grad_accum)] for _ in range(steps)]
            t0 = now(device)
            for d in data:
                loss = train_step(model, opt, d)
            dt = now(device) - t0
            rates.append(steps * tokens_per_step / dt)
            log(f"[{args.config}] train repeat {r}: {steps} step(s) in {dt:.2f}s = {rates[-1]:.0f} tokens/s, loss {loss:.3f}")
        result["train_tokens_per_s"], result["train"] = summary(rates)
        result["train"]["steps_per_repeat"] = steps
        result["train"]["tokens_per_step"] = tokens_per_step
        result["train"]["loss_first_step"] = first_loss
        result["train"]["loss_last_step"] = loss
        result["peak_memory_bytes"] = peak_rss_bytes()  # ru_maxrss: the process's peak, here = training's
        if device.type == "cuda":
            result["peak_gpu_memory_bytes"] = result["train"]["peak_gpu_memory_bytes"] = gpu_peak_bytes(device)

    if not args.skip_generate:
        model.eval()
        prompt = corpus[:args.prime].long()[None].to(device)
        modes = ["no_grad"] + (["autograd"] if args.gen_autograd else [])
        for mode in modes:
            ctx = torch.no_grad() if mode == "no_grad" else torch.enable_grad()
            with ctx:
                base_decoding(model, prompt, args.prime + 4)  # warm-up
                reset_gpu_peak(device)  # GPU peak of the timed repeats
                rates = []
                for r in range(repeats):
                    t0 = now(device)
                    out = base_decoding(model, prompt, args.prime + args.generate)
                    dt = now(device) - t0
                    rates.append(out.shape[-1] / dt)
                    log(f"[{args.config}] generate ({mode}) repeat {r}: {out.shape[-1]} tokens in {dt:.2f}s = {rates[-1]:.1f} tokens/s")
            key = "generate_tokens_per_s" if mode == "no_grad" else "generate_autograd_tokens_per_s"
            section = "generate" if mode == "no_grad" else "generate_autograd"
            result[key], result[section] = summary(rates)
            if device.type == "cuda":
                result[section]["peak_gpu_memory_bytes"] = gpu_peak_bytes(device)
        result["generate"].update(prime=args.prime, generate=args.generate,
                                  note="re-runs the whole prefix per token, top-k 0.9, gumbel; torch.no_grad()")
        if args.gen_autograd:
            result["generate_autograd"]["note"] = "as train.py calls it: grad mode on (so the gate loop is checkpointed)"
    result["peak_memory_end_bytes"] = peak_rss_bytes()
    if device.type == "cuda":  # the largest of the measured workloads' GPU peaks
        peaks = [result[s]["peak_gpu_memory_bytes"] for s in ("train", "generate", "generate_autograd") if s in result]
        result["peak_gpu_memory_bytes"] = max(peaks) if peaks else None
    emit(result, args.json)


def read_corpus(path):
    """A raw or .gz file, split 90% / 5% / 5% as gateloop's Corpus splits any file that is not enwik8."""
    import gzip
    with (gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")) as f:
        data = f.read()
    n = len(data)
    train_end, valid_end = n * 90 // 100, n * 95 // 100
    return torch.tensor(list(data[:train_end]), dtype=torch.uint8), torch.tensor(list(data[train_end:valid_end]), dtype=torch.uint8)


@torch.no_grad()
def evaluate(model, data, seq, device, batch=8):
    """gateloop eval's protocol: consecutive windows of seq+1 bytes with stride seq, the tail dropped; mean loss in nats."""
    model.eval()
    windows = (data.numel() - 1) // seq
    total = 0.0
    for w in range(0, windows, batch):
        rows = min(batch, windows - w)
        x = torch.stack([data[(w + r) * seq:(w + r) * seq + seq + 1] for r in range(rows)]).long().to(device)
        total += model(x, return_loss=True).item() * rows * seq
    model.train()
    return total / (windows * seq)


class GateLoopRng:
    """GateLoop.Runtime.Rng (xoshiro256** seeded through SplitMix64, Lemire's bounded integers), so that this script
    draws the same training crops as `gateloop train --seed S`."""
    MASK = (1 << 64) - 1

    def __init__(self, seed):
        x = seed & self.MASK
        self.s = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & self.MASK
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & self.MASK
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & self.MASK
            self.s.append(z ^ (z >> 31))

    @staticmethod
    def _rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & GateLoopRng.MASK

    def next_u64(self):
        s0, s1, s2, s3 = self.s
        result = (self._rotl((s1 * 5) & self.MASK, 7) * 9) & self.MASK
        t = (s1 << 17) & self.MASK
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = self._rotl(s3, 45)
        self.s = [s0, s1, s2, s3]
        return result

    def next_int(self, n):
        product = self.next_u64() * n
        if product & self.MASK < n:
            threshold = ((1 << 64) - n) % n
            while product & self.MASK < threshold:
                product = self.next_u64() * n
        return product >> 64


def cmd_train(args):
    """train.py's protocol on a text file (random crops, Adam lr 1e-4, β (0.9, 0.99), clip 0.5, accumulation), then the
    whole valid split evaluated as gateloop eval does: the run GateLoop.Compiler's convergence is compared with. The
    weights are those `export --seed S` writes and the crops those `gateloop train --seed S` draws, so `gateloop train
    --init <export> --seed S` makes the same run but for rounding."""
    device = setup_device(args.device)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train, valid = read_corpus(args.data)
    model = build_model(args.config).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.99), eps=1e-8)
    rng = GateLoopRng(args.seed)

    def batch():
        starts = [rng.next_int(train.numel() - args.seq) for _ in range(args.batch)]
        return torch.stack([train[s:s + args.seq + 1] for s in starts]).long().to(device)

    model.train()
    t0 = now(device)
    losses = []
    for step in range(1, args.steps + 1):
        losses.append(train_step(model, opt, [batch() for _ in range(args.grad_accum)], clip=args.clip))
        if step % max(1, args.steps // 10) == 0:
            log(f"[{args.config}] step {step}: loss {losses[-1]:.4f}")
    train_s = now(device) - t0
    valid_loss = evaluate(model, valid, args.seq, device)
    result = dict(config=args.config, data=args.data, steps=args.steps, batch=args.batch, grad_accum=args.grad_accum,
                  seq=args.seq, lr=args.lr, clip=args.clip, seed=args.seed, torch_version=torch.__version__,
                  train_s=train_s, train_tokens_per_s=args.steps * args.batch * args.grad_accum * args.seq / train_s,
                  train_loss_first=losses[0], train_loss_last=losses[-1], train_losses=losses, valid_loss=valid_loss,
                  valid_bpc=valid_loss / math.log(2), valid_tokens=((valid.numel() - 1) // args.seq) * args.seq)
    result.update(device_info(device))
    emit(result, args.json)


def cmd_long(args):
    device = setup_device(args.device)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    layer = SimpleGateLoopLayer(args.dim, use_heinsen=args.heinsen).eval().to(device)  # init on CPU
    x = torch.randn(1, args.seq, args.dim).to(device)
    base = peak_rss_bytes()
    times = []
    with torch.no_grad():
        for r in range(args.repeats + 1):
            if r == 1:
                reset_gpu_peak(device)  # GPU peak of the timed repeats, after the warm-up
            t0 = now(device)
            y = layer(x)
            dt = now(device) - t0
            log(f"long forward {'warm-up' if r == 0 else 'repeat ' + str(r)}: {dt:.3f}s")
            if r > 0:
                times.append(dt)
            del y
    best, detail = summary(times, higher_is_better=False)
    result = dict(config=f"SimpleGateLoop dim {args.dim}, 1 x {args.seq} x {args.dim}, no_grad, "
                         f"{'heinsen' if args.heinsen else 'associative scan'}",
                  dim=args.dim, seq=args.seq, torch_version=torch.__version__, threads=torch.get_num_threads(),
                  long_forward_s=best, long_forward=detail, memory_before_forward_bytes=base,
                  peak_memory_bytes=peak_rss_bytes())
    if device.type == "cuda":
        result["peak_gpu_memory_bytes"] = gpu_peak_bytes(device)
    result["blas"] = blas_info()
    result.update(device_info(device))
    emit(result, args.json)


def emit(result, as_json):
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            print(f"{k}: {v}")


# ----------------------------------------------------------------------------------------------
# export


EXPORT_TEXT = (b"<summary>Gets the number of elements contained in the collection.</summary> "
               b"GateLoop: fully data-controlled linear recurrence.")


def cmd_export(args):
    torch.manual_seed(args.seed)
    model = build_model(args.config)
    os.makedirs(args.out, exist_ok=True)
    state = model.state_dict()
    how = save_safetensors(state, os.path.join(args.out, "model.safetensors"), metadata={"format": "pt"})

    tokens = torch.tensor(list(EXPORT_TEXT[:args.length + 1]), dtype=torch.long)[None]
    model.eval()
    with torch.no_grad():
        logits = model(tokens[:, :-1])  # (1, length, num_tokens)
    model.train()
    loss = model(tokens, return_loss=True)  # predicts tokens[1:] from tokens[:-1]
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    save_safetensors(grads, os.path.join(args.out, "grads.safetensors"))
    save_safetensors({"logits": logits}, os.path.join(args.out, "logits.safetensors"))

    # config.json in the shape of GateLoop.Runtime's CheckpointConfig, so `gateloop eval --checkpoint DIR` reads it
    cfg = dict(CONFIGS[args.config])
    if cfg.get("use_gate_looped_attn", True):
        cfg.setdefault("gate_loop_heads", cfg["dim"])
    hyper = {ATTRIBUTE_NAMES[k]: (str(v) if not isinstance(v, bool) else ("True" if v else "False"))
             for k, v in cfg.items() if k in ATTRIBUTE_NAMES}
    config = dict(Format=1, Model=CLI_NAMES.get(args.config, args.config), Hyperparameters=hyper, Step=0,
                  Seed=args.seed, Source="PyTorch reference (bench/reference/gateloop_reference.py), "
                  f"torch {torch.__version__}, initialized with torch.manual_seed({args.seed})")
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)

    with open(os.path.join(args.out, "logits.json"), "w") as f:
        json.dump(dict(
            note="logits = model(input) in eval mode, no grad; loss = model(input + [next], return_loss=True), "
                 "mean cross-entropy in nats predicting tokens[1:] from tokens[:-1]; grads.safetensors holds "
                 "d loss / d parameter for that loss (frac-gradient 0.9 on to_a included)",
            tokens=tokens[0].tolist(), input=tokens[0, :-1].tolist(), shape=list(logits.shape),
            loss=loss.item(), logits=[float(v) for v in logits.flatten().tolist()]), f)
    log(f"wrote {args.out}: model.safetensors ({how}, {len(state)} tensors), grads.safetensors, "
        f"logits.safetensors, logits.json, config.json; loss {loss.item():.6f}")
    for name, t in state.items():
        log(f"  {name} {list(t.shape)}")


# ----------------------------------------------------------------------------------------------
# verify


def cmd_verify(args):
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    failures = []

    def check(name, ok, detail=""):
        print(f"{'ok  ' if ok else 'FAIL'} {name} {detail}")
        if not ok:
            failures.append(name)

    # 1. the gate loop scan against a sequential loop, values and gradients, P = 1 and P = 4, odd lengths
    for p in (1, 4):
        for n in (1, 2, 3, 7, 16, 33):
            q, k, v = (torch.randn(6, n, p, dtype=torch.float64, requires_grad=True) for _ in range(3))
            r = torch.randn(6, n, 1, 1, 2, dtype=torch.float64)
            r_c = torch.view_as_complex(r).clone().requires_grad_()
            a = torch.polar(r_c.abs().sigmoid(), r_c.angle())
            # complex128 for the check: cast the op's +0j through float64
            out_scan = _gate_loop_scan64(q, k, v, a)
            out_seq = _gate_loop_seq64(q, k, v, a)
            g = torch.randn_like(out_scan)
            inputs = (q, k, v, r_c)  # a_0 never matters (S_0 = 0): with N = 1 the scan does not touch it
            grads_scan = [torch.zeros_like(x) if d is None else d for x, d in
                          zip(inputs, torch.autograd.grad((out_scan * g).sum(), inputs, allow_unused=True,
                                                              retain_graph=True))]
            grads_seq = torch.autograd.grad((out_seq * g).sum(), inputs)
            err = (out_scan - out_seq).abs().max().item()
            gerr = max((x - y).abs().max().item() for x, y in zip(grads_scan, grads_seq))
            check(f"gate loop scan == sequential (P={p}, N={n})", err < 1e-10 and gerr < 1e-10,
                  f"max|diff| {err:.1e}, grads {gerr:.1e}")

    # the float32 operator used by the model, against the float32 loop
    q, k, v = (torch.randn(8, 37, 2) for _ in range(3))
    r = torch.view_as_complex(torch.randn(8, 37, 1, 1, 2))
    a = torch.polar(r.abs().sigmoid(), r.angle())
    err = (gate_loop_operator(q, k, v, a) - gate_loop_sequential(q, k, v, a)).abs().max().item()
    check("gate_loop_operator (float32) == sequential", err < 1e-4, f"max|diff| {err:.1e}")

    # 2. simple gate loop: scan, heinsen, sequential, cache continuation, reverse
    n, d = 41, 8
    q, kv = torch.randn(2 * d, n, 1), torch.randn(2 * d, n, 1)
    a = torch.rand(2 * d, n, 1) * 0.5 + 0.45
    s, ref = torch.zeros(2 * d, 1), []
    for t in range(n):
        s = a[:, t] * s + kv[:, t]
        ref.append(q[:, t] * s)
    ref = torch.stack(ref, 1)
    out, _ = simple_gate_loop_operator(q, kv, a)
    check("simple gate loop scan == sequential", (out - ref).abs().max() < 1e-5, f"{(out - ref).abs().max():.1e}")
    out_h, _ = simple_gate_loop_operator(q, kv, a, heinsen=True)
    check("simple gate loop heinsen == sequential", (out_h - ref).abs().max() < 1e-3, f"{(out_h - ref).abs().max():.1e}")
    layer = SimpleGateLoopLayer(d)
    x = torch.randn(2, n, d)
    full = layer(x)
    first, cache = layer(x[:, :20], return_cache=True)
    second = layer(x[:, 20:], cache=cache)
    err = (torch.cat([first, second], 1) - full).abs().max().item()
    check("simple gate loop cache continues exactly", err < 1e-5, f"{err:.1e}")
    rev = SimpleGateLoopLayer(d, reverse=True)
    rev.load_state_dict(layer.state_dict())
    err = (rev(x) - layer(x.flip(1)).flip(1)).abs().max().item()
    check("simple gate loop reverse == flipped forward", err < 1e-6, f"{err:.1e}")
    check("simple gate loop names", sorted(layer.state_dict()) == ["norm.gamma", "to_qkva.0.weight"],
          str(sorted(layer.state_dict())))

    # 3. state_dict names match DESIGN.md's checkpoint names
    for config, expect in (("small", _expected_names(4, post=True, gating=True, sub_ln=False)),
                           ("tiny-prenorm", _expected_names(2, post=False, gating=True, sub_ln=True))):
        names = set(build_model(config).state_dict())
        check(f"state_dict names ({config})", names == expect,
              f"extra {sorted(names - expect)[:4]} missing {sorted(expect - names)[:4]}")
    m = build_model("small")
    shapes = {k: list(v.shape) for k, v in m.state_dict().items()}
    ok = (shapes["layers.0.0.fn.to_qkv.weight"] == [384, 128] and shapes["layers.0.0.fn.to_a.0.weight"] == [256, 128]
          and shapes["layers.0.0.fn.to_out.weight"] == [128, 128] and shapes["layers.0.1.fn.0.weight"] == [512, 128]
          and shapes["to_logits.weight"] == [256, 128] and shapes["token_emb.weight"] == [256, 128])
    check("state_dict shapes (small)", ok)
    att = set(build_model("attention-small").state_dict())
    check("attention names", {"layers.0.0.fn.to_qkv.0.weight", "layers.0.0.fn.rotary_emb.freqs",
                              "layers.0.0.fn.to_gates.0.weight", "layers.0.0.fn.to_out.1.weight",
                              "layers.0.0.fn.to_out.1.bias"} <= att)

    # 4. loss at initialization is about ln 256 = 5.545
    for config in ("small", "tiny-prenorm", "attention-small"):
        torch.manual_seed(1)
        m = build_model(config)
        tokens = torch.randint(0, 256, (2, 129))
        loss = m(tokens, return_loss=True).item()
        check(f"loss at init ({config})", 4.5 < loss < 7.0, f"{loss:.3f} (ln 256 = {math.log(256):.3f})")

    # 5. checkpointing changes nothing; one Adam step lowers the loss on a repeated batch
    torch.manual_seed(2)
    m1 = build_model("tiny")
    m2 = build_model("tiny", checkpoint_gate_looped_attn=False)
    m2.load_state_dict(m1.state_dict())
    tokens = torch.randint(0, 256, (2, 65))
    m1(tokens, return_loss=True).backward()
    m2(tokens, return_loss=True).backward()
    gerr = max((p1.grad - p2.grad).abs().max().item() for p1, p2 in zip(m1.parameters(), m2.parameters()))
    check("checkpointed grads == plain grads", gerr < 1e-6, f"{gerr:.1e}")
    opt = torch.optim.Adam(m2.parameters(), lr=1e-3, betas=(0.9, 0.99))
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = m2(tokens, return_loss=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m2.parameters(), 0.5)
        opt.step()
        losses.append(loss.item())
    check("Adam steps lower the loss", losses[-1] < losses[0], f"{losses[0]:.3f} -> {losses[-1]:.3f}")

    # 6. safetensors round trip, and a model loaded from it gives the same logits
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.safetensors")
        how = save_safetensors(m1.state_dict(), path)
        loaded = load_safetensors(path)
        m3 = build_model("tiny")
        m3.load_state_dict(loaded)
        err = (m3(tokens) - m1(tokens)).abs().max().item()
        with open(path, "rb") as f:
            (hlen,) = struct.unpack("<Q", f.read(8))
        check(f"safetensors round trip ({how})", err == 0.0 and hlen % 8 == 0, f"logits diff {err}")

    # 7. sampling helpers
    logits = torch.randn(3, 256)
    kept = torch.isfinite(top_k(logits, 0.9)).sum(-1)
    check("top_k keeps ceil(0.1 * 256) = 26", bool((kept == 26).all()))
    sample = gumbel_sample(top_k(logits, 0.9))
    check("gumbel sample is within the top k", bool(torch.isfinite(top_k(logits, 0.9).gather(-1, sample[:, None])).all()))

    print(f"{len(failures) == 0 and 'all checks passed' or str(len(failures)) + ' failed: ' + ', '.join(failures)}")
    return 1 if failures else 0


def cmd_parity(args):
    """Compare against the seed's own modules (needs einops, rotary_embedding_torch and gateloop_transformer
    importable, e.g. from source checkouts on --seed-path): same state_dict names and shapes; with the seed's
    weights loaded, the same logits, loss and gradients."""
    if args.seed_path:
        sys.path[:0] = args.seed_path.split(os.pathsep)
    try:
        from gateloop_transformer import Transformer as SeedTransformer
        from gateloop_transformer.simplified_gate_loop import SimpleGateLoopLayer as SeedSimple
    except ImportError as e:
        print(f"skipped: the seed is not importable ({e})")
        return 0
    torch.set_num_threads(args.threads)
    failures = []

    def check(name, ok, detail=""):
        print(f"{'ok  ' if ok else 'FAIL'} {name} {detail}")
        if not ok:
            failures.append(name)

    extra = {"attention-ddrp": dict(num_tokens=256, dim=64, depth=2, use_gate_looped_attn=False, heads=4,
                                    dim_head=16, data_dependent_rel_pos=True, post_ln_norm=False),
             "tiny-ablate": dict(num_tokens=256, dim=32, depth=1, gate_loop_heads=4, ablate_complex=True,
                                 attn_add_swish_gating=False, dim_gate_looped_attn=32)}
    for config in ("tiny", "tiny-prenorm", "small", "attention-small", "attention-ddrp", "tiny-ablate"):
        kwargs = extra.get(config) or CONFIGS[config]
        torch.manual_seed(3)
        seed_model = SeedTransformer(**kwargs)
        mine = Transformer(**kwargs)
        s_shapes = {k: tuple(v.shape) for k, v in seed_model.state_dict().items()}
        m_shapes = {k: tuple(v.shape) for k, v in mine.state_dict().items()}
        check(f"[{config}] state_dict names and shapes == seed's", s_shapes == m_shapes,
              f"{len(s_shapes)} tensors" if s_shapes == m_shapes else
              f"seed only {sorted(set(s_shapes) - set(m_shapes))[:3]}, mine only {sorted(set(m_shapes) - set(s_shapes))[:3]}")
        if s_shapes != m_shapes:
            continue
        torch.manual_seed(3)
        same_init = Transformer(**kwargs).state_dict()
        check(f"[{config}] same initialization under the same torch.manual_seed",
              all(torch.equal(same_init[k], v) for k, v in seed_model.state_dict().items()))
        mine.load_state_dict(seed_model.state_dict())
        tokens = torch.randint(0, 256, (2, 97))
        with torch.no_grad():
            err = (seed_model(tokens) - mine(tokens)).abs().max().item()
        l1 = seed_model(tokens, return_loss=True)
        l2 = mine(tokens, return_loss=True)
        l1.backward()
        l2.backward()
        g1 = dict(seed_model.named_parameters())
        gerr = max(((g1[n].grad - p.grad).abs().max().item() if p.grad is not None else 0.0)
                   for n, p in mine.named_parameters())
        check(f"[{config}] logits, loss, grads == seed's", err < 1e-4 and abs(l1.item() - l2.item()) < 1e-5 and gerr < 1e-4,
              f"logits {err:.1e}, loss {l1.item():.6f} vs {l2.item():.6f}, grads {gerr:.1e}")

    for kw in (dict(), dict(post_ln=True), dict(reverse=True), dict(prenorm=False)):
        torch.manual_seed(4)
        seed_layer, layer = SeedSimple(32, **kw), SimpleGateLoopLayer(32, **kw)
        layer.load_state_dict(seed_layer.state_dict())
        x = torch.randn(2, 45, 32)
        err = (seed_layer(x) - layer(x)).abs().max().item()
        check(f"SimpleGateLoopLayer{kw or ''} == seed's", err < 1e-5, f"{err:.1e}")
    seed_layer, layer = SeedSimple(32), SimpleGateLoopLayer(32)
    layer.load_state_dict(seed_layer.state_dict())
    x = torch.randn(2, 45, 32)
    _, c1 = seed_layer(x[:, :20], return_cache=True)
    _, c2 = layer(x[:, :20], return_cache=True)
    err = (seed_layer(x[:, 20:], cache=c1) - layer(x[:, 20:], cache=c2)).abs().max().item()
    check("SimpleGateLoopLayer with cache == seed's", err < 1e-5, f"{err:.1e}")

    print("all parity checks passed" if not failures else f"{len(failures)} failed: " + ", ".join(failures))
    return 1 if failures else 0


def _gate_loop_scan64(q, k, v, a):
    kv = torch.einsum("bnd,bne->bnde", k, v).to(torch.complex128)

    def op(x, y):
        return y[0] * x[0], y[0] * x[1] + y[1]

    _, kv = associative_scan(op, (a, kv))
    return torch.einsum("bnd,bnde->bne", q, kv.real)


def _gate_loop_seq64(q, k, v, a):
    state = torch.zeros(q.shape[0], q.shape[2], q.shape[2], dtype=torch.complex128)
    outs = []
    for t in range(q.shape[1]):
        state = a[:, t] * state + (k[:, t, :, None] * v[:, t, None, :]).to(torch.complex128)
        outs.append(torch.einsum("bd,bde->be", q[:, t], state.real))
    return torch.stack(outs, dim=1)


def _expected_names(depth, post, gating, sub_ln):
    names = {"token_emb.weight"}
    norm = ["norm.weight", "norm.bias"] if post else ["norm.gamma"]
    for i in range(depth):
        p = f"layers.{i}.0."
        names |= {p + "fn.to_qkv.weight", p + "fn.to_a.0.weight", p + "fn.to_a.0.bias", p + "fn.to_out.weight"}
        if gating:
            names.add(p + "fn.to_gates.0.weight")
        if sub_ln:
            names |= {p + "fn.maybe_sub_ln.weight", p + "fn.maybe_sub_ln.bias"}
        names |= {p + n for n in norm}
        f = f"layers.{i}.1."
        names |= {f + "fn.0.weight", f + "fn.0.bias", f + "fn.2.weight", f + "fn.2.bias"} | {f + n for n in norm}
    names |= {"to_logits.weight"} if post else {"to_logits.0.gamma", "to_logits.1.weight"}
    return names


# ----------------------------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    b = sub.add_parser("bench", help="training and generation tokens/s, peak memory")
    b.add_argument("--config", default="small", choices=sorted(CONFIGS))
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--json", action="store_true")
    b.add_argument("--batch", type=int, default=4)
    b.add_argument("--grad-accum", type=int, default=4)
    b.add_argument("--seq", type=int, default=256)
    b.add_argument("--steps", type=int, default=0, help="optimizer steps per timed repeat (default 3 small, 1 large)")
    b.add_argument("--warmup", type=int, default=None, help="untimed optimizer steps first (default 1)")
    b.add_argument("--repeats", type=int, default=0, help="timed repeats (default 3 small, 2 large)")
    b.add_argument("--prime", type=int, default=128)
    b.add_argument("--generate", type=int, default=128)
    b.add_argument("--gen-autograd", action="store_true",
                   help="also time generation with grad mode on, as train.py calls base_decoding")
    b.add_argument("--no-checkpoint", action="store_true", help="do not checkpoint the gate loop")
    b.add_argument("--skip-train", action="store_true")
    b.add_argument("--skip-generate", action="store_true")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--omp-wait-policy", default="passive", help="passive (default), active, or default (libgomp's)")
    b.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                     help="cpu (default) or cuda: model and tensors on the GPU, fp32 with TF32 off")
    b.set_defaults(func=cmd_bench)

    t = sub.add_parser("train", help="train.py's protocol on a text file, then the valid split's loss as gateloop eval measures it")
    t.add_argument("--config", default="small", choices=sorted(CONFIGS))
    t.add_argument("--data", required=True, help="raw or .gz text, split 90/5/5 as gateloop splits it")
    t.add_argument("--steps", type=int, default=300)
    t.add_argument("--batch", type=int, default=4)
    t.add_argument("--grad-accum", type=int, default=4)
    t.add_argument("--seq", type=int, default=256)
    t.add_argument("--lr", type=float, default=1e-4)
    t.add_argument("--clip", type=float, default=0.5)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--json", action="store_true")
    t.add_argument("--omp-wait-policy", default="passive", help="passive (default), active, or default (libgomp's)")
    t.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                   help="cpu (default) or cuda: model and tensors on the GPU, fp32 with TF32 off")
    t.set_defaults(func=cmd_train)

    lg = sub.add_parser("long", help="SimpleGateLoop forward over one long sequence")
    lg.add_argument("--dim", type=int, default=512)
    lg.add_argument("--seq", type=int, default=65536)
    lg.add_argument("--threads", type=int, default=2)
    lg.add_argument("--repeats", type=int, default=3)
    lg.add_argument("--heinsen", action="store_true")
    lg.add_argument("--json", action="store_true")
    lg.add_argument("--seed", type=int, default=0)
    lg.add_argument("--omp-wait-policy", default="passive", help="passive (default), active, or default (libgomp's)")
    lg.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                      help="cpu (default) or cuda: model and tensors on the GPU, fp32 with TF32 off")
    lg.set_defaults(func=cmd_long)

    e = sub.add_parser("export", help="initialized weights, logits and gradients for the C# side to check against")
    e.add_argument("--config", default="small", choices=sorted(CONFIGS))
    e.add_argument("--out", required=True)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--length", type=int, default=64, help="input tokens (at most %d)" % (len(EXPORT_TEXT) - 1))
    e.set_defaults(func=cmd_export)

    v = sub.add_parser("verify", help="checks of this port (scan vs loop, names, loss at init, ...)")
    v.add_argument("--threads", type=int, default=2)
    v.set_defaults(func=cmd_verify)

    pa = sub.add_parser("parity", help="compare with the seed's own code, where it is importable")
    pa.add_argument("--seed-path", default="", help="folders holding gateloop_transformer, einops, rotary_embedding_torch")
    pa.add_argument("--threads", type=int, default=2)
    pa.set_defaults(func=cmd_parity)

    args = parser.parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
