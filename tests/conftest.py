import numpy as np
import pytest

from musicprobe.synth import make_clip

SR = 16000


@pytest.fixture(scope="session")
def pop_clip():
    return make_clip(11, genre="pop", lead="piano", mood="happy")


def sine(freq: float, dur: float = 1.0, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(dur * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


# a random-init mini-flux / mini-CLAP pair, small enough for fast editor tests (1 s clips, 16 tokens)
TINY_CODEC_KW = dict(n_frames=64, frames_per_token=4, mel_mean=-4.4, mel_std=2.2)


def make_tiny_flux(seed: int = 0):
    from musicprobe.models.codec import CodecConfig
    from musicprobe.models.miniflux import MiniFlux, MiniFluxConfig, build_transformer

    cfg = MiniFluxConfig(
        num_layers=1,
        num_single_layers=2,
        num_attention_heads=2,
        attention_head_dim=16,
        axes_dims_rope=(4, 6, 6),
        codec=CodecConfig(**TINY_CODEC_KW),
    )
    return MiniFlux(build_transformer(cfg, seed=seed), cfg)


def make_tiny_clap():
    import torch

    from musicprobe.models.codec import CodecConfig
    from musicprobe.models.miniclap import MiniClap, MiniClapConfig, MiniClapNet

    torch.manual_seed(0)
    cfg = MiniClapConfig(dim=32, channels=(16, 16), codec=CodecConfig(**TINY_CODEC_KW))
    return MiniClap(MiniClapNet(cfg), cfg)


def make_tiny_ldm(seed: int = 0):
    """A random-init mini-LDM on 1 s clips (latent 16 x 16 x 16), small enough for fast editor tests."""
    from musicprobe.models.codec import CodecConfig
    from musicprobe.models.minildm import MiniLDM, MiniLDMConfig, build_unet

    cfg = MiniLDMConfig(block_out_channels=(16, 32), attention_heads=2, codec=CodecConfig(**TINY_CODEC_KW))
    return MiniLDM(build_unet(cfg, seed=seed), cfg)


def make_tiny_sao(seed: int = 0):
    """A random-init mini-SAO on 1 s clips (16 tokens), small enough for fast editor tests."""
    from musicprobe.models.codec import CodecConfig
    from musicprobe.models.minisao import MiniSAO, MiniSAOConfig, build_network

    cfg = MiniSAOConfig(num_layers=3, num_attention_heads=4, num_key_value_attention_heads=2, attention_head_dim=8,
                        cross_attention_dim=16, time_proj_dim=8, codec=CodecConfig(**TINY_CODEC_KW))
    return MiniSAO(build_network(cfg, seed=seed), cfg)


def make_tiny_musicgen(seed: int = 0):
    """A random-init mini-MusicGen on 1 s clips (K=3 codebooks of 16 entries, random RVQ), for editor tests."""
    import torch

    from musicprobe.models.codec import CodecConfig
    from musicprobe.models.minimusicgen import MiniMusicGen, MiniMusicGenConfig, build_network
    from musicprobe.models.rvq import ResidualVQ

    codec = CodecConfig(**TINY_CODEC_KW)
    cfg = MiniMusicGenConfig(num_codebooks=3, codebook_size=16, hidden_size=32, num_hidden_layers=2,
                             num_attention_heads=4, ffn_dim=64, max_position_embeddings=128, codec=codec)
    g = torch.Generator().manual_seed(seed)
    rvq = ResidualVQ(torch.randn(3, 16, codec.n_mels, generator=g) * torch.tensor([1.0, 0.3, 0.1])[:, None, None])
    return MiniMusicGen(build_network(cfg, seed=seed), cfg, rvq=rvq)


def make_tiny_instructme(seed: int = 0, **over):
    """A random-init mini-InstructME on 1.024 s clips (latent 16 x 16 x 16, chunks of 32 frames), for editor tests."""
    from musicprobe.models.codec import CodecConfig
    from musicprobe.models.miniinstructme import MiniInstructME, MiniInstructMEConfig, build_network

    kw = dict(block_out_channels=(16, 32, 32), attention_heads=2, chunk_frames=32,
              codec=CodecConfig(**{**TINY_CODEC_KW, "n_frames": 64}))
    cfg = MiniInstructMEConfig(**{**kw, **over})
    return MiniInstructME(build_network(cfg, seed=seed), cfg)
