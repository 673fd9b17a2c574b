"""trustvl.modeling."""
