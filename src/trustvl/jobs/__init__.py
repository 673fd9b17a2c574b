"""End-to-end jobs (layer 9): runs that build data, train and evaluate in one go, such as ``trustvl demo``.
They sit above the shared evaluation machinery and below the command line."""
