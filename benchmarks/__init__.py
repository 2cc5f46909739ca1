"""On-demand benchmarks: `python -m benchmarks NAME`. Each prints its numbers and ratios to a baseline."""
