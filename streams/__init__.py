"""Pulse streams: embedded broker, producers and the faust stage (decode, enrich, count)."""
