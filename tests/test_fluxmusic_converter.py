"""FluxMusic -> diffusers FluxTransformer2DModel: the key map on a random state dict of FluxMusic's layout, checked
against FluxMusic's forward written out from its layer equations (BFL Flux: modulation, QK-RMSNorm, RoPE on
adjacent pairs, joint attention, parallel single blocks, shift/scale final layer)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from musicprobe.errors import MusicProbeError
from musicprobe.models.backends.fluxmusic import (
    FLUXMUSIC_VERSIONS,
    FluxMusicVersion,
    convert_fluxmusic,
    fluxmusic_shapes,
    fluxmusic_transformer,
    load_fluxmusic_checkpoint,
)

TINY = FluxMusicVersion(hidden_size=64, depth=2, depth_single_blocks=2, axes_dim=(2, 2), num_heads=16,
                        vec_in_dim=12, context_in_dim=20)


def random_state(v: FluxMusicVersion, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: 0.2 * torch.randn(s, generator=g) for k, s in fluxmusic_shapes(v).items()}


# ---- FluxMusic's forward from its equations (the reference to check the converted model against) -----------
def _lin(sd, name, x):
    return F.linear(x, sd[f"{name}.weight"], sd[f"{name}.bias"])


def _rms(x, scale):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * scale


def _rope(x, ids, axes, theta=10000):
    """Rotate adjacent pairs of the head dim; each id axis owns ``axes[i]`` dims."""
    angles = []
    for i, d in enumerate(axes):
        omega = 1.0 / theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
        angles.append(ids[:, i, None].double() * omega)
    a = torch.cat(angles, -1).float()  # (L, head_dim / 2)
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = torch.stack([a.cos() * x0 - a.sin() * x1, a.sin() * x0 + a.cos() * x1], -1)
    return out.flatten(-2)


def _attention(q, k, v, ids, axes):
    q, k = _rope(q, ids, axes), _rope(k, ids, axes)
    return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2)


def _heads(x, n):
    return x.unflatten(-1, (n, -1)).transpose(1, 2)  # B L (H D) -> B H L D


def fluxmusic_forward(sd, v: FluxMusicVersion, x, ids_img, txt, ids_txt, t, y):
    h, n = v.hidden_size, v.num_heads
    half = 128
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    args = (t * 1000)[:, None] * freqs[None]
    temb = torch.cat([args.cos(), args.sin()], -1)
    vec = _lin(sd, "time_in.out_layer", F.silu(_lin(sd, "time_in.in_layer", temb)))
    vec = vec + _lin(sd, "vector_in.out_layer", F.silu(_lin(sd, "vector_in.in_layer", y)))
    img, txt = _lin(sd, "img_in", x), _lin(sd, "txt_in", txt)
    ids = torch.cat([ids_txt, ids_img])
    ln = lambda z: F.layer_norm(z, (h,), eps=1e-6)  # noqa: E731
    for i in range(v.depth):
        b = f"double_blocks.{i}"
        mods, qkvs = {}, {}
        for side, stream in (("img", img), ("txt", txt)):
            m = _lin(sd, f"{b}.{side}_mod.lin", F.silu(vec))[:, None].chunk(6, -1)
            mods[side] = m
            q, k, val = _heads(_lin(sd, f"{b}.{side}_attn.qkv", (1 + m[1]) * ln(stream) + m[0]), 3 * n).chunk(3, 1)
            qkvs[side] = (_rms(q, sd[f"{b}.{side}_attn.norm.query_norm.scale"]),
                          _rms(k, sd[f"{b}.{side}_attn.norm.key_norm.scale"]), val)
        q, k, val = (torch.cat([qkvs["txt"][j], qkvs["img"][j]], 2) for j in range(3))
        att = _attention(q, k, val, ids, v.axes_dim)
        att_txt, att_img = att[:, : txt.shape[1]], att[:, txt.shape[1]:]
        new = {}
        for side, stream, a in (("img", img, att_img), ("txt", txt, att_txt)):
            m = mods[side]
            stream = stream + m[2] * _lin(sd, f"{b}.{side}_attn.proj", a)
            hid = F.gelu(_lin(sd, f"{b}.{side}_mlp.0", (1 + m[4]) * ln(stream) + m[3]), approximate="tanh")
            new[side] = stream + m[5] * _lin(sd, f"{b}.{side}_mlp.2", hid)
        img, txt = new["img"], new["txt"]
    z = torch.cat([txt, img], 1)
    for i in range(v.depth_single_blocks):
        b = f"single_blocks.{i}"
        shift, scale, gate = _lin(sd, f"{b}.modulation.lin", F.silu(vec))[:, None].chunk(3, -1)
        qkv, mlp = _lin(sd, f"{b}.linear1", (1 + scale) * ln(z) + shift).split([3 * h, 4 * h], -1)
        q, k, val = _heads(qkv, 3 * n).chunk(3, 1)
        att = _attention(_rms(q, sd[f"{b}.norm.query_norm.scale"]), _rms(k, sd[f"{b}.norm.key_norm.scale"]), val,
                         ids, v.axes_dim)
        z = z + gate * _lin(sd, f"{b}.linear2", torch.cat([att, F.gelu(mlp, approximate="tanh")], -1))
    img = z[:, txt.shape[1]:]
    shift, scale = _lin(sd, "final_layer.adaLN_modulation.1", F.silu(vec)).chunk(2, 1)
    return _lin(sd, "final_layer.linear", (1 + scale[:, None]) * ln(img) + shift[:, None])


def test_converted_model_computes_what_fluxmusic_computes():
    sd = random_state(TINY)
    model = fluxmusic_transformer(sd, TINY)
    g = torch.Generator().manual_seed(1)
    x, txt = torch.randn(1, 6, 32, generator=g), torch.randn(1, 3, 20, generator=g)
    y, t = torch.randn(1, 12, generator=g), torch.tensor([0.37])
    ids_img = torch.stack([torch.zeros(6), torch.arange(6.0)], -1)  # time positions on the second axis
    ids_txt = torch.zeros(3, 2)
    ref = fluxmusic_forward(sd, TINY, x, ids_img, txt, ids_txt, t, y)
    with torch.no_grad():
        out = model(hidden_states=x, encoder_hidden_states=txt, pooled_projections=y, timestep=t,
                    img_ids=ids_img, txt_ids=ids_txt, return_dict=False)[0]
    assert ref.abs().max() > 0.1
    torch.testing.assert_close(out, ref, atol=2e-4, rtol=2e-4)


def test_every_key_is_mapped_and_the_papers_versions_fit():
    sd = random_state(TINY)
    before = {k: t.clone() for k, t in sd.items()}
    converted = convert_fluxmusic(sd, TINY)
    assert all(torch.equal(sd[k], before[k]) for k in sd)  # the user's state dict is not changed
    n_in = sum(t.numel() for t in sd.values())
    assert sum(t.numel() for t in converted.values()) == n_in
    # the released sizes: the converted keys and shapes are exactly FluxTransformer2DModel's (built on meta)
    from diffusers import FluxTransformer2DModel

    for name in ("small", "giant"):
        v = FLUXMUSIC_VERSIONS[name]
        with torch.device("meta"):
            model = FluxTransformer2DModel(**v.diffusers_config())
            fake = {k: torch.empty(s) for k, s in fluxmusic_shapes(v).items()}
        conv = convert_fluxmusic(fake, name)
        want = {k: tuple(p.shape) for k, p in model.state_dict().items()}
        assert {k: tuple(t.shape) for k, t in conv.items()} == want, name


def test_clear_errors_for_wrong_checkpoints(tmp_path):
    sd = random_state(TINY)
    with pytest.raises(MusicProbeError, match="has no 'single_blocks.1.linear1.weight'"):
        convert_fluxmusic({k: t for k, t in sd.items() if not k.startswith("single_blocks.1.linear1")}, TINY)
    with pytest.raises(MusicProbeError, match="does not know.*guidance_in"):
        convert_fluxmusic({**sd, "guidance_in.in_layer.weight": torch.zeros(1)}, TINY)
    with pytest.raises(MusicProbeError, match="no FluxMusic checkpoint"):
        load_fluxmusic_checkpoint(tmp_path / "musicflow_s.pt")
    torch.save({"ema": sd}, tmp_path / "mine.pt")
    with pytest.raises(MusicProbeError, match="cannot tell the FluxMusic version"):
        load_fluxmusic_checkpoint(tmp_path / "mine.pt")
