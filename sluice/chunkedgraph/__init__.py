"""ChunkedGraph ingest tracking: PyChunkedGraph's chunk hierarchy, a compact durable tracker."""
