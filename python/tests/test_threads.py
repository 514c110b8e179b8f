"""Python threads query while another thread writes: the GIL is released during I/O and search."""

import threading
import time

import numpy as np
import pytest

import stratavec as zvec
from conftest import make_schema


def test_concurrent_queries_during_writes(path):
    dim = 16
    c = zvec.create_and_open(path, make_schema(dim=dim), zvec.CollectionOption(flush_policy="never"))
    rng = np.random.default_rng(3)
    base = rng.standard_normal((4000, dim)).astype(np.float32)
    c.insert([zvec.Doc(str(i), vectors={"v": base[i]}, fields={"n": i}) for i in range(500)])
    errors, counts = [], []
    done = threading.Event()
    readers_running = threading.Barrier(4)

    def writer():
        try:
            readers_running.wait(timeout=30)  # every reader has answered one query
            for start in range(500, 4000, 100):
                st = c.insert([zvec.Doc(str(i), vectors={"v": base[i]}, fields={"n": i})
                               for i in range(start, start + 100)])
                assert all(s.ok() for s in st)
                if start % 1000 == 0:
                    c.delete([str(start - 1)])
        except Exception as e:  # noqa: BLE001
            errors.append(e)
        finally:
            done.set()

    def reader(seed):
        r = np.random.default_rng(seed)
        n, last_count = 0, 0
        try:
            while n == 0 or not done.is_set():
                i = int(r.integers(0, 500))
                got = c.query(zvec.Query("v", vector=base[i]), topk=5, filter="n < 500")
                assert got[0].id == str(i)  # a stored vector finds itself
                assert all(d.fields["n"] < 500 for d in got)
                count = c.stats.doc_count
                assert count >= last_count - 4  # monotone apart from the few deletes
                last_count = count
                n += 1
                if n == 1:
                    readers_running.wait(timeout=30)
        except Exception as e:  # noqa: BLE001
            errors.append(e)
        counts.append(n)

    threads = [threading.Thread(target=writer)] + [
        threading.Thread(target=reader, args=(s,)) for s in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    print("queries per reader", counts)
    assert all(n > 1 for n in counts), counts  # each reader queried during the writes
    assert c.stats.doc_count == 4000 - 3
    c.close()


def test_gil_is_released_during_a_long_call(path):
    """While one thread runs optimize (seconds of graph building in Rust), the main thread
    keeps running Python code. If the GIL were held, the loop below could not advance."""
    dim = 32
    c = zvec.create_and_open(path, make_schema(dim=dim))
    rng = np.random.default_rng(5)
    base = rng.standard_normal((20000, dim)).astype(np.float32)
    for s in range(0, 20000, 1000):
        c.insert([zvec.Doc(str(i), vectors={"v": base[i]}, fields={"n": i})
                  for i in range(s, s + 1000)])
    t = threading.Thread(target=c.optimize)
    start = time.perf_counter()
    t.start()
    spins = 0
    while t.is_alive():
        spins += 1
    elapsed = time.perf_counter() - start
    t.join()
    if elapsed < 0.05:
        pytest.skip("optimize finished too fast to observe")
    # a held GIL would give the main thread a few switch intervals (5 ms) at most
    assert spins > 10_000, (spins, elapsed)
    assert c.stats.doc_count == 20000
    c.close()
