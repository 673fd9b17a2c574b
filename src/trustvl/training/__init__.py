"""trustvl.training."""
