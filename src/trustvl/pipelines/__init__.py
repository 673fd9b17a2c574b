"""trustvl.pipelines."""
