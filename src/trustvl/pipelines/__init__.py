"""trustvl.pipelines: diffusers-style pipelines (one ``__call__`` each), e.g. Fair Diffusion."""
