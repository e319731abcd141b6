"""The embedded local stack: broker, streams worker, sink (owning chDB) and demo traffic."""
