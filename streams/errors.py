"""Errors of the streams package; foreign (Kafka, faust) errors are translated into these."""


class StreamsError(Exception):
    """Root of every error this package raises."""


class BrokerError(StreamsError):
    """The embedded broker could not be started, or did not answer."""


class KafkaUnavailableError(StreamsError):
    """The Kafka cluster did not answer within the allowed time."""


class ProduceError(StreamsError):
    """A message could not be delivered; carries the topic and the broker's reason."""

    def __init__(self, topic: str, reason: str) -> None:
        super().__init__(f"delivery to {topic} failed: {reason}")
        self.topic = topic
        self.reason = reason


class FlushStalledError(StreamsError):
    """A flush could not deliver what it depends on within the deadline; the worker stops so
    that its supervisor restarts it and it replays from the last commit."""
