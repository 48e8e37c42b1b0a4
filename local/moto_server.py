"""moto's server for the local run, with Kinesis shards that stay fast as they fill.

    python -m local.moto_server --port 5000

moto keeps a shard's records in an ordered dict and, on every put, copies all
its keys to find the last sequence number; every get walks the dict from the
first record. Both grow with the records already in the shard (puts fall
from about 13,000 records/s into an empty shard to 1,900/s at 37,500
records, and keep falling), which a local run at 1,000 readings/s reaches in
a minute. The fix below keeps, beside moto's dict, the shard's sequence
numbers and records in append-only lists: the last sequence number is the
list's tail, and a read starts where bisect says. Behaviour is unchanged
(tests/local/test_moto_server.py); `python -m bench.local_throughput
--kinesis-only` measures both.
"""

from __future__ import annotations

import argparse
from bisect import bisect_right

from moto.kinesis import models


def patch_kinesis_shards() -> None:
    """Make put_record O(1) and get_records O(log n + batch) in moto's Shard."""
    shard = models.Shard
    original_init = shard.__init__

    def __init__(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self._sequence_list = []
        self._record_list = []

    def _in_sync(self) -> bool:
        # Resharding in moto writes self.records directly: fall back to its code then.
        return len(self._sequence_list) == len(self.records)

    def put_record(self, partition_key, data, explicit_hash_key):
        if not _in_sync(self):
            return original_put(self, partition_key, data, explicit_hash_key)
        sequence_number = (self._sequence_list[-1] if self._sequence_list else 0) + 1
        record = models.Record(partition_key, data, sequence_number, explicit_hash_key)
        self.records[sequence_number] = record
        self._sequence_list.append(sequence_number)
        self._record_list.append(record)
        return str(sequence_number)

    def get_records(self, last_sequence_id, limit):
        if not _in_sync(self):
            return original_get(self, last_sequence_id, limit)
        start = bisect_right(self._sequence_list, int(last_sequence_id))
        results = self._record_list[start : start + limit] if limit else self._record_list[start:]
        if not results:
            return [], int(last_sequence_id), 0
        behind = self._record_list[-1].created_at - results[-1].created_at
        return results, results[-1].sequence_number, int(behind * 1000)

    def get_max_sequence_number(self):
        if _in_sync(self):
            return self._sequence_list[-1] if self._sequence_list else 0
        return original_max(self)

    original_put, original_get, original_max = shard.put_record, shard.get_records, shard.get_max_sequence_number
    shard.__init__ = __init__
    shard.put_record = put_record
    shard.get_records = get_records
    shard.get_max_sequence_number = get_max_sequence_number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--unpatched", action="store_true", help="moto as shipped (for the benchmark's baseline)")
    args = parser.parse_args()
    if not args.unpatched:
        patch_kinesis_shards()
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    server._thread.join()  # serve until terminated


if __name__ == "__main__":
    main()
