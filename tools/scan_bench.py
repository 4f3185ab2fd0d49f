#!/usr/bin/env python3
"""Scan throughput against the floors and a baseline, measured in the same run (ratios, not bare times).

Usage: tools/scan_bench.py TRAILGUARD [EVENTS] [MEMORY_EVENTS]. Writes a synthetic corpus with `trailguard gen`
(JSON lines and a gzipped CloudTrail tree) under target/scan-bench, then times, in 7 rounds that each run every
command once (so that the machine's slow and fast spells fall on all of them alike):
  wc -l over the JSON lines (the bytes-reading floor), a Python json.loads loop testing one field per record
  (the straightforward baseline), trailguard scan over the JSON lines; gzip -dc over the gzipped files (the
  decompression floor), trailguard scan over the gzipped tree.
Each ratio is the median of its rounds' ratios; each time printed is the median of its rounds.
The same again on the `gen --mix assume-role` corpus (one record in six a role-to-role AssumeRole: the registry
pass and the AssumeRole trigger do real work), against issue 14's goals: <= 3x wc -l, >= 15x Python on JSON lines,
<= 1.5x gzip -dc on the gzipped tree (registry pass included).
Then writes a MEMORY_EVENTS corpus (default one million; 0 skips it) and reports the scan's peak resident memory
over it, in both forms and both output formats, and deletes it. Each goal is printed as met, or missed by how much.
"""
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
trailguard = sys.argv[1]
events = int(sys.argv[2]) if len(sys.argv) > 2 else 200_000
memory_events = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
work = ROOT / "target" / "scan-bench"

PY_LOOP = "import json,sys\nn=0\nfor line in open(sys.argv[1]):\n    if json.loads(line).get('eventSource')=='iam.amazonaws.com': n+=1\n"
# The peak resident memory of one child, measured by a fresh Python that runs only that child.
PEAK = "import resource,subprocess,sys\nsubprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL,check=True)\nprint(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"


def corpus(where, count, mix="default"):
    shutil.rmtree(where, ignore_errors=True)
    quiet = {"stderr": subprocess.DEVNULL}
    gen = [trailguard, "gen", "--events", str(count), "--mix", mix]
    subprocess.run(gen + ["--out", str(where / "jsonl"), "--jsonl"], check=True, **quiet)
    subprocess.run(gen + ["--out", str(where / "gz")], check=True, **quiet)
    return where / "jsonl" / "events.jsonl", where / "gz"


ROUNDS = 7


def timed_rounds(commands):
    """Each command's time in each round: every round runs every command once, in turn."""
    times = {name: [] for name in commands}
    for _ in range(ROUNDS):
        for name, cmd in commands.items():
            start = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times[name].append(time.perf_counter() - start)
    return times


def ratio(times, a, b):
    """The median over the rounds of a's time over b's in the same round."""
    return statistics.median(x / y for x, y in zip(times[a], times[b]))


def peak_mb(cmd):
    out = subprocess.run([sys.executable, "-c", PEAK] + cmd, check=True, capture_output=True, text=True)
    return int(out.stdout) / 1024


def verdict(ratio, goal, lower_is_better=True):
    met = ratio <= goal if lower_is_better else ratio >= goal
    if met:
        return "goal met"
    return f"goal missed by {ratio / goal:.2f}x" if lower_is_better else f"goal missed by {goal / ratio:.2f}x"


def measure(label, mix, gz_goal):
    jsonl, gz = corpus(work / mix, events, mix)
    gz_files = sorted(str(p) for p in gz.rglob("*.json.gz"))
    size = jsonl.stat().st_size
    os.sync()  # the corpus just written is on disk: no write-back runs beside the timings
    subprocess.run(["cat", str(jsonl)], stdout=subprocess.DEVNULL, check=True)  # into the page cache
    times = timed_rounds({
        "wc": ["wc", "-l", str(jsonl)],
        "py": [sys.executable, "-c", PY_LOOP, str(jsonl)],
        "scan": [trailguard, "scan", "--format", "jsonl", str(jsonl)],
        "full": [trailguard, "scan", "--format", "jsonl", "--no-prefilter", str(jsonl)],
        "gzip": ["sh", "-c", "gzip -dc \"$@\" > /dev/null", "gzip"] + gz_files,
        "scan_gz": [trailguard, "scan", "--format", "jsonl", str(gz)],
    })
    wc, py, scan, full, gzip, scan_gz = (statistics.median(times[k]) for k in times)
    over_wc, over_py, full_wc, py_full, over_gzip = (
        ratio(times, "scan", "wc"), ratio(times, "py", "scan"), ratio(times, "full", "wc"),
        ratio(times, "py", "full"), ratio(times, "scan_gz", "gzip"))

    print(f"{label}: {events} events, {size / 1e6:.0f} MB of JSON lines, {len(gz_files)} gzipped log files")
    print(f"JSON lines: scan {scan:.3f} s = {over_wc:.1f}x wc -l ({wc:.3f} s; goal <= 3x: {verdict(over_wc, 3)}); "
          f"{events / scan / 1e6:.2f}M events/s, {size / scan / 1e9:.2f} GB/s")
    print(f"  Python json.loads loop {py:.2f} s = {over_py:.1f}x slower than scan "
          f"(goal >= 15x: {verdict(over_py, 15, lower_is_better=False)})")
    print(f"  without the pre-filter (every record parsed): {full:.3f} s = {full_wc:.1f}x wc -l, "
          f"{py_full:.1f}x faster than Python")
    print(f"gzipped: scan {scan_gz:.3f} s = {over_gzip:.2f}x gzip -dc ({gzip:.3f} s; goal <= {gz_goal}x: "
          f"{verdict(over_gzip, gz_goal)})")
    shutil.rmtree(work / mix, ignore_errors=True)


measure("default mix", "default", 1)
measure("assume-role mix (1 in 6 a role-to-role AssumeRole)", "assume-role", 1.5)

if memory_events:
    big_jsonl, big_gz = corpus(work / "memory", memory_events)
    peaks = {
        f"{form} --format {fmt}": peak_mb([trailguard, "scan", "--format", fmt, str(path)])
        for form, path in (("JSON lines", big_jsonl), ("gzipped tree", big_gz))
        for fmt in ("text", "jsonl")
    }
    worst = max(peaks.values())
    print(f"peak resident memory over {memory_events} events (goal < 100 MB: {verdict(worst, 100)}): "
          + ", ".join(f"{k} {v:.0f} MB" for k, v in peaks.items()))
    shutil.rmtree(work / "memory", ignore_errors=True)
