"""Tiny full pipelines built from config in memory: every component random-init and tiny, tokenizers built in
memory, no hub and no weights. They have the real classes, rates and layouts, so a backend and every editor run on
them through exactly the code a user with real weights runs; the tests use them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from musicprobe.errors import check_known
from musicprobe.models.backends.shapes import audible


def tiny_stable_audio_pipeline(seed: int = 0) -> Any:
    """A ``StableAudioPipeline`` at the real rate and hop (44.1 kHz stereo, Oobleck hop 2048) with a 2-block DiT over
    16 latent frames (0.74 s), a 2-layer T5 and the SDE cosine scheduler of the real model's config."""
    from diffusers import (
        AutoencoderOobleck,
        CosineDPMSolverMultistepScheduler,
        StableAudioDiTModel,
        StableAudioPipeline,
    )
    from diffusers.pipelines.stable_audio.modeling_stable_audio import StableAudioProjectionModel
    from transformers import T5Config, T5EncoderModel

    from musicprobe.models.tiny import tiny_t5_tokenizer

    torch.manual_seed(seed)
    vae = AutoencoderOobleck(encoder_hidden_size=8, downsampling_ratios=[2, 4, 4, 8, 8],
                             channel_multiples=[1, 1, 2, 2, 2], decoder_channels=8, decoder_input_channels=4,
                             audio_channels=2, sampling_rate=44100)
    tokenizer = tiny_t5_tokenizer()
    tokenizer.model_max_length = 16
    text_encoder = T5EncoderModel(T5Config(vocab_size=128, d_model=32, d_ff=37, d_kv=8, num_layers=2, num_heads=4))
    projection = StableAudioProjectionModel(text_encoder_dim=32, conditioning_dim=16, min_value=0, max_value=32)
    transformer = StableAudioDiTModel(sample_size=16, in_channels=4, num_layers=2, attention_head_dim=8,
                                      num_attention_heads=4, num_key_value_attention_heads=2, out_channels=4,
                                      cross_attention_dim=16, time_proj_dim=8, global_states_input_dim=32,
                                      cross_attention_input_dim=16)
    scheduler = CosineDPMSolverMultistepScheduler(solver_order=2, prediction_type="v_prediction", sigma_data=1.0,
                                                  sigma_schedule="exponential", sigma_min=0.3, sigma_max=500.0,
                                                  final_sigmas_type="zero")
    pipe = StableAudioPipeline(vae=vae, text_encoder=text_encoder, projection_model=projection,
                               tokenizer=tokenizer, transformer=transformer, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_audioldm2_pipeline(seed: int = 0) -> Any:
    """An ``AudioLDM2Pipeline`` at the real rate and layout (16 kHz, hop 160, 64 mel bands, VAE scale 4, GPT-2 states
    and T5 states as the UNet's two cross-attention streams) with tiny components: CLAP text tower, T5, GPT-2,
    projection, UNet, VAE and HiFi-GAN; DDIM at AudioLDM2's betas with ``set_alpha_to_one=True`` (see the
    backend's docstring). Default length 1.28 s. Both tokenizers are the in-memory T5 tokenizer."""
    from diffusers import AudioLDM2Pipeline, DDIMScheduler
    from diffusers.pipelines.audioldm2.modeling_audioldm2 import (
        AudioLDM2ProjectionModel,
        AudioLDM2UNet2DConditionModel,
    )
    from transformers import (
        ClapAudioConfig,
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        ClapTextConfig,
        GPT2Config,
        GPT2LMHeadModel,
        T5Config,
        T5EncoderModel,
    )

    from musicprobe.models.tiny import tiny_t5_tokenizer

    torch.manual_seed(seed)
    text_cfg = ClapTextConfig(hidden_size=16, intermediate_size=37, num_attention_heads=2, num_hidden_layers=2,
                              vocab_size=128, pad_token_id=0, bos_token_id=0, eos_token_id=1)
    audio_cfg = ClapAudioConfig(spec_size=64, window_size=4, num_mel_bins=64, intermediate_size=37, depths=[2, 2],
                                num_attention_heads=[2, 2], num_hidden_layers=2, hidden_size=192, patch_size=2,
                                patch_stride=2, patch_embed_input_channels=4)
    clap = ClapModel(ClapConfig(text_config=text_cfg.to_dict(), audio_config=audio_cfg.to_dict(), projection_dim=16))
    t5 = T5EncoderModel(T5Config(vocab_size=128, d_model=32, d_ff=37, d_kv=8, num_layers=2, num_heads=4))
    gpt2 = GPT2LMHeadModel(GPT2Config(n_embd=24, n_layer=1, n_head=2, vocab_size=64, n_positions=64,
                                      bos_token_id=0, eos_token_id=0, max_new_tokens=8))
    projection = AudioLDM2ProjectionModel(text_encoder_dim=16, text_encoder_1_dim=32, langauge_model_dim=24)
    unet = AudioLDM2UNet2DConditionModel(
        sample_size=32, in_channels=4, out_channels=4, block_out_channels=(16, 32), layers_per_block=1,
        norm_num_groups=8, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=([None, 24, 32], [None, 24, 32]),
        attention_head_dim=4,
    )
    vae, vocoder = _tiny_mel_vae_and_vocoder()
    scheduler = DDIMScheduler(beta_start=0.0015, beta_end=0.0195, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=True, steps_offset=1)
    tokenizer = tiny_t5_tokenizer()
    tokenizer.model_max_length = 16
    pipe = AudioLDM2Pipeline(vae=vae, text_encoder=clap, text_encoder_2=t5, projection_model=projection,
                             language_model=gpt2, tokenizer=tokenizer, tokenizer_2=tokenizer,
                             feature_extractor=ClapFeatureExtractor(), unet=unet, scheduler=scheduler,
                             vocoder=vocoder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_musicgen_pipeline(seed: int = 0) -> Any:
    """A ``MusicgenForConditionalGeneration`` at the real codec layout (EnCodec at 32 kHz mono, 50 frames per second,
    4 codebooks from a 2.2 kbps target as musicgen-small) with a tiny EnCodec, a 2-layer T5, a
    2-layer decoder and the in-memory T5 tokenizer."""
    from transformers import (
        EncodecConfig,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        T5Config,
    )

    from musicprobe.models.backends.musicgen import MusicGenPipeline
    from musicprobe.models.tiny import tiny_t5_tokenizer

    torch.manual_seed(seed)
    codebook = 2048  # 11 bits: 2.2 kbps at 50 frames per second is 4 codebooks, as musicgen-small
    cfg = MusicgenConfig(
        text_encoder=T5Config(vocab_size=128, d_model=32, d_ff=37, d_kv=8, num_layers=2, num_heads=4).to_dict(),
        audio_encoder=EncodecConfig(sampling_rate=32000, audio_channels=1, num_filters=4, hidden_size=16,
                                    codebook_size=codebook, codebook_dim=16, upsampling_ratios=[8, 5, 4, 4],
                                    target_bandwidths=[2.2], num_lstm_layers=1, chunk_length_s=None,
                                    overlap=None).to_dict(),
        decoder=MusicgenDecoderConfig(vocab_size=codebook, hidden_size=24, num_hidden_layers=2, num_attention_heads=4,
                                      ffn_dim=48, pad_token_id=codebook, decoder_start_token_id=codebook,
                                      bos_token_id=codebook, num_codebooks=4, max_position_embeddings=256,
                                      tie_word_embeddings=False).to_dict(),
    )
    model = MusicgenForConditionalGeneration(cfg)
    for layer in model.audio_encoder.quantizer.layers:  # EnCodec starts its codebooks at zero: one code for all
        layer.codebook.embed.normal_()
    model.generation_config.pad_token_id = codebook
    model.generation_config.decoder_start_token_id = codebook
    tokenizer = tiny_t5_tokenizer()
    tokenizer.model_max_length = 16
    return MusicGenPipeline(model, tokenizer)


def _tiny_mel_vae_and_vocoder() -> tuple[Any, Any]:
    """AudioLDM2's audio path, tiny: a mel VAE of scale 4 (4 latent channels) and a HiFi-GAN at 16 kHz, hop 160."""
    from diffusers import AutoencoderKL
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    vae = AutoencoderKL(in_channels=1, out_channels=1, latent_channels=4, block_out_channels=[8, 16, 16],
                        down_block_types=["DownEncoderBlock2D"] * 3, up_block_types=["UpDecoderBlock2D"] * 3,
                        norm_num_groups=8)
    vocoder = SpeechT5HifiGan(SpeechT5HifiGanConfig(
        model_in_dim=64, sampling_rate=16000, upsample_initial_channel=16, upsample_rates=[10, 4, 2, 2],
        upsample_kernel_sizes=[20, 8, 4, 4], resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3, 5]],
        normalize_before=False))
    audible(vocoder)
    return vae, vocoder


def tiny_fluxmusic_pipeline(seed: int = 0) -> Any:
    """FluxMusic's parts, tiny: a transformer converted from a random state dict of FluxMusic's own layout (so the
    converter is on the path), AudioLDM2's tiny VAE and HiFi-GAN, a 2-layer T5 and a 2-layer CLAP text tower."""
    from transformers import ClapTextConfig, ClapTextModel, T5Config, T5EncoderModel

    from musicprobe.models.backends.fluxmusic import (
        FluxMusicPipeline,
        FluxMusicVersion,
        fluxmusic_shapes,
        fluxmusic_transformer,
    )
    from musicprobe.models.tiny import tiny_t5_tokenizer

    torch.manual_seed(seed)
    version = tiny_fluxmusic_version()
    g = torch.Generator().manual_seed(seed)
    state = {k: 0.1 * torch.randn(shape, generator=g) for k, shape in fluxmusic_shapes(version).items()}
    vae, vocoder = _tiny_mel_vae_and_vocoder()
    t5 = T5EncoderModel(T5Config(vocab_size=128, d_model=32, d_ff=37, d_kv=8, num_layers=2, num_heads=4))
    clap = ClapTextModel(ClapTextConfig(hidden_size=16, intermediate_size=37, num_attention_heads=2,
                                        num_hidden_layers=2, vocab_size=128, pad_token_id=0))
    tokenizer = tiny_t5_tokenizer()
    tokenizer.model_max_length = 16
    assert isinstance(version, FluxMusicVersion)
    return FluxMusicPipeline(fluxmusic_transformer(state, version), vae, vocoder, t5, tokenizer, clap, tokenizer)


def tiny_fluxmusic_version():
    """FluxMusic's layout at toy size: 16 input channels (the tiny VAE's 4 x a 2 x 2 patch), 64 wide, 8 heads."""
    from musicprobe.models.backends.fluxmusic import FluxMusicVersion

    return FluxMusicVersion(hidden_size=64, depth=1, depth_single_blocks=2, axes_dim=(2, 2, 4), num_heads=8,
                            in_channels=16, vec_in_dim=16, context_in_dim=32)


TINY_PIPELINES: dict[str, Callable[..., Any]] = {
    "stable-audio": tiny_stable_audio_pipeline,
    "audioldm2": tiny_audioldm2_pipeline,
    "musicgen": tiny_musicgen_pipeline,
    "fluxmusic": tiny_fluxmusic_pipeline,
}


def tiny_pipeline(kind: str, seed: int = 0) -> Any:
    """The tiny full pipeline of backend ``kind`` (see ``TINY_PIPELINES``)."""
    return TINY_PIPELINES[check_known("tiny pipeline", kind, TINY_PIPELINES)](seed)
