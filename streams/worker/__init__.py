"""The faust worker around the pure job."""
