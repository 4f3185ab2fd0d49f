#!/usr/bin/env python3
"""`scan s3://` against moto versus the same files on disk: objects/s and MB/s of each, and their ratio.

usage: s3_bench.py TRAILGUARD MOTO_SERVER [EVENTS]

Generates an archive with `trailguard gen`, uploads it to a moto server on a free port (boto3, which moto
brings), and times `trailguard scan` on the directory and on the bucket, best of three each. Also reports the
disk scan's CPU time (user + system, all threads) per object and per MB of JSON: the figure the README's
on-paper backtest cost starts from. A benchmark, not a
test: the machine is shared, so the ratio is the figure, not the absolute rate. moto answers from one Python
process on 127.0.0.1: it is slower than S3 per request and has no network latency, so neither figure is S3's.
"""
import os
import gzip
import pathlib
import resource
import socket
import subprocess
import sys
import tempfile
import time

import boto3


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def best(args, env, runs=3):
    """The best wall time of `runs`, and the CPU time (user + system) of that run."""
    runs_seen = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        runs_seen.append((wall, cpu))
    return min(runs_seen)


def main():
    trailguard, moto_server = sys.argv[1], sys.argv[2]
    events = int(sys.argv[3]) if len(sys.argv) > 3 else 200_000
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "archive"
        subprocess.run([trailguard, "gen", "--out", str(out), "--events", str(events), "--account", "111122223333",
                        "--account", "444455556666"], check=True, stderr=subprocess.DEVNULL)
        (out / "planted.tsv").unlink()
        files = sorted(p for p in out.rglob("*") if p.is_file())
        size = sum(p.stat().st_size for p in files)
        json_mb = sum(len(gzip.decompress(p.read_bytes())) if p.name.endswith(".gz") else p.stat().st_size
                      for p in files) / 1e6
        port = free_port()
        server = subprocess.Popen([moto_server, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            endpoint = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.1)
            env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_REGION="us-east-1",
                       AWS_ACCESS_KEY_ID="AKIAIOSFODNN7EXAMPLE", AWS_SECRET_ACCESS_KEY="test-secret")
            s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="test-secret")
            s3.create_bucket(Bucket="archive")
            for p in files:
                s3.upload_file(str(p), "archive", str(p.relative_to(out)))
            disk = best([trailguard, "scan", "--progress", "never", str(out)], env)
            remote = best([trailguard, "scan", "--progress", "never", "s3://archive/AWSLogs/"], env)
        finally:
            server.terminate()
            server.wait()
    mb = size / 1e6
    (disk, disk_cpu), (remote, remote_cpu) = disk, remote
    print(f"{len(files)} objects, {mb:.1f} MB gzipped ({json_mb:.1f} MB of JSON, {json_mb / mb:.1f}:1), {events} events")
    print(f"disk:      {disk:6.2f} s  {len(files) / disk:8.0f} objects/s  {mb / disk:7.1f} MB/s  {events / disk:9.0f} events/s"
          f"  cpu {disk_cpu:.2f} s")
    print(f"s3 (moto): {remote:6.2f} s  {len(files) / remote:8.0f} objects/s  {mb / remote:7.1f} MB/s  {events / remote:9.0f} events/s"
          f"  cpu {remote_cpu:.2f} s (trailguard only; moto's own CPU not counted)")
    print(f"s3/disk time ratio: {remote / disk:.2f}")
    print(f"disk scan CPU: {1000 * disk_cpu / len(files):.2f} ms per object, {1000 * disk_cpu / json_mb:.2f} ms per MB of JSON,"
          f" {1e6 * disk_cpu / events:.2f} us per event")


if __name__ == "__main__":
    main()
