"""Benchmark workloads shared by ``musicprobe bench`` and the direction tests."""
