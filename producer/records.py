"""From a page's Plan to the bytes of its transaction (records, dead letters, store, cursor)."""

from __future__ import annotations

from producer.clock import Clock
from producer.codec import DEFAULT_MAX_RECORD_BYTES, RecordSerializer, encode_plan
from producer.model import ExportCursor, ExportPage
from producer.plan import Plan
from producer.sink import SinkRecord, TransactionBatch


class BatchBuilder:
    def __init__(
        self,
        account: str,
        serializer: RecordSerializer,
        clock: Clock,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    ) -> None:
        self._account = account
        self._serializer = serializer
        self._clock = clock
        self._max_record_bytes = max_record_bytes

    def build(self, plan: Plan, page: ExportPage) -> TransactionBatch:
        encoded = encode_plan(
            plan,
            page,
            account=self._account,
            serializer=self._serializer,
            now=self._clock.now(),
            max_record_bytes=self._max_record_bytes,
        )
        return TransactionBatch(
            records=[SinkRecord(key, value) for key, value in encoded.records],
            dead_letters=[SinkRecord(key, value) for key, value in encoded.dead_letters],
            store_changes=plan.store_updates,
            cursor=plan.next_cursor,
            metadata={
                "window_start": page.start.start_time,
                "window_end": page.next_cursor.start_time,
                "tickets": len(page.tickets),
            },
        )

    def heartbeat(self, cursor: ExportCursor) -> TransactionBatch:
        """Only the checkpoint: a quiet poll proves the pipeline is alive."""
        return TransactionBatch(
            records=(),
            dead_letters=(),
            store_changes={},
            cursor=cursor,
            metadata={"heartbeat": True},
        )
