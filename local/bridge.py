"""The topic rule, locally: subscribe with the rule's filter and put into Kinesis exactly
what the rule would (handler/message_format.project: same projection, same partition key).

A payload the rule cannot evaluate goes to the rule-error sink, as the real
rule's error action sends it to its log group. A bridge that cannot put into
the stream keeps the exception in `error` and stops forwarding; the run
reports it rather than waiting for records that will never come.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from handler.message_format import RuleRejected, project, topic_filter

logger = logging.getLogger("local.bridge")

PUT_RECORDS_LIMIT = 500
# PutRecords may fail while moto's server is busy; the bridge gives up only after this many in a row.
MAX_PUT_ATTEMPTS = 8


class RuleBridge:
    def __init__(self, broker_port: int, kinesis, stream_name: str, rule_errors_path: Path, *, suffix: str) -> None:
        # The stack's own topic namespace, as its rule selects it.
        self.suffix = suffix
        self.kinesis = kinesis
        self.stream_name = stream_name
        self.rule_errors = open(rule_errors_path, "a", encoding="utf-8")
        self.received = 0
        self.forwarded = 0
        self.rejected = 0
        self.error: BaseException | None = None
        self._buffer: list[dict] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, name="bridge-flush", daemon=True)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="local-topic-rule")
        self.client.on_connect = lambda client, *_: client.subscribe(topic_filter(suffix), qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker_port)

    def start(self) -> None:
        self.client.loop_start()
        self._flusher.start()

    def _on_message(self, _client, _userdata, message: mqtt.MQTTMessage) -> None:
        received_at = int(time.time() * 1000)
        self.received += 1
        try:
            data, partition_key = project(message.topic, message.payload, received_at, suffix=self.suffix)
        except RuleRejected as error:
            self.rejected += 1
            self.rule_errors.write(json.dumps({"topic": message.topic, "error": str(error), "received_at": received_at,
                                               "base64OriginalPayload": base64.b64encode(message.payload).decode()}) + "\n")
            return
        with self._lock:
            self._buffer.append({"Data": data, "PartitionKey": partition_key})

    def _flush_loop(self) -> None:
        try:
            self._flush_until_stopped()
        except Exception as error:  # kept for the run to report; a thread cannot raise
            logger.exception("the rule bridge stopped forwarding")
            self.error = error

    def _flush_until_stopped(self) -> None:
        while not self._stop.is_set() or self._buffer:
            with self._lock:
                batch, self._buffer = self._buffer[:PUT_RECORDS_LIMIT], self._buffer[PUT_RECORDS_LIMIT:]
            if batch:
                self._put(batch)
            if len(batch) < PUT_RECORDS_LIMIT:
                # Fewer, fuller put_records calls; the rule adds about this much latency too.
                time.sleep(0.05)

    def _put(self, records: list[dict]) -> None:
        # Kinesis may accept part of a put_records call: resend only what failed, as the rule does.
        for attempt in range(MAX_PUT_ATTEMPTS):
            try:
                response = self.kinesis.put_records(StreamName=self.stream_name, Records=records)
            except Exception as error:  # a busy local server; retried, then reported
                if attempt == MAX_PUT_ATTEMPTS - 1:
                    raise
                logger.warning("PutRecords failed (%s); retrying", error)
            else:
                failed = [record for record, result in zip(records, response["Records"]) if "ErrorCode" in result]
                self.forwarded += len(records) - len(failed)
                records = failed
                if not records:
                    return
            time.sleep(0.1 * 2 ** attempt)
        raise RuntimeError(f"{len(records)} records still refused by the stream after {MAX_PUT_ATTEMPTS} attempts")

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
        self._stop.set()
        self._flusher.join()
        self.rule_errors.close()
