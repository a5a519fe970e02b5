import pytest
import torch

from musicprobe.errors import MusicProbeError, UnknownNameError
from musicprobe.hooks import Probe
from musicprobe.models import tiny_model
from musicprobe.models.loading import load_denoiser


@pytest.mark.parametrize("family", ["flux", "stable_audio", "audioldm2_unet", "musicgen"])
def test_from_pretrained_roundtrip_through_a_local_folder(tmp_path, family):
    tm = tiny_model(family)
    tm.model.save_pretrained(tmp_path / "m")
    loaded = load_denoiser(family, tmp_path / "m")
    assert not loaded.training
    x = tm.make_inputs("A")
    with torch.no_grad():
        a = tm(**x)
        out = loaded(**x)
    b = out if isinstance(out, torch.Tensor) else (out.sample if hasattr(out, "sample") else out.logits)
    assert torch.allclose(a, b, atol=1e-6)
    assert Probe(loaded).points() == Probe(tm.model).points()


def test_pipeline_layout_uses_the_denoiser_subfolder(tmp_path):
    tm = tiny_model("unet2d")
    (tmp_path / "pipe").mkdir()
    (tmp_path / "pipe" / "model_index.json").write_text("{}")
    tm.model.save_pretrained(tmp_path / "pipe" / "unet")
    assert type(load_denoiser("unet2d", tmp_path / "pipe")).__name__ == "UNet2DConditionModel"


def test_loading_errors_are_clear(tmp_path):
    with pytest.raises(MusicProbeError, match="local folder"):
        load_denoiser("flux", tmp_path / "nothing-here")
    with pytest.raises(UnknownNameError, match="Did you mean 'musicgen'"):
        load_denoiser("musicgn", tmp_path)


def test_in_memory_tokenizer_feeds_the_tiny_musicgen():
    from musicprobe.models.tiny import tiny_t5_tokenizer

    tok = tiny_t5_tokenizer()
    enc = tok(["a happy piano melody", "sad jazz flute with drums"], padding=True, return_tensors="pt")
    assert enc.input_ids.max() < 128 and enc.input_ids.shape[0] == 2
    assert tok.decode(tok("piano melody").input_ids, skip_special_tokens=True) == "piano melody"
    tm = tiny_model("musicgen")
    with torch.no_grad():
        audio_codes = tm.model.generate(**enc, do_sample=False, max_new_tokens=4)
    assert audio_codes.shape[0] == 2
