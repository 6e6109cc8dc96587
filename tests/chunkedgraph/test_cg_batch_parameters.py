"""A batch as a task-run parameter: one value to Prefect's parameter walks, compact to pickle."""

from __future__ import annotations

import pickle

from prefect.utilities.collections import visit_collection

from sluice.chunkedgraph.batch import Batch, ChunkKeys


def _batch(size: int) -> Batch:
    todo = ChunkKeys((2, index) for index in range(size))
    return Batch("b", todo, ChunkKeys([(3, 0)]), "/nowhere/b.seg", seed=1)


def _visits(batch: Batch) -> int:
    seen: list[object] = []
    visit_collection(batch, visit_fn=seen.append, return_data=False)
    return len(seen)


def test_prefect_walks_a_batch_in_the_same_steps_whatever_its_size():
    assert _visits(_batch(40_000)) == _visits(_batch(8))


def test_keys_keep_their_order_through_pickling_and_pack_small():
    keys = [(2, 7), (3, 0), (9, 2**32 - 1), (2, 1)]
    assert list(pickle.loads(pickle.dumps(ChunkKeys(keys)))) == keys
    many = ChunkKeys((2, index) for index in range(10_000))
    assert len(pickle.dumps(many)) < 6 * len(many)  # 5 bytes a key, as arrays
    assert len(many) == 10_000
