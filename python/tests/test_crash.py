"""A real child process writes and is killed with SIGKILL; a fresh process must find every
acknowledged write (and no acknowledged delete resurrected)."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import stratavec as zvec
from conftest import make_schema

WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    import stratavec as zvec
    c = zvec.open(sys.argv[1])
    rng = np.random.default_rng(1)
    i = 0
    while True:
        docs = [zvec.Doc(f"k{i + j}", vectors={"v": rng.standard_normal(4).astype(np.float32)},
                         fields={"n": i + j, "s": "x" * ((i + j) % 50)}) for j in range(10)]
        st = c.insert(docs)
        assert all(s.ok() for s in st), st
        print("ins", i, i + 9, flush=True)
        if i % 50 == 0 and i:
            st = c.delete([f"k{i - 50}", f"k{i - 49}"])
            assert all(s.ok() for s in st)
            print("del", i - 50, i - 49, flush=True)
        if i % 300 == 0 and i:
            c.flush()
        i += 10
""")

CHECK = textwrap.dedent("""
    import json, sys
    import stratavec as zvec
    c = zvec.open(sys.argv[1])
    ids = json.loads(sys.argv[2])
    got = c.fetch(ids)
    print(json.dumps({"count": c.stats.doc_count,
                      "docs": {k: [d.fields["n"], d.fields["s"]] for k, d in got.items()},
                      "report": c.open_report["replayed_records"]}))
    c.close()
""")


def test_sigkilled_writer_loses_no_acknowledged_write(path):
    zvec.create_and_open(path, make_schema()).close()
    child = subprocess.Popen([sys.executable, "-c", WRITER, path], stdout=subprocess.PIPE,
                             text=True)
    inserted, deleted = set(), set()
    assert child.stdout is not None
    for line in child.stdout:
        kind, a, b = line.split()
        target = inserted if kind == "ins" else deleted
        target.update(range(int(a), int(b) + 1) if kind == "ins" else (int(a), int(b)))
        if len(inserted) >= 1200:
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    live = sorted(inserted - deleted)
    ids = [f"k{i}" for i in sorted(inserted)]
    out = subprocess.run([sys.executable, "-c", CHECK, path, json.dumps(ids)],
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    docs = result["docs"]
    assert sorted(int(k[1:]) for k in docs) == live  # acked inserts present, acked deletes gone
    for k, (n, s) in docs.items():
        assert n == int(k[1:]) and s == "x" * (n % 50)
    # the batch in flight when the kill came may or may not be there, never partially
    assert result["count"] - len(live) in (0, 10)
    assert result["report"] > 0  # the WAL was replayed
