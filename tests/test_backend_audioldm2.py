"""The AudioLDM2 backend on a tiny full pipeline built from config: protocol, parity with the stock pipeline, the
reference's log-mel, hooks on both cross-attention streams, and the epsilon-family editors end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicprobe.editors import ZETA, DDIMEdit, DDIMEditConfig, SDEdit, SDEditConfig, SteerMusic, SteerMusicConfig
from musicprobe.editors.zeta import ZETAConfig
from musicprobe.errors import AudioError
from musicprobe.hooks import Probe
from musicprobe.inversion import Sampler
from musicprobe.models.backends import LDM2Conditioning, load_backend, tiny_backend
from musicprobe.models.protocols import EpsModel, family_of

PROMPT = "a calm piano melody"


@pytest.fixture(scope="module")
def ldm2():
    return tiny_backend("audioldm2")


def _tone(sr: int, seconds: float = 1.0, freq: float = 440.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_backend_implements_the_eps_protocol_at_the_pipelines_layout(ldm2):
    assert isinstance(ldm2, EpsModel) and family_of(ldm2) == "eps"
    assert (ldm2.sr, ldm2.hop, ldm2.n_mels, ldm2.frames) == (16000, 160, 64, 128)  # 1.28 s, VAE scale 4
    assert ldm2.noise(0).shape == (1, 4, 32, 16) == ldm2.encode(_tone(16000), 16000).shape
    a = ldm2.alphas_cumprod
    assert len(a) == ldm2.num_train_timesteps == 1000 and torch.all(a[1:] < a[:-1])
    assert list(ldm2.ddim_timesteps(4)) == [751, 501, 251, 1]  # the scheduler's leading spacing + offset 1


@pytest.mark.parametrize("guidance", [1.0, 3.5])
def test_ddim_sampler_equals_the_stock_pipeline(guidance):
    backend = tiny_backend("audioldm2")
    noise = backend.noise(3)
    stock = backend.pipe(PROMPT, num_inference_steps=10, guidance_scale=guidance, latents=noise.clone(),
                         output_type="latent").audios
    ours = Sampler(backend, "ddim", 10, guidance).sample(noise, PROMPT).latents[-1]
    assert stock.abs().max() > 1.0
    torch.testing.assert_close(ours, stock, atol=1e-4, rtol=1e-5)


def test_rows_of_prompts_with_different_t5_lengths_batch_like_one_at_a_time(ldm2):
    x = ldm2.noise(1, batch=2)
    both = ldm2.eps(x, 500, ["piano", "a calm piano melody with drums"], guidance=3.0)
    one = ldm2.eps(x[:1], 500, "piano", guidance=3.0)
    two = ldm2.eps(x[1:], 500, "a calm piano melody with drums", guidance=3.0)
    torch.testing.assert_close(both, torch.cat([one, two]), atol=1e-5, rtol=1e-5)
    states = ldm2.encode_prompt(["piano", "a calm piano melody with drums"])
    assert isinstance(states, LDM2Conditioning) and states.mask[0].sum() < states.mask[1].sum()


def test_log_mel_follows_the_reference(ldm2):
    floor = float(np.log(1e-5))
    quiet = ldm2.reference_mel(_tone(16000, amp=0.05, freq=1000.0))
    loud = ldm2.reference_mel(_tone(16000, amp=0.8, freq=1000.0))
    torch.testing.assert_close(quiet, loud, atol=1e-4, rtol=0)  # peak-normalised to 0.5 as wav2fbank
    assert quiet.shape == (128, 64)
    import librosa

    centres = librosa.mel_frequencies(66, fmin=0.0, fmax=8000.0)[1:-1]
    assert abs(centres[int(quiet[10:90].mean(0).argmax())] - 1000.0) < 80.0  # the tone's band is the loudest
    assert torch.all(quiet[104:] == floor)  # past the 1 s clip (and the STFT frame reaching into it): the log floor
    assert torch.all(ldm2.reference_mel(np.zeros(16000, dtype=np.float32)) == floor)


def test_capturing_both_cross_attention_streams_keeps_the_output(ldm2):
    probe = Probe.for_model(ldm2)
    names = ["down.1.layer0.stream1.cross_attn.hook_pattern", "down.1.layer0.stream2.cross_attn.hook_pattern"]
    x = ldm2.noise(2)
    plain = ldm2.eps(x, 400, PROMPT, 3.0)
    with probe.capture(names, heads="mean", branch="cond") as cache:
        captured = ldm2.eps(x, 400, PROMPT, 3.0)
    assert torch.equal(captured, plain) and probe.active_hooks() == []
    gpt, t5 = (cache[n] for n in names)
    assert gpt.shape[-1] == 8  # GPT-2's generated states
    assert t5.shape[-1] == ldm2.encode_prompt(PROMPT).t5.shape[1]  # the T5 tokens


def test_zeta_reconstructs_exactly_and_the_editors_run_end_to_end(ldm2):
    src = ZETA(ldm2, ZETAConfig(steps=8, t_start=1000, source_guidance=2.0, target_guidance=2.0), clap=None)
    rec = src.record_source(_tone(16000), PROMPT, sr=16000)
    back = rec.sampler.sample_ddpm(rec.maps, PROMPT, guidance=2.0).final
    assert float((back - rec.latent).abs().max()) < 1e-3 * float(rec.latent.abs().max())
    sr = 22050  # another rate: each editor resamples to the pipeline's 16 kHz
    for editor in (SDEdit(ldm2, SDEditConfig(steps=6), clap=None), DDIMEdit(ldm2, DDIMEditConfig(steps=6), clap=None),
                   ZETA(ldm2, ZETAConfig(steps=6, t_start=500), clap=None),
                   SteerMusic(ldm2, SteerMusicConfig(steps=3), clap=None)):
        res = editor.edit(_tone(sr), PROMPT, "a calm flute melody", sr=sr)
        assert res.sr == 16000 and res.edited.shape == (16000,) and np.isfinite(res.edited).all(), editor.method
        assert editor.probe.active_hooks() == []


def test_audio_rate_errors_and_loading_from_a_folder(ldm2, tmp_path):
    with pytest.raises(AudioError, match="16000 Hz audio, got 44100 Hz"):
        ldm2.encode(_tone(44100), 44100)
    ldm2.pipe.save_pretrained(tmp_path / "ldm2")
    loaded = load_backend("audioldm2", tmp_path / "ldm2", device="cpu")
    x = ldm2.noise(5)
    torch.testing.assert_close(loaded.eps(x, 300, PROMPT, 2.0), ldm2.eps(x, 300, PROMPT, 2.0))


def test_cli_edits_with_a_backend_model(tmp_path, capsys):
    import json

    import soundfile as sf

    from musicprobe.cli.main import main

    src = tmp_path / "tone.wav"
    sf.write(src, _tone(22050, seconds=0.7), 22050)
    out = tmp_path / "edit.wav"
    argv = ["edit", "steermusic", str(src), "--source-prompt", PROMPT, "--target-prompt", "a calm flute melody",
            "--steps", "3", "--model", "tiny:audioldm2", "--device", "cpu", "--out", str(out), "--json"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    summary = json.loads(text[text.index("{"):])
    y, sr = sf.read(out)
    assert summary["model_sr"] == 16000 and sr == 22050 and abs(len(y) - 0.7 * 22050) <= 1  # at the input rate
    rc = main(["edit", "sdedit", str(src), "--source-prompt", PROMPT, "--target-prompt", PROMPT,
               "--model", "tiny:stable-audio", "--out", str(tmp_path / "x.wav")])
    assert rc != 0 and "is a flow model; this command needs an epsilon model" in capsys.readouterr().err


def test_inversion_error_curves_on_the_pipeline(ldm2):
    from musicprobe.inversion import reconstruct

    trace = reconstruct(ldm2, _tone(16000), PROMPT, sr=16000, solver="ddim", steps=5, audio_metrics=False)
    assert trace.metrics["mel_mse"] >= 0 and len(trace.drift()) == 6
    assert ldm2.log_mel(ldm2.noise(0)).shape == (64, 128)  # the VAE's mel, bands x frames
