"""The FluxMusic backend on tiny parts (its transformer converted from a random state dict of FluxMusic's layout):
protocol, patch layout, MusRec end to end, and assembling the released layout from a checkpoint and folders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicprobe.editors.musrec import MusRec, MusRecConfig
from musicprobe.models.backends import FluxMusicBackend, FluxMusicPipeline, load_backend, tiny_backend
from musicprobe.models.backends.fluxmusic import fluxmusic_shapes
from musicprobe.models.backends.tiny import tiny_fluxmusic_version
from musicprobe.models.protocols import FlowModel, family_of

PROMPT = "a calm piano melody"


@pytest.fixture(scope="module")
def fm():
    return tiny_backend("fluxmusic", seconds=1.28)


def _tone(sr: int = 16000, seconds: float = 1.0) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


def test_backend_is_a_flow_model_over_two_by_two_patches(fm):
    assert isinstance(fm, FlowModel) and family_of(fm) == "flow" and fm.family == "flux"
    z = fm.vae_latent(_tone(), 16000)
    assert z.shape == (1, 4, 32, 16) and fm.grid == (16, 8)
    tokens = fm.patchify(z)
    assert tokens.shape == (1, 128, 16) and torch.equal(fm.unpatchify(tokens), z)
    assert torch.equal(tokens[0, 1], z[0, :, 0:2, 2:4].reshape(-1))  # time-major: token 1 = first rows, next columns
    img_ids, txt_ids = fm.ids(16)
    assert img_ids[9].tolist() == [0.0, 1.0, 1.0] and not txt_ids.any()
    assert fm.decode(fm.encode(_tone(), 16000)).shape == (fm.n_samples,)


def test_guidance_runs_against_the_negative_prompt(fm):
    x = fm.noise(1)
    cond, neg = fm.velocity(x, 0.6, PROMPT), fm.velocity(x, 0.6, fm.negative)
    torch.testing.assert_close(fm.velocity(x, 0.6, PROMPT, guidance=4.0), neg + 4.0 * (cond - neg), atol=1e-5,
                               rtol=1e-5)


def test_musrec_runs_end_to_end_on_fluxmusic(fm):
    editor = MusRec(fm, MusRecConfig(steps=6, inject="v", inject_steps=2), clap=None)
    res = editor.edit(_tone(22050), PROMPT, "a calm flute melody", sr=22050)
    plain = MusRec(fm, MusRecConfig(steps=6, inject_steps=0), clap=None).edit(_tone(22050), PROMPT,
                                                                              "a calm flute melody", sr=22050)
    assert res.sr == 16000 and res.edited.shape == (16000,) and np.isfinite(res.edited).all()
    assert not np.allclose(res.edited, plain.edited)  # the injection acts
    assert editor.probe.active_hooks() == []


def test_assembling_the_released_layout_from_a_checkpoint_and_folders(fm, tmp_path):
    # musicflow_*.pt (weights under "ema") + AudioLDM2's vae / vocoder + T5 + CLAP, each from a folder
    g = torch.Generator().manual_seed(0)
    version = tiny_fluxmusic_version()
    state = {k: 0.1 * torch.randn(s, generator=g) for k, s in fluxmusic_shapes(version).items()}
    torch.save({"ema": state, "opt": {}}, tmp_path / "musicflow_tiny.pt")
    p = fm.pipe
    p.vae.save_pretrained(tmp_path / "audioldm2" / "vae")
    p.vocoder.save_pretrained(tmp_path / "audioldm2" / "vocoder")
    for part, tok, name in ((p.text_encoder, p.tokenizer, "t5"), (p.clap, p.clap_tokenizer, "clap")):
        part.save_pretrained(tmp_path / name)
        tok.save_pretrained(tmp_path / name)
    pipe = FluxMusicPipeline.from_parts(tmp_path / "musicflow_tiny.pt", version=version,
                                        audioldm2=str(tmp_path / "audioldm2"), t5=str(tmp_path / "t5"),
                                        clap=str(tmp_path / "clap"))
    assembled = FluxMusicBackend(pipe, seconds=1.28)
    x = fm.noise(2)
    torch.testing.assert_close(assembled.velocity(x, 0.5, PROMPT, 3.0), fm.velocity(x, 0.5, PROMPT, 3.0))
    pipe.save_pretrained(tmp_path / "assembled")
    again = load_backend("fluxmusic", tmp_path / "assembled", seconds=1.28)
    torch.testing.assert_close(again.velocity(x, 0.5, PROMPT, 3.0), fm.velocity(x, 0.5, PROMPT, 3.0))


def test_fluxmusic_has_no_hub_pipeline_and_says_how_to_make_one():
    from musicprobe.errors import ConfigError

    with pytest.raises(ConfigError, match="FluxMusicPipeline.from_parts"):
        load_backend("fluxmusic")
