"""Erasing a person: their rows deleted, the rollups they touched corrected, a receipt, and a
list on a compacted topic that keeps them out of every later insert (see ``eraser``)."""
