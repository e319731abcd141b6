"""Tools and benches: the traffic generator, the collector load, the streams bench."""
