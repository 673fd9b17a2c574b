"""trustvl.evaluation: the jobs (audit, α sweep, SynthWorld and RaVL evaluations, the demo) and what they share.

* :mod:`~trustvl.evaluation.evaluator` — the one evaluator (zero-shot, per-group / worst-group accuracy,
  fairness per attribute, Recall@K) over embeddings a job computed once;
* :mod:`~trustvl.evaluation.results` — its typed results (one schema for JSON, cards and reports);
* :mod:`~trustvl.evaluation.report`, :mod:`~trustvl.evaluation.tables`, :mod:`~trustvl.evaluation.plots` —
  the one report writer (Markdown + HTML), the tables built from typed results, the figures;
* :mod:`~trustvl.evaluation.fair_diffusion` — Fair Diffusion's outcome (group shares vs target, plain vs
  guided, content kept; ``trustvl eval fair-diffusion``);
* :mod:`~trustvl.evaluation.dataset_columns` — reading a dataset's class / attribute columns (the audit caches
  image embeddings with :mod:`trustvl.utils.tensor_cache`).
"""
