"""stratavec vs zvec 0.8.0 from Python: insert docs/s (batches of 1,000) and Collection.query
queries/s at ef 64 on GloVe-50, through each package's own Python API.

The same script runs under either package (they live in separate virtualenvs):

    python bench_vs_zvec.py --engine stratavec --glove DIR [--n 100000] [--runs 3]
    python bench_vs_zvec.py --engine zvec      --glove DIR [--n 100000] [--runs 3]

DIR holds glove50-<N>.base.fvecs, glove50.query.fvecs and glove50-<N>.gt.ivecs (see the
repository's BENCHMARKS.md for how to make them). Each run creates a fresh collection (field
`cat` = i % 10, vector `embedding`: 50-d, cosine, HNSW m=16 ef_construction=200), inserts
the rows in batches of 1,000 (Doc construction included, as a user would), makes the index
complete (zvec: optimize(), which builds its HNSW graph; stratavec: optimize() + wait_idle()),
then answers the 500 queries once untimed and three times timed, one thread, topk 10, ef 64, default output fields.
Prints one JSON line per run and a summary line with the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time

import numpy as np


def read_fvecs(path: str) -> np.ndarray:
    raw = np.fromfile(path, dtype=np.int32)
    dim = raw[0]
    return raw.reshape(-1, dim + 1)[:, 1:].view(np.float32).copy()


def read_ivecs(path: str) -> np.ndarray:
    raw = np.fromfile(path, dtype=np.int32)
    dim = raw[0]
    return raw.reshape(-1, dim + 1)[:, 1:].copy()


def one_run(zvec, engine: str, base: np.ndarray, queries: np.ndarray, gt: np.ndarray,
            workdir: str, ef: int, policy: str | None) -> dict:
    path = os.path.join(workdir, f"{engine}-coll")
    shutil.rmtree(path, ignore_errors=True)
    schema = zvec.CollectionSchema(
        "glove",
        fields=zvec.FieldSchema("cat", zvec.DataType.INT32),
        vectors=zvec.VectorSchema(
            "embedding", zvec.DataType.VECTOR_FP32, base.shape[1],
            zvec.HnswIndexParam(metric_type=zvec.MetricType.COSINE, m=16, ef_construction=200)),
    )
    option = zvec.CollectionOption()
    if policy is not None:
        option = zvec.CollectionOption(flush_policy=policy)
    coll = zvec.create_and_open(path, schema, option)
    n = base.shape[0]
    t0 = time.perf_counter()
    for start in range(0, n, 1000):
        docs = [zvec.Doc(str(i), vectors={"embedding": base[i]}, fields={"cat": i % 10})
                for i in range(start, min(n, start + 1000))]
        st = coll.insert(docs)
        assert all(s.ok() for s in st)
    insert_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    coll.optimize()
    if hasattr(coll, "wait_idle"):
        coll.wait_idle()
    index_s = time.perf_counter() - t0
    assert coll.stats.doc_count == n
    param = zvec.HnswQueryParam(ef=ef)
    for qi in range(queries.shape[0]):  # warm-up pass, not timed
        coll.query(zvec.Query("embedding", vector=queries[qi], param=param), topk=10)
    passes, recall = [], 0.0
    for _ in range(3):
        hits = 0
        t0 = time.perf_counter()
        for qi in range(queries.shape[0]):
            res = coll.query(zvec.Query("embedding", vector=queries[qi], param=param), topk=10)
            hits += len({int(d.id) for d in res} & set(gt[qi, :10].tolist()))
        passes.append(queries.shape[0] / (time.perf_counter() - t0))
        recall = hits / (10 * queries.shape[0])
    coll.destroy()
    return {"engine": engine, "n": n, "policy": policy or "default",
            "insert_docs_per_s": round(n / insert_s), "insert_s": round(insert_s, 2),
            "index_s": round(index_s, 2), "ef": ef, "recall_at_10": round(recall, 4),
            "query_qps_passes": [round(q) for q in passes],
            "query_qps": round(statistics.median(passes))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", choices=["stratavec", "zvec"], required=True)
    ap.add_argument("--glove", default=os.environ.get("STRATAVEC_GLOVE", "target/glove"))
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--ef", type=int, default=64)
    ap.add_argument("--flush-policy", default=None,
                    help="stratavec only: always (default), every:N, interval:MS, never")
    ap.add_argument("--dir", default=None, help="where collections are created (a temp dir)")
    args = ap.parse_args()
    base_path = os.path.join(args.glove, f"glove50-{args.n}.base.fvecs")
    if not os.path.exists(base_path):
        raise SystemExit(f"skipped: {base_path} not found (see BENCHMARKS.md to make it)")
    base = read_fvecs(base_path)[: args.n]
    queries = read_fvecs(os.path.join(args.glove, "glove50.query.fvecs"))
    gt = read_ivecs(os.path.join(args.glove, f"glove50-{args.n}.gt.ivecs"))
    if args.engine == "zvec":
        import zvec
        if args.flush_policy:
            raise SystemExit("--flush-policy is stratavec's")
    else:
        import stratavec as zvec
    workdir = args.dir or tempfile.mkdtemp(prefix=f"bench-{args.engine}-")
    results = []
    for _ in range(args.runs):
        r = one_run(zvec, args.engine, base, queries, gt, workdir, args.ef, args.flush_policy)
        print(json.dumps(r), flush=True)
        results.append(r)
    print(json.dumps({
        "summary": args.engine, "policy": args.flush_policy or "default", "runs": args.runs,
        "insert_docs_per_s_median": statistics.median(r["insert_docs_per_s"] for r in results),
        "index_s_median": statistics.median(r["index_s"] for r in results),
        "query_qps_median": statistics.median(r["query_qps"] for r in results),
        "recall_at_10": results[-1]["recall_at_10"],
    }))
    if args.dir is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
