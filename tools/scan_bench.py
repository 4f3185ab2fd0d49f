#!/usr/bin/env python3
"""Scan throughput against the floors and a baseline, measured in the same run (ratios, not bare times).

Usage: tools/scan_bench.py TRAILGUARD [EVENTS]. Writes a synthetic corpus with `trailguard gen` (JSON lines and a
gzipped CloudTrail tree) under target/scan-bench, then times, median of 3 each:
  wc -l over the JSON lines (the bytes-reading floor), a Python json.loads loop testing one field per record
  (the straightforward baseline), trailguard scan over the JSON lines; gzip -dc over the gzipped files (the
  decompression floor), trailguard scan over the gzipped tree. Also the scan's peak resident memory.
"""
import pathlib
import resource
import shutil
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
trailguard = sys.argv[1]
events = int(sys.argv[2]) if len(sys.argv) > 2 else 200_000
work = ROOT / "target" / "scan-bench"
shutil.rmtree(work, ignore_errors=True)
subprocess.run([trailguard, "gen", "--out", str(work / "jsonl"), "--events", str(events), "--jsonl"], check=True)
subprocess.run([trailguard, "gen", "--out", str(work / "gz"), "--events", str(events)], check=True)
jsonl = work / "jsonl" / "events.jsonl"
gz_files = sorted(str(p) for p in (work / "gz").rglob("*.json.gz"))

PY_LOOP = "import json,sys\nn=0\nfor line in open(sys.argv[1]):\n    if json.loads(line).get('eventSource')=='iam.amazonaws.com': n+=1\n"


def timed(cmd, **kw):
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


size = jsonl.stat().st_size
subprocess.run(["cat", str(jsonl)], stdout=subprocess.DEVNULL, check=True)  # into the page cache
wc = timed(["wc", "-l", str(jsonl)])
py = timed([sys.executable, "-c", PY_LOOP, str(jsonl)])
scan = timed([trailguard, "scan", "--format", "jsonl", str(jsonl)])
gzip = timed(["sh", "-c", "gzip -dc \"$@\" > /dev/null", "gzip"] + gz_files)
scan_gz = timed([trailguard, "scan", "--format", "jsonl", str(work / "gz")])
before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
subprocess.run([trailguard, "scan", "--format", "jsonl", str(jsonl)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss

print(f"{events} events, {size / 1e6:.0f} MB of JSON lines, {len(gz_files)} gzipped log files")
print(f"JSON lines: scan {scan:.2f} s = {scan / wc:.1f}x wc -l ({wc:.3f} s, goal <= 3x); "
      f"Python json.loads loop {py:.2f} s = {py / scan:.1f}x slower than scan (goal >= 15x); "
      f"scan {events / scan / 1e3:.0f}k events/s")
print(f"gzipped: scan {scan_gz:.2f} s = {scan_gz / gzip:.2f}x gzip -dc ({gzip:.2f} s, goal <= 1x)")
print(f"peak resident memory of the scan (this run's largest child): {max(rss, before) / 1024:.0f} MB")
