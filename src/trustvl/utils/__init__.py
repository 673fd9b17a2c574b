"""trustvl.utils: the lowest layer (atomic outputs, hashing, device and dtype resolution); imports nothing of trustvl above it."""
