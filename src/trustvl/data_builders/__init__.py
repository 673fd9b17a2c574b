"""trustvl.data_builders."""
