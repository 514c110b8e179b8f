#!/usr/bin/env python3
"""Time to ANN-searchable for the peers of `stratavec bench search`, in the same run.

Loads an fvecs base (e.g. GloVe-50 100k) and measures, per run:
  hnswlib  - Index.add_items of the whole base (the builder alone), with --threads threads;
  zvec     - insert in batches of 1,000, then optimize() (zvec builds its HNSW graph there);
  stratavec (optional, --stratavec BIN) - `BIN bench search --json` with one import + flush,
             and with --imports 10 (ten persisted imports, then optimize).
Prints one JSON object per measurement and a table of medians. Same M / ef_construction /
metric everywhere. Install the peers with: pip install zvec==0.8.0 hnswlib numpy
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time

import numpy as np


def read_fvecs(path, limit=None):
    raw = np.fromfile(path, dtype=np.int32)
    dim = int(raw[0])
    rows = raw.reshape(-1, dim + 1)[:, 1:].copy().view(np.float32)
    return rows[:limit] if limit else rows


def hnswlib_build(base, args):
    import hnswlib

    index = hnswlib.Index(space=args.metric, dim=base.shape[1])
    index.init_index(max_elements=len(base), ef_construction=args.ef_construction, M=args.m)
    index.set_num_threads(args.threads)
    t = time.perf_counter()
    index.add_items(base, np.arange(len(base)), num_threads=args.threads)
    return {"build_s": time.perf_counter() - t}


def zvec_build(base, args):
    import zvec

    metric = {"cosine": zvec.MetricType.COSINE, "l2": zvec.MetricType.L2, "ip": zvec.MetricType.IP}[args.metric]
    schema = zvec.CollectionSchema(
        name="bench_build",
        vectors=zvec.VectorSchema(
            "embedding",
            zvec.DataType.VECTOR_FP32,
            dimension=base.shape[1],
            index_param=zvec.HnswIndexParam(metric_type=metric, m=args.m, ef_construction=args.ef_construction),
        ),
    )
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        coll = zvec.create_and_open(path=os.path.join(tmp, "c"), schema=schema)
        t = time.perf_counter()
        for start in range(0, len(base), 1000):
            chunk = base[start : start + 1000]
            coll.insert([zvec.Doc(id=str(start + i), vectors={"embedding": v.tolist()}) for i, v in enumerate(chunk)])
        inserted = time.perf_counter() - t
        coll.optimize()
        total = time.perf_counter() - t
        coll.destroy()
    return {"build_s": total, "insert_s": inserted}


def stratavec_build(args, imports):
    cmd = [
        args.stratavec, "bench", "search", "--json", "--base", args.base, "--query", args.query,
        "--gt", args.gt, "--metric", args.metric, "--m", str(args.m),
        "--ef-construction", str(args.ef_construction), "--ef", "64", "--imports", str(imports),
        "--dir", args.dir,
    ]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    first = json.loads(out.splitlines()[0])
    return {"build_s": first["build_s"], "insert_s": first["insert_s"], "flush_s": first["flush_s"]}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", required=True)
    p.add_argument("--query", help="for --stratavec")
    p.add_argument("--gt", help="for --stratavec")
    p.add_argument("--limit", type=int)
    p.add_argument("--metric", default="cosine", choices=["cosine", "l2", "ip"])
    p.add_argument("--m", type=int, default=16)
    p.add_argument("--ef-construction", type=int, default=200)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--peers", default="hnswlib,zvec", help="comma-separated: hnswlib, zvec")
    p.add_argument("--stratavec", help="path of the stratavec binary to measure in the same run")
    p.add_argument("--dir", default=tempfile.gettempdir())
    args = p.parse_args()
    base = read_fvecs(args.base, args.limit)
    systems = {}
    for peer in filter(None, args.peers.split(",")):
        systems[peer] = {"hnswlib": lambda: hnswlib_build(base, args), "zvec": lambda: zvec_build(base, args)}[peer]
    if args.stratavec:
        systems["stratavec (1 import + flush)"] = lambda: stratavec_build(args, 1)
        systems["stratavec (10 imports + optimize)"] = lambda: stratavec_build(args, 10)
    results = {name: [] for name in systems}
    for run in range(args.runs):
        # Interleaved, so that a load change on a shared machine touches every system alike.
        for name, measure in systems.items():
            r = measure()
            r.update(system=name, run=run, rows=len(base), threads=args.threads, m=args.m,
                     ef_construction=args.ef_construction, metric=args.metric)
            print(json.dumps(r), flush=True)
            results[name].append(r["build_s"])
    print(f"\nuptime: {os.getloadavg()}")
    print(f"| system | median build_s over {args.runs} runs | runs |")
    print("|---|---:|---|")
    for name, xs in results.items():
        print(f"| {name} | {statistics.median(xs):.2f} | {', '.join(f'{x:.2f}' for x in xs)} |")


if __name__ == "__main__":
    main()
