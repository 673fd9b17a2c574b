"""RaVL's data (SPEC §3): the spurious-digits evaluation framework and the region decomposition of images."""
