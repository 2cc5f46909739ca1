"""On-demand benchmarks: `python -m benchmarks <name> [args]` (what `make bench` runs)."""
