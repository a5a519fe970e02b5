"""One adapter per model family: canonical, documented point names over the native module tree.

A *point* is a module that hooks attach to: a block, or an attention sub-layer. Hook names add a quantity to a
point: ``<point>.hook_q|hook_k|hook_v|hook_pattern|hook_out`` (attention points), ``<point>.hook_out`` (blocks).

* flux (``FluxTransformer2DModel``): ``double_blocks.{i}[.attn]``, ``single_blocks.{i}[.attn]``;
  native ``transformer_blocks.{i}[.attn]``, ``single_transformer_blocks.{i}[.attn]``.
* stable_audio (``StableAudioDiTModel``): ``blocks.{i}``, ``blocks.{i}.self_attn|cross_attn``;
  native ``transformer_blocks.{i}.attn1|attn2``.
* unet (``AudioLDM2UNet2DConditionModel``, ``UNet2DConditionModel``):
  ``{down|mid|up}.{b}.layer{j}[.stream{k}][.self_attn|cross_attn]``; native ``down_blocks.{b}.attentions.{n}...``
  (AudioLDM2 has one transformer per conditioning stream ``k`` in each layer ``j``: ``n = j * streams + k``).
* musicgen (``MusicgenForConditionalGeneration``/``ForCausalLM``): ``layers.{i}``,
  ``layers.{i}.self_attn|cross_attn``; native ``...decoder.layers.{i}.self_attn|encoder_attn``.

Token layout of attention points (the key axis): Flux joint attention is ``[text ; audio]`` (text first, the
text length is read from the denoiser's ``encoder_hidden_states``); StableAudio self-attention is
``[global token ; audio]``; cross-attention keys are text (conditioning) tokens.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch
from torch import nn

from musicprobe.errors import MusicProbeError

ATTN_KINDS = ("self_attn", "cross_attn", "joint_attn")


@dataclass(frozen=True)
class Point:
    """A hookable module with its canonical name, native path and role."""

    name: str
    native: str
    kind: str  # "block" | "self_attn" | "cross_attn" | "joint_attn"
    depth: int  # position in execution order among points of the same kind (0-based)
    module: nn.Module
    prefix: str = ""  # "text" (joint attention: text tokens lead) | "global" (one leading global token) | ""

    @property
    def is_attention(self) -> bool:
        return self.kind in ATTN_KINDS


@lru_cache(maxsize=64)
def _forward_signature(cls: type) -> inspect.Signature:
    return inspect.signature(cls.forward)


def bind_inputs(module: nn.Module, args: tuple, kwargs: dict) -> dict[str, Any]:
    """Arguments of ``module.forward`` by name (positional ones included); signatures are cached per class."""
    bound = _forward_signature(type(module)).bind_partial(module, *args, **kwargs)
    out = dict(bound.arguments)
    out.pop("self", None)
    return out


class Adapter:
    """Maps one model family onto canonical points. Subclasses fill the class attributes and ``_points``."""

    family = "base"
    mechanism = "sdpa"  # "sdpa": TorchFunctionMode around attention modules; "interface": transformers interface
    cfg_order: tuple[str, str] = ("uncond", "cond")  # halves of a CFG-doubled batch, in order

    def __init__(self, model: nn.Module):
        self.model = model
        self.points: dict[str, Point] = {p.name: p for p in self._points(model)}
        self.aliases: dict[str, str] = {p.native: p.name for p in self.points.values()}

    @classmethod
    def matches(cls, model: nn.Module) -> bool:
        raise NotImplementedError

    def _points(self, model: nn.Module) -> list[Point]:
        raise NotImplementedError

    def denoiser(self) -> nn.Module:
        """The module called once per denoising step (or per generated token)."""
        return self.model

    def read_timestep(self, inputs: dict[str, Any]) -> float | None:
        t = inputs.get("timestep")
        if t is None:
            return None
        t = torch.as_tensor(t).flatten()
        return float(t[0]) if t.numel() else None

    def read_text_len(self, inputs: dict[str, Any]) -> int | None:
        ehs = inputs.get("encoder_hidden_states")
        return int(ehs.shape[1]) if isinstance(ehs, torch.Tensor) and ehs.ndim == 3 else None

    def block_identity(self, point: Point, inputs: dict[str, Any], output: Any) -> Any:
        """What a block returns when it is bypassed (its input passed through)."""
        hs = inputs["hidden_states"]
        if isinstance(output, tuple):
            return (hs, *output[1:])
        return hs

    def block_tensor(self, output: Any) -> torch.Tensor:
        """The hidden states a block returns (what ``<block>.hook_out`` captures)."""
        if isinstance(output, torch.Tensor):
            return output
        if hasattr(output, "sample"):
            return output.sample
        return output[0]

    def attention_zero(self, output: Any) -> Any:
        """What an attention sub-layer returns when bypassed: no contribution to the residual stream."""
        if isinstance(output, tuple):
            return tuple(torch.zeros_like(o) if isinstance(o, torch.Tensor) else o for o in output)
        return torch.zeros_like(output)


class FluxAdapter(Adapter):
    family = "flux"

    @classmethod
    def matches(cls, model: nn.Module) -> bool:
        return type(model).__name__ == "FluxTransformer2DModel"

    def _points(self, model: nn.Module) -> list[Point]:
        pts = []
        for i, blk in enumerate(model.transformer_blocks):
            pts.append(Point(f"double_blocks.{i}", f"transformer_blocks.{i}", "block", i, blk))
            pts.append(
                Point(f"double_blocks.{i}.attn", f"transformer_blocks.{i}.attn", "joint_attn", i, blk.attn, "text")
            )
        n = len(model.transformer_blocks)
        for i, blk in enumerate(model.single_transformer_blocks):
            pts.append(Point(f"single_blocks.{i}", f"single_transformer_blocks.{i}", "block", n + i, blk))
            pts.append(
                Point(
                    f"single_blocks.{i}.attn",
                    f"single_transformer_blocks.{i}.attn",
                    "joint_attn",
                    n + i,
                    blk.attn,
                    "text",
                )
            )
        return pts

    def block_identity(self, point: Point, inputs: dict[str, Any], output: Any) -> Any:
        # both Flux block types return (encoder_hidden_states, hidden_states)
        return inputs["encoder_hidden_states"], inputs["hidden_states"]

    def block_tensor(self, output: Any) -> torch.Tensor:
        return output if isinstance(output, torch.Tensor) else output[1]  # keep the audio stream


class StableAudioAdapter(Adapter):
    family = "stable_audio"

    @classmethod
    def matches(cls, model: nn.Module) -> bool:
        return type(model).__name__ == "StableAudioDiTModel"

    def _points(self, model: nn.Module) -> list[Point]:
        pts = []
        for i, blk in enumerate(model.transformer_blocks):
            pts.append(Point(f"blocks.{i}", f"transformer_blocks.{i}", "block", i, blk))
            pts.append(
                Point(f"blocks.{i}.self_attn", f"transformer_blocks.{i}.attn1", "self_attn", i, blk.attn1, "global")
            )
            pts.append(Point(f"blocks.{i}.cross_attn", f"transformer_blocks.{i}.attn2", "cross_attn", i, blk.attn2))
        return pts


class UNetAdapter(Adapter):
    """``AudioLDM2UNet2DConditionModel`` (several conditioning streams per layer) and ``UNet2DConditionModel``."""

    family = "unet"

    @classmethod
    def matches(cls, model: nn.Module) -> bool:
        return type(model).__name__ in ("AudioLDM2UNet2DConditionModel", "UNet2DConditionModel")

    def _points(self, model: nn.Module) -> list[Point]:
        pts: list[Point] = []
        blocks = [("down", i, b) for i, b in enumerate(model.down_blocks)]
        blocks += [("mid", 0, model.mid_block)] if model.mid_block is not None else []
        blocks += [("up", i, b) for i, b in enumerate(model.up_blocks)]
        depth = {"block": 0, "self_attn": 0, "cross_attn": 0}
        for stage, bi, block in blocks:
            attns = getattr(block, "attentions", None)
            if not attns:
                continue
            layers = len(block.resnets) - 1 if stage == "mid" else len(block.resnets)
            streams = max(1, len(attns) // max(layers, 1))
            native_block = "mid_block" if stage == "mid" else f"{stage}_blocks.{bi}"
            for n, t2d in enumerate(attns):
                j, k = divmod(n, streams)
                base = f"{stage}.{bi}.layer{j}" + (f".stream{k}" if streams > 1 else "")
                nat = f"{native_block}.attentions.{n}"
                pts.append(Point(base, nat, "block", depth["block"], t2d))
                depth["block"] += 1
                for ti, tb in enumerate(t2d.transformer_blocks):
                    suffix = f".t{ti}" if len(t2d.transformer_blocks) > 1 else ""
                    for attr, kind in (("attn1", "self_attn"), ("attn2", "cross_attn")):
                        mod = getattr(tb, attr, None)
                        if mod is None:
                            continue
                        pts.append(
                            Point(
                                f"{base}{suffix}.{kind}",
                                f"{nat}.transformer_blocks.{ti}.{attr}",
                                kind,
                                depth[kind],
                                mod,
                            )
                        )
                        depth[kind] += 1
        return pts

    def block_identity(self, point: Point, inputs: dict[str, Any], output: Any) -> Any:
        hs = inputs["hidden_states"]
        if isinstance(output, tuple):
            return (hs, *output[1:])
        return type(output)(sample=hs)


class MusicgenAdapter(Adapter):
    """transformers MusicGen: the decoder's self- and cross-attention via the ``AttentionInterface``.

    Under CFG MusicGen stacks the batch as ``[cond ; uncond]`` (the opposite of diffusers pipelines).
    """

    family = "musicgen"
    mechanism = "interface"
    cfg_order = ("cond", "uncond")

    @classmethod
    def matches(cls, model: nn.Module) -> bool:
        return type(model).__name__ in ("MusicgenForConditionalGeneration", "MusicgenForCausalLM")

    def _decoder_and_prefix(self, model: nn.Module) -> tuple[nn.Module, str]:
        if type(model).__name__ == "MusicgenForConditionalGeneration":
            return model.decoder.model.decoder, "decoder.model.decoder"
        return model.model.decoder, "model.decoder"

    def _points(self, model: nn.Module) -> list[Point]:
        dec, prefix = self._decoder_and_prefix(model)
        pts = []
        for i, layer in enumerate(dec.layers):
            pts.append(Point(f"layers.{i}", f"{prefix}.layers.{i}", "block", i, layer))
            pts.append(
                Point(f"layers.{i}.self_attn", f"{prefix}.layers.{i}.self_attn", "self_attn", i, layer.self_attn)
            )
            pts.append(
                Point(
                    f"layers.{i}.cross_attn", f"{prefix}.layers.{i}.encoder_attn", "cross_attn", i, layer.encoder_attn
                )
            )
        return pts

    def denoiser(self) -> nn.Module:
        return self._decoder_and_prefix(self.model)[0]

    def read_timestep(self, inputs: dict[str, Any]) -> float | None:
        return None  # autoregressive: the step is the decoder call (one per generated token)

    def read_text_len(self, inputs: dict[str, Any]) -> int | None:
        return None


ADAPTERS: tuple[type[Adapter], ...] = (FluxAdapter, StableAudioAdapter, UNetAdapter, MusicgenAdapter)


def adapter_for(model: nn.Module) -> Adapter:
    """The adapter for ``model`` (a denoiser, not a pipeline: pass ``pipe.transformer`` / ``pipe.unet``)."""
    if hasattr(model, "components") and not isinstance(model, nn.Module):
        raise MusicProbeError(
            "pass the pipeline's denoiser (pipe.transformer or pipe.unet), or use Probe.from_pipeline(pipe)"
        )
    for cls in ADAPTERS:
        if cls.matches(model):
            return cls(model)
    known = ", ".join(sorted({n for c in ADAPTERS for n in _class_names(c)}))
    raise MusicProbeError(f"no musicprobe adapter for {type(model).__name__}; supported: {known}")


def _class_names(cls: type[Adapter]) -> list[str]:
    src = inspect.getsource(cls.matches)
    return re.findall(r'"(\w+(?:Model|LM|Generation))"', src)
