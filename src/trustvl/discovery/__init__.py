"""trustvl.discovery."""
