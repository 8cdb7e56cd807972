"""Accuracy pipeline: evaluation backends (run or ingest) and the pass rule."""
