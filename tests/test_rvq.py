"""The residual vector quantiser of the token family: known answers, refinement per codebook, persistence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicprobe.errors import ConfigError
from musicprobe.models.rvq import ResidualVQ, RVQConfig, kmeans


def _clusters(seed: int = 0, n: int = 4000, k: int = 8, dim: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centres = 10 * torch.randn(k, dim, generator=g)
    labels = torch.randint(k, (n,), generator=g)
    return centres[labels] + 0.1 * torch.randn(n, dim, generator=g), centres


def test_kmeans_finds_well_separated_clusters():
    x, centres = _clusters()
    found = kmeans(x, 8, iters=20, generator=torch.Generator().manual_seed(1))
    # every true centre has a found centroid within the noise level
    dist = torch.cdist(centres, found).min(-1).values
    assert float(dist.max()) < 0.2, dist


def test_each_codebook_refines_the_reconstruction_and_the_first_one_quantises_clusters():
    x, _ = _clusters(dim=6)
    x = x + torch.randn(x.shape, generator=torch.Generator().manual_seed(2))  # structure left for later stages
    q = ResidualVQ.fit(x, RVQConfig(n_codebooks=3, codebook_size=16, iters=15, sample_frames=4000))
    errs = [float(((q.decode(q.encode(x, k)) - x) ** 2).mean()) for k in (1, 2, 3)]
    assert errs[0] > errs[1] > errs[2], errs
    codes = q.encode(x)
    assert codes.shape == (len(x), 3) and codes.dtype == torch.long and int(codes.max()) < 16
    # a frame that is exactly a sum of entries is encoded back to those entries
    exact = q.codebooks[0][3]
    assert torch.allclose(q.decode(q.encode(exact[None], 1)), exact[None])


def test_rvq_round_trips_through_files_and_refuses_bad_codes(tmp_path):
    x, _ = _clusters(n=600)
    q = ResidualVQ.fit(x, RVQConfig(n_codebooks=2, codebook_size=8, iters=5, sample_frames=500), meta={"corpus": 7})
    back = ResidualVQ.load(q.save(tmp_path / "rvq"))
    assert torch.equal(back.codebooks, q.codebooks) and back.meta["corpus"] == 7
    assert back.meta["config"]["codebook_size"] == 8
    with pytest.raises(ConfigError, match="0..7"):
        q.decode(torch.tensor([[8, 0]]))
    with pytest.raises(ConfigError, match="3 codebooks"):
        q.decode(torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(ConfigError, match="5 values"):
        q.encode(torch.zeros(2, 5))
    with pytest.raises(ConfigError, match="1..2"):
        q.encode(x[:2], n_codebooks=3)
    with pytest.raises(ConfigError, match="no RVQ codebooks"):
        ResidualVQ.load(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="sample_frames"):
        RVQConfig(codebook_size=64, sample_frames=10)


def test_rvq_codes_the_shared_codec_frames(pop_clip):
    """On the real codec's standardised log-mel frames (a 5 s clip), four stages beat one."""
    from musicprobe.models.codec import CodecConfig, MelCodec

    mel = MelCodec(CodecConfig(mel_mean=-4.36, mel_std=2.2)).mel(pop_clip.audio, 16000)
    frames = torch.as_tensor(np.ascontiguousarray(mel.T))
    q = ResidualVQ.fit(frames, RVQConfig(n_codebooks=4, codebook_size=32, iters=10, sample_frames=320))
    one = float(((q.decode(q.encode(frames, 1)) - frames) ** 2).mean())
    four = float(((q.decode(q.encode(frames)) - frames) ** 2).mean())
    assert four < 0.5 * one and four < 0.1 * float(frames.var())
