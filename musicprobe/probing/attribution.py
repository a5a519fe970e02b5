"""Which prompt tokens drive a layer? Captum's LayerIntegratedGradients on mini-flux's text embedding.

For a chosen step (a latent ``x_t`` on the generation path) and a chosen target — the norm of the velocity the
model predicts, or the norm of one block's output — integrated gradients attribute the target to each text token,
integrating from the empty prompt's states (the unconditional input) to the prompt's. The attribution layer is
the transformer's ``context_embedder`` (the projection of the MiniLM states into the DiT). ``internal_batch_size``
bounds memory as in captum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass
class TokenAttribution:
    tokens: list[str]
    scores: np.ndarray
    target: str
    step: int
    convergence_delta: float

    def plot(self):
        import plotly.graph_objects as go

        fig = go.Figure(go.Bar(x=[f"{i}:{t}" for i, t in enumerate(self.tokens)], y=self.scores))
        fig.update_layout(
            title=f"token attribution to {self.target} at step {self.step} (integrated gradients)",
            yaxis_title="attribution",
            template="plotly_white",
            height=320,
        )
        return fig

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        order = np.argsort(-np.abs(self.scores))[:k]
        return [(self.tokens[i], float(self.scores[i])) for i in order]


def attribute_tokens(
    model: Any,
    prompt: str,
    *,
    step: int = 0,
    steps: int = 12,
    seed: int = 0,
    target: str = "velocity",
    n_steps: int = 16,
    internal_batch_size: int = 4,
) -> TokenAttribution:
    """Integrated-gradients attribution of ``target`` (``"velocity"`` or a block point name) to prompt tokens."""
    from captum.attr import LayerIntegratedGradients

    from musicprobe.errors import ConfigError
    from musicprobe.inversion import Sampler
    from musicprobe.models.text import TextStates, _load

    if not 0 <= step < steps:
        raise ConfigError(f"step must be within 0..{steps - 1}, got {step}")
    sampler = Sampler(model, "euler", steps, 4.0)
    x = sampler.sample(model.noise(seed), prompt, until=step).final  # the generation path up to ``step``
    cond, empty = model.encode_prompt(prompt), model.encode_prompt("")
    t = float(sampler.times()[step])
    tr = model.denoiser
    module = None
    if target != "velocity":
        from musicprobe.hooks import Probe

        point = Probe.for_model(model).resolve(target)
        module = point.module
    captured: dict[str, torch.Tensor] = {}

    def forward(tokens: torch.Tensor) -> torch.Tensor:
        b = tokens.shape[0]
        states = TextStates(tokens, cond.mask.expand(b, -1), cond.pooled.expand(b, -1))
        handle = None
        if module is not None:
            handle = module.register_forward_hook(
                lambda m, a, o: captured.__setitem__("out", o[0] if isinstance(o, tuple) else o)
            )
        try:
            v = model.forward(x.expand(b, -1, -1), t, states)
        finally:
            if handle is not None:
                handle.remove()
        out = captured.pop("out") if module is not None else v
        return out.flatten(1).norm(dim=-1)

    # where the prompt enters: Flux's ``context_embedder``; a model may name its own (mini-SAO: its text projection)
    layer = getattr(model, "text_layer", None) or tr.context_embedder
    lig = LayerIntegratedGradients(forward, layer)
    with torch.enable_grad():
        attr, delta = lig.attribute(
            cond.tokens,
            baselines=empty.tokens,
            n_steps=n_steps,
            internal_batch_size=internal_batch_size,
            return_convergence_delta=True,
        )
    scores = attr.sum(-1)[0].detach().numpy()
    tok, _ = _load()
    ids = tok(prompt, truncation=True, max_length=model.config.max_text_tokens)["input_ids"]
    names = tok.convert_ids_to_tokens(ids)
    return TokenAttribution(names, scores[: len(names)], target, step, float(delta.abs().max()))
