"""The MusicGen backend on a tiny full model built from config: protocol, greedy parity with the stock generate,
T5 word positions, and EditGen end to end (prompt-to-prompt control, heat maps, a given clip)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicprobe.editors.editgen import EditGen, EditGenConfig
from musicprobe.editors.p2p import leading_specials, word_tokens
from musicprobe.errors import AudioError
from musicprobe.hooks.rows import RowRoles
from musicprobe.models.backends import load_backend, tiny_backend
from musicprobe.models.delay import TokenSampling
from musicprobe.models.protocols import TokenModel, family_of

PROMPT = "a calm piano melody"


@pytest.fixture(scope="module")
def mg():
    return tiny_backend("musicgen", seconds=0.8)


def _tone(sr: int, seconds: float = 0.4) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


def test_backend_implements_the_token_protocol_with_encodec(mg):
    assert isinstance(mg, TokenModel) and family_of(mg) == "token"
    assert (mg.sr, mg.frame_rate, mg.n_codebooks, mg.pad_id, mg.frames) == (32000, 50.0, 4, 2048, 40)
    codes = mg.encode(_tone(32000), 32000)  # 0.4 s: 20 frames
    assert codes.shape == (1, 4, 20) and codes.dtype == torch.long and len(codes.unique()) > 1
    assert mg.decode(codes).shape == (20 * 640,)
    assert type(mg.decoder).__name__ == "MusicgenForCausalLM"
    with pytest.raises(AudioError, match="32000 Hz audio, got 16000 Hz"):
        mg.encode(_tone(16000), 16000)


@pytest.mark.parametrize("guidance", [1.0, 3.0])
def test_greedy_decoding_equals_the_stock_generate(mg, guidance):
    ours = mg.generate(PROMPT, frames=12, guidance=guidance, sampling=TokenSampling(top_k=1))
    tok = mg.tokenizer(PROMPT, return_tensors="pt")
    stock = mg.model.generate(**tok, do_sample=False, guidance_scale=guidance if guidance > 1 else None,
                              max_new_tokens=12 + mg.n_codebooks - 1)
    np.testing.assert_allclose(mg.decode(ours), stock[0, 0].numpy(), atol=1e-5)


def test_t5_words_start_at_position_zero(mg):
    tok = mg.tokenizer
    assert leading_specials(tok) == 0
    words = word_tokens("a calm pianoforte melody", tok, 16)
    ids = tok("a calm pianoforte melody")["input_ids"]
    for word, positions in words:
        assert tok.decode([ids[p] for p in positions]).replace(" ", "") == word


def test_full_control_with_unit_reweight_reproduces_the_source_on_the_backend(mg):
    ed = EditGen(mg, clap=None)
    base = EditGenConfig(mode="reweight", word="piano", blending="none", frames=6, seed=1)
    seen = []
    ctrl = ed.controller(PROMPT, PROMPT, base.replace(weight=1.0))
    with ed.probe.with_roles(RowRoles(prompts=2, cfg=True)), ed.probe.intervene(ctrl):
        mg.generate([PROMPT, PROMPT], seed=1, frames=6, logits_hook=lambda i, lg: seen.append(lg.clone()))
    logits = torch.stack(seen)
    torch.testing.assert_close(logits[:, 1], logits[:, 0], atol=1e-5, rtol=0)
    assert ed.probe.active_hooks() == []


def test_editgen_runs_end_to_end_on_the_backend(mg):
    ed = EditGen(mg, EditGenConfig(mode="replace", frames=10, word_maps=True), clap=None)
    res = ed.edit_prompts(PROMPT, "a calm flute melody")
    assert res.sr == 32000 and res.edited.shape == (10 * 640,) and np.isfinite(res.edited).all()
    maps = res.trace
    assert maps is not None and maps.words[1] == ["a", "calm", "flute", "melody"]
    assert maps.maps[1].shape == (len(maps.layers), 4, 10 + mg.n_codebooks - 1)  # layers x words x steps
    clip = EditGen(mg, EditGenConfig(mode="replace"), clap=None).edit(_tone(16000, 0.6), PROMPT,
                                                                        "a calm flute melody", sr=16000)
    assert clip.edited.shape == (int(0.6 * 32000),)  # resampled to 32 kHz, as many frames as the clip has
    assert ed.probe.active_hooks() == []


def test_loading_from_a_folder(mg, tmp_path):
    mg.pipe.save_pretrained(tmp_path / "mg")
    loaded = load_backend("musicgen", tmp_path / "mg", seconds=0.8)
    a = mg.generate(PROMPT, frames=5, seed=3)
    torch.testing.assert_close(loaded.generate(PROMPT, frames=5, seed=3), a)
