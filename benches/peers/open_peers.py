#!/usr/bin/env python3
"""Open + first query of a persisted GloVe collection: zvec 0.8.0 and stratavec, same run.

Builds each collection once (zvec: insert in batches of 1,000 + optimize; stratavec: its CLI
`import` + `flush`), then per run starts a fresh process that opens the collection and runs one
query (topk 10, HNSW ef 64), and reports the time from before the open until the query
returned, measured inside that process. Runs are interleaved; medians are printed.

  pip install zvec==0.8.0 numpy
  python3 benches/peers/open_peers.py --base target/glove/glove50-100000.base.fvecs \
      --query target/glove/glove50.query.fvecs --stratavec target/release/stratavec --runs 7
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np


def read_fvecs(path, limit=None):
    raw = np.fromfile(path, dtype=np.int32)
    dim = int(raw[0])
    rows = raw.reshape(-1, dim + 1)[:, 1:].copy().view(np.float32)
    return rows[:limit] if limit else rows


ZVEC_CHILD = r"""
import sys, time, json
t = time.perf_counter()
import zvec
imported = time.perf_counter()
coll = zvec.open(path=sys.argv[1])
q = [float(x) for x in sys.argv[2].split(",")]
hits = coll.query(zvec.Query("embedding", vector=q, param=zvec.HnswQueryParam(ef=64)), topk=10)
done = time.perf_counter()
print(json.dumps({"ms": (done - imported) * 1e3, "hits": len(hits)}))
"""


def build_zvec(base, path, m, efc):
    import zvec

    schema = zvec.CollectionSchema(
        name="open_bench",
        vectors=zvec.VectorSchema(
            "embedding", zvec.DataType.VECTOR_FP32, dimension=base.shape[1],
            index_param=zvec.HnswIndexParam(metric_type=zvec.MetricType.COSINE, m=m, ef_construction=efc),
        ),
    )
    coll = zvec.create_and_open(path=path, schema=schema)
    for start in range(0, len(base), 1000):
        chunk = base[start:start + 1000]
        coll.insert([zvec.Doc(id=str(start + i), vectors={"embedding": v.tolist()}) for i, v in enumerate(chunk)])
    coll.optimize()
    del coll


def build_stratavec(binary, base_path, path, m, efc, limit):
    schema = {
        "name": "open_bench",
        "vectors": [{"name": "embedding", "dim": 50, "metric": "cosine",
                     "index": {"type": "hnsw", "m": m, "ef_construction": efc}}],
    }
    schema_path = path + ".schema.json"
    with open(schema_path, "w") as f:
        json.dump(schema, f)
    subprocess.run([binary, "create", path, "--schema", schema_path], check=True, capture_output=True)
    cmd = [binary, "import", path, "--fvecs", base_path]
    if limit:
        cmd += ["--limit", str(limit)]
    subprocess.run(cmd, check=True, capture_output=True)
    subprocess.run([binary, "flush", path], check=True, capture_output=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", required=True)
    p.add_argument("--query", required=True)
    p.add_argument("--stratavec", required=True, help="the stratavec binary")
    p.add_argument("--limit", type=int)
    p.add_argument("--m", type=int, default=16)
    p.add_argument("--ef-construction", type=int, default=200)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--dir", default=tempfile.gettempdir())
    args = p.parse_args()
    base = read_fvecs(args.base, args.limit)
    q = read_fvecs(args.query)[0]
    qtext = ",".join(f"{x:.6f}" for x in q)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        zpath = os.path.join(tmp, "zvec")
        spath = os.path.join(tmp, "stratavec")
        build_zvec(base, zpath, args.m, args.ef_construction)
        build_stratavec(args.stratavec, args.base, spath, args.m, args.ef_construction, args.limit)
        results = {"zvec 0.8.0": [], "stratavec": []}
        for run in range(args.runs):
            out = subprocess.run([sys.executable, "-c", ZVEC_CHILD, zpath, qtext], check=True,
                                 capture_output=True, text=True).stdout
            z = json.loads(out.splitlines()[-1])
            out = subprocess.run([args.stratavec, "bench", "open", spath, "--vector", qtext, "--field",
                                  "embedding", "--json"], check=True, capture_output=True, text=True).stdout
            s = json.loads(out.splitlines()[-1])
            results["zvec 0.8.0"].append(z["ms"])
            results["stratavec"].append(s["open_query_ms"])
            print(json.dumps({"run": run, "zvec_ms": z["ms"], "stratavec_ms": s["open_query_ms"]}), flush=True)
    print(f"\nuptime: {os.getloadavg()}")
    print(f"| system | open + first query, median of {args.runs} (ms) | runs |")
    print("|---|---:|---|")
    for name, xs in results.items():
        print(f"| {name} | {statistics.median(xs):.2f} | {', '.join(f'{x:.2f}' for x in xs)} |")


if __name__ == "__main__":
    main()
