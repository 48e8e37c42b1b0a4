"""moto's server for the local run, with Kinesis shards and DynamoDB transactions that stay
fast as the stores fill.

    python -m harness.moto_server --port 5000

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

moto's TransactWriteItems deep-copies the whole table once per action, to
roll back on a cancellation: a transaction's cost grows with everything the
table holds (a 100-action transaction on a table of 100,000 items copies ten
million items). The fix keeps moto's logic and rollback but backs up only the
items the transaction writes (tests/local/test_moto_server.py). moto also runs
concurrent requests on threads with nothing isolating one transaction from
another (two could pass their conditions on the same item, and one's rollback
could undo the other's writes); AWS serializes them, so the fix runs one
transaction at a time.
"""

from __future__ import annotations

import argparse
from bisect import bisect_right

from moto.kinesis import models


def patch_kinesis_shards() -> None:
    """Make put_record O(1) and get_records O(log n + batch) in moto's Shard."""
    shard = models.Shard
    if getattr(shard, "fast_records", False):
        return
    shard.fast_records = True
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


def patch_dynamodb_transactions() -> None:
    """Roll a cancelled TransactWriteItems back from copies of the items it writes, not of its tables."""
    import copy
    import json
    import threading

    from moto.dynamodb import models as dynamodb

    if getattr(dynamodb.DynamoDBBackend.transact_write_items, "item_backups", False):
        return
    table_class = dynamodb.Table

    class _TablesNotCopied:
        """moto's module copies a Table only to back up a transaction: that copy becomes the table itself,
        so its rollback (assigning the "copy" back) changes nothing and the item backups below restore."""

        @staticmethod
        def deepcopy(value, memo=None):
            return value if isinstance(value, table_class) else copy.deepcopy(value, memo)

    dynamodb.copy = _TablesNotCopied
    original = dynamodb.DynamoDBBackend.transact_write_items

    serialized = threading.Lock()

    def transact_write_items(self, transact_items):
        with serialized:
            return _transact_with_item_backups(self, transact_items)

    def _transact_with_item_backups(self, transact_items):
        backups = {}
        for action in transact_items:
            operation = next(iter(action.values()), {}) if isinstance(action, dict) else {}
            table = self.tables.get(operation.get("TableName")) if isinstance(operation, dict) else None
            attributes = (operation.get("Item") or operation.get("Key")) if table else None
            if not isinstance(attributes, dict):
                continue
            key = {name: attributes[name] for name in (table.hash_key_attr, table.range_key_attr)
                   if name and name in attributes}
            try:
                current = self.get_item(table.name, key)
            except Exception:  # noqa: BLE001 - a bad key: moto's own validation will say so
                continue
            backups[(table.name, json.dumps(key, sort_keys=True))] = (table.name, key, copy.deepcopy(current))
        try:
            return original(self, transact_items)
        except Exception:
            for table_name, key, item in backups.values():
                if item is None:
                    if self.get_item(table_name, key) is not None:
                        self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, item.to_json()["Attributes"])
            raise

    transact_write_items.item_backups = True
    dynamodb.DynamoDBBackend.transact_write_items = transact_write_items


def patch_moto() -> None:
    """Every fix above, in the process that runs moto's server."""
    patch_kinesis_shards()
    patch_dynamodb_transactions()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--unpatched", action="store_true", help="moto as shipped (for the benchmark's baseline)")
    args = parser.parse_args()
    if not args.unpatched:
        patch_moto()
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    server._thread.join()  # serve until terminated


if __name__ == "__main__":
    main()
