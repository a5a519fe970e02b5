"""musicprobe: instrument, probe and teach zero-shot text-to-music editing.

Sub-packages: ``audio`` (I/O and features), ``synth`` (synthetic corpus with ground truth), ``metrics``
(model-free metrics), ``hooks`` (one hook system for Flux, StableAudio, AudioLDM2 and MusicGen), ``data``
(bundled samples), ``viz`` and ``report`` (plotly figures and HTML reports).
"""

__version__ = "0.1.0"
