"""zendesk-cdc: Zendesk ticket changes as an exactly-once Avro stream on Kafka."""
__version__ = "0.1.0"
