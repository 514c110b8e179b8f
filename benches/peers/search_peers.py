#!/usr/bin/env python3
"""Queries/s against recall@10 per ef: zvec 0.8.0 and stratavec in the same run.

zvec: insert the base in batches of 1,000, optimize(), reopen read-only, then per ef one
untimed pass and --passes timed passes over the queries (one thread, topk 10; a pass repeats
the query set until it lasts 1 s) through
`query_internal_ids` (its engine-bound path: ids and scores, no documents; from Python, the
only API it has). stratavec: `stratavec bench search --json` with the
same data, m, ef_construction and efs (one import + flush; its passes use the engine-bound
`Collection::search_keys`). Prints every pass, then per system and ef the median queries/s,
the spread (max/min) and the recall, and the queries/s each reaches at recall 0.95 and 0.99
(interpolated linearly between efs).

  pip install zvec==0.8.0 numpy
  python3 benches/peers/search_peers.py --base target/glove/glove50-100000.base.fvecs \
      --query target/glove/glove50.query.fvecs --gt target/glove/glove50-100000.gt.ivecs \
      --stratavec target/release/stratavec
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import tempfile
import time

import numpy as np

# The shortest timed pass, as in `stratavec bench search`.
MIN_PASS_S = 1.0


def read_vecs(path, dtype):
    raw = np.fromfile(path, dtype=np.int32)
    dim = int(raw[0])
    rows = raw.reshape(-1, dim + 1)[:, 1:].copy()
    return rows.view(dtype) if dtype == np.float32 else rows


def zvec_runs(args, base, queries, gt):
    import zvec

    metric = {"cosine": zvec.MetricType.COSINE, "l2": zvec.MetricType.L2, "ip": zvec.MetricType.IP}[args.metric]
    schema = zvec.CollectionSchema(
        name="search_bench",
        vectors=zvec.VectorSchema(
            "embedding", zvec.DataType.VECTOR_FP32, dimension=base.shape[1],
            index_param=zvec.HnswIndexParam(metric_type=metric, m=args.m, ef_construction=args.ef_construction),
        ),
    )
    out = {}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        coll = zvec.create_and_open(path=os.path.join(tmp, "c"), schema=schema)
        for start in range(0, len(base), 1000):
            chunk = base[start:start + 1000]
            coll.insert([zvec.Doc(id=str(start + i), vectors={"embedding": v.tolist()}) for i, v in enumerate(chunk)])
        coll.optimize()
        del coll
        # zvec's engine-bound path: query_internal_ids on a read-only handle (int64 ids and
        # float32 scores in numpy arrays, no documents), resolved to pks after timing.
        coll = zvec.open(path=os.path.join(tmp, "c"), option=zvec.CollectionOption(read_only=True))
        qs = [q.tolist() for q in queries]
        for ef in args.ef:
            param = zvec.HnswQueryParam(ef=ef)

            def one_pass(repeat):
                ids = []
                t = time.perf_counter()
                for _ in range(repeat):
                    for q in qs:
                        got, _scores = coll.query_internal_ids(
                            zvec.Query("embedding", vector=q, param=param), topk=10, return_scores=True)
                        ids.append(got)
                secs = time.perf_counter() - t
                found = [[int(pk) for pk in coll.resolve_internal_ids(i.tolist()) if pk is not None] for i in ids[:len(qs)]]
                return secs, found

            # As `stratavec bench search`: one untimed pass, then passes of the query set
            # repeated until a pass lasts at least MIN_PASS_S.
            warm_s, _ = one_pass(1)
            repeat = max(1, min(1000, math.ceil(MIN_PASS_S / max(warm_s, 1e-9))))
            qps = []
            recall = 0.0
            for _ in range(args.passes):
                secs, found = one_pass(repeat)
                qps.append(len(qs) * repeat / secs)
                recall = float(np.mean([len(set(f) & set(g[:10].tolist())) / 10 for f, g in zip(found, gt)]))
                print(json.dumps({"system": "zvec 0.8.0", "ef": ef, "qps": round(qps[-1], 1), "recall": round(recall, 4)}), flush=True)
            out[ef] = (qps, recall)
    return out


def stratavec_runs(args):
    cmd = [args.stratavec, "bench", "search", "--json", "--base", args.base, "--query", args.query, "--gt", args.gt,
           "--metric", args.metric, "--m", str(args.m), "--ef-construction", str(args.ef_construction),
           "--ef", ",".join(map(str, args.ef)), "--runs", str(args.passes), "--dir", args.dir]
    out = {}
    text = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    for line in text.splitlines()[1:]:
        r = json.loads(line)
        print(json.dumps({"system": "stratavec", **r}), flush=True)
        out[r["ef"]] = ([r["qps_min"], r["qps"], r["qps_max"]], r["recall"])
    return out


def at_recall(rows, target):
    """Queries/s at `target` recall, interpolated between the efs around it (None if never reached)."""
    pts = sorted((rec, qps) for qps, rec in rows)
    for (r0, q0), (r1, q1) in zip(pts, pts[1:]):
        if r0 <= target <= r1 and r1 > r0:
            return q0 + (q1 - q0) * (target - r0) / (r1 - r0)
    return pts[-1][1] if pts and pts[-1][0] >= target and len(pts) == 1 else None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", required=True)
    p.add_argument("--query", required=True)
    p.add_argument("--gt", required=True)
    p.add_argument("--stratavec", required=True)
    p.add_argument("--metric", default="cosine")
    p.add_argument("--m", type=int, default=16)
    p.add_argument("--ef-construction", type=int, default=200)
    p.add_argument("--ef", type=lambda s: [int(x) for x in s.split(",")], default=[16, 32, 64, 128, 256])
    p.add_argument("--passes", type=int, default=5)
    p.add_argument("--dir", default=tempfile.gettempdir())
    args = p.parse_args()
    base = read_vecs(args.base, np.float32)
    queries = read_vecs(args.query, np.float32)
    gt = read_vecs(args.gt, np.int32)
    results = {"stratavec": stratavec_runs(args), "zvec 0.8.0": zvec_runs(args, base, queries, gt)}
    print(f"\nuptime: {os.getloadavg()}; {len(queries)} queries, {len(base)} rows, dim {base.shape[1]}")
    print(f"| system | ef | recall@10 | median queries/s ({args.passes} passes) | spread max/min |")
    print("|---|---:|---:|---:|---:|")
    curves = {}
    for name, per_ef in results.items():
        curves[name] = []
        for ef, (qps, recall) in sorted(per_ef.items()):
            med = statistics.median(qps) if name != "stratavec" else qps[1]
            spread = max(qps) / min(qps)
            curves[name].append((med, recall))
            print(f"| {name} | {ef} | {recall:.4} | {med:.0f} | {spread:.2f} |")
    for target in (0.95, 0.99):
        s, z = at_recall(curves["stratavec"], target), at_recall(curves["zvec 0.8.0"], target)
        ratio = f"{s / z:.2f}x" if s and z else "n/a"
        print(f"recall {target}: stratavec {s and round(s)} q/s, zvec {z and round(z)} q/s, ratio {ratio}")


if __name__ == "__main__":
    main()
