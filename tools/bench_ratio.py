#!/usr/bin/env python3
"""Print criterion's results for one benchmark group as ratios against its baseline.

Usage: tools/bench_ratio.py target/criterion/<group>. Every benchmark whose name starts with `baseline` is a
baseline; each other benchmark is reported as (its time) / (baseline time), from the same run.
"""
import json
import pathlib
import sys


def mean_ns(bench_dir):
    with open(bench_dir / "new" / "estimates.json", encoding="utf-8") as f:
        return json.load(f)["mean"]["point_estimate"]


def main():
    group = pathlib.Path(sys.argv[1])
    results = {}
    for estimates in sorted(group.glob("**/new/estimates.json")):
        bench = estimates.parent.parent
        results[str(bench.relative_to(group))] = mean_ns(bench)
    baselines = {k: v for k, v in results.items() if k.startswith("baseline")}
    if not baselines:
        sys.exit(f"no baseline in {group}")
    for name, ns in results.items():
        for base, base_ns in baselines.items():
            if name != base:
                print(f"{name}: {ns / 1e6:.2f} ms per iteration = {ns / base_ns:.2f}x {base} ({base_ns / 1e6:.2f} ms)")


if __name__ == "__main__":
    main()
