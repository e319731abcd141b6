"""The pure streams job: decode, validate, de-duplicate, enrich, window; no faust, no Kafka."""
