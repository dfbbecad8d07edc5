"""Serving: search over the published snapshot, ``VectorMatcher`` and the side-by-side comparison."""
