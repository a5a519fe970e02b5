"""Command-line interface: ``musicprobe {demo,synth,metrics,bench,info,data}``."""
