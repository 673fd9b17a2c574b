"""trustvl.metrics."""
