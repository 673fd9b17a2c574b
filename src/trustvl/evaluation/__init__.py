"""trustvl.evaluation: the jobs (audit, α sweep, SynthWorld and RaVL evaluations, the demo)."""
