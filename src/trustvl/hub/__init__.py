"""trustvl.hub."""
