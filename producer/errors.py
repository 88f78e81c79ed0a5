"""The one exception tree of zendesk-cdc, ordered by what the caller does next.

    CdcError
      ConfigError                 bad settings: exit 2 naming the setting
      ZendeskError
        RetryableZendeskError     429, 409, 5xx, timeouts, resets: wait (retry_after) and retry
        FatalZendeskError         401, 403, 404, bad subdomain: stop, alert, never spin
          AuthError                 credentials rejected or expired
        MalformedResponseError    the envelope is not what the API documents: the cursor stays
      CursorStuckError            end_time == start_time while not end_of_stream, and no way past
      EncodeError                 one ticket cannot become Avro: dead-letter it, keep the page
      KafkaError
        KafkaTransactionError     abortable: abort and redo the page
        KafkaFatalError           a commit of unknown outcome, a fatal producer error: recreate
                                  the producer and rewind to the committed cursor
          ProducerFencedError     another instance took over this transactional.id: stop
        TopicMismatchError        an existing topic has the wrong partitions or cleanup policy
      StoppedDuringCommitError    stop was requested while a commit still waited on Kafka:
                                  leave the store and cursor alone and exit 0 (not a Kafka
                                  failure to retry; the next start settles it from Kafka)
      StateError                  the committed state in Kafka cannot be read or understood
        StoreCorruptError         the local store file is corrupt, foreign or of another
                                  schema: delete it and rebuild it from the changelog
      SchemaRegistryError
        RetryableSchemaRegistryError  unreachable, 5xx: nothing commits; wait and redo the page
        FatalSchemaRegistryError      4xx (auth, incompatible schema, unknown subject): stop
"""

from __future__ import annotations


class CdcError(Exception):
    """Base of every error zendesk-cdc raises on purpose."""


class ConfigError(CdcError):
    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"setting {setting}: {problem}")
        self.setting = setting


class ZendeskError(CdcError):
    """Anything that went wrong talking to Zendesk."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RetryableZendeskError(ZendeskError):
    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class FatalZendeskError(ZendeskError):
    """Retrying cannot help: a person has to fix credentials, scopes or the URL."""


class AuthError(FatalZendeskError):
    """Zendesk rejected the credentials (401), or an OAuth refresh failed."""


class MalformedResponseError(ZendeskError):
    """The response is not the documented shape; the cursor must not move past it."""


class CursorStuckError(CdcError):
    def __init__(self, start_time: int) -> None:
        super().__init__(f"export cursor does not advance past {start_time}")
        self.start_time = start_time


class EncodeError(CdcError):
    def __init__(self, ticket_id: int | None, reason: str) -> None:
        super().__init__(f"ticket {ticket_id}: {reason}")
        self.ticket_id = ticket_id
        self.reason = reason


class KafkaError(CdcError):
    """Anything that went wrong talking to Kafka."""


class KafkaTransactionError(KafkaError):
    """An abortable transaction error: abort, then redo the same page."""


class KafkaFatalError(KafkaError):
    """The producer is unusable (fenced, fatal, or a commit of unknown outcome)."""


class ProducerFencedError(KafkaFatalError):
    """Another live instance initialised this transactional.id: this one must stop, not
    fight back (recreating would fence the other, which would fence us, and so on)."""


class TopicMismatchError(KafkaError):
    pass


class StoppedDuringCommitError(CdcError):
    """Stop was requested before the page's transaction was known to be committed.

    Raised once the transaction in flight has not finished within the stop grace (a broker
    outage), or failed while stopping. The page must not reach the store or move the
    cursor. Exactly-once holds without waiting longer: the next instance's
    `init_transactions` (same transactional.id) or the broker's transaction timeout aborts
    an open transaction, and a commit of unknown outcome is settled at the next start,
    which restores the cursor and the store from Kafka, never from the local store alone.
    """


class StateError(CdcError):
    pass


class SchemaRegistryError(CdcError):
    """The Schema Registry refused or could not be reached while encoding a page."""


class RetryableSchemaRegistryError(SchemaRegistryError):
    pass


class FatalSchemaRegistryError(SchemaRegistryError):
    pass


class StoreCorruptError(StateError):
    """The local store cannot be trusted; the remedy is to delete and rebuild it."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"store {path}: {problem}; delete it to rebuild from the changelog")
        self.path = path
