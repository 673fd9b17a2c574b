"""``trustvl publish``: stage a Hub-ready folder for one artefact and upload it with ``huggingface_hub``.

Five kinds (SPEC §8), each staged from a local folder into a fresh folder that is exactly the repo's
content, then uploaded with ``HfApi.create_repo`` + ``HfApi.upload_folder``:

* ``model`` (repo type ``model``): a ``save_pretrained`` folder, or a run folder holding ``model/``.
  Weights must be safetensors. A model whose ``model_type`` transformers does not know (CF_α's
  ``cf_alpha_clip``) must carry its remote code: ``config.json``'s ``auto_map`` names module files that are
  in the folder and import no trustvl, so ``AutoModel.from_pretrained(repo, trust_remote_code=True)``
  works without trustvl. The card is a ``ModelCard``: the folder's own card when it already holds a
  ``model-index`` (the demo's and Safe-CLIP's), otherwise one made here whose ``model-index`` comes from
  the run's metrics JSON, read into the typed result it holds by the ``read_metrics`` function given to
  :func:`publish` (:mod:`~trustvl.hub.publish.model_index`).
* ``adapter`` (repo type ``model``): a peft adapter folder (``adapter_config.json`` +
  ``adapter_model.safetensors``), or a run folder holding ``adapter/``. Its base must be named by a Hub id
  (``base_model_name_or_path`` in the staged ``adapter_config.json`` and the card's ``base_model``);
  a run's base is often a local folder, so ``--base-model ID`` names it.
* ``dataset`` (repo type ``dataset``): Parquet shards plus a ``DatasetCard`` whose YAML has ``configs``
  (with ``config_name``) whose ``data_files`` match shards in the folder. A folder of Parquet shards
  without such a card gets one from the shards' schema (``hub/dataset_cards.py``); the shards are
  named ``<split>-*.parquet`` or ``<split>.parquet``. Loading scripts are refused (datasets ≥ 4 does not
  run them).
* ``metric`` (repo type ``space``, which is where ``evaluate.load("user/name")`` looks): an ``evaluate``
  module folder staged as it is: ``<name>.py`` (``evaluate.load`` on the Hub fetches the file named after
  the repo, so the repo's name must be ``<name>``), ``README.md`` with ``sdk``/``app_file`` front matter,
  ``app.py`` and ``requirements.txt`` that names every third-party import of the module files.
* ``space`` (repo type ``space``): a Space folder staged as it is: ``README.md`` front matter with ``sdk``
  and ``app_file``, and the app file itself.

In every kind, pickle-based files (``.bin``, ``.pt``, ``.pth``, ``.ckpt``, ``.pkl``, ``.pickle``,
``.joblib``, and any file that starts like a pickle or a ``torch.save`` zip) are refused, never staged.
Hidden files, ``__pycache__`` and training ``checkpoint-*`` folders are not staged.

Uploading needs the Hub: with ``HF_HUB_OFFLINE`` set or no token (``--token``, ``HF_TOKEN`` or a stored
login) :func:`publish` fails before staging or sending anything. ``dry_run`` stages only.

Modules: :mod:`~trustvl.hub.publish.config` (what to publish, what was staged),
:mod:`~trustvl.hub.publish.staging` (:func:`stage`, one ``stage_*`` module per kind),
:mod:`~trustvl.hub.publish.safety` (pickles, remote code, metric requirements),
:mod:`~trustvl.hub.publish.model_cards` and :mod:`~trustvl.hub.publish.model_index` (the cards made here),
:mod:`~trustvl.hub.publish.upload` (:func:`publish`).
"""

from trustvl.hub.publish.config import KINDS, PublishConfig, PublishResult, StagedFile
from trustvl.hub.publish.model_index import MetricsReader
from trustvl.hub.publish.staging import stage
from trustvl.hub.publish.upload import check_upload_possible, publish

__all__ = [
    "KINDS",
    "MetricsReader",
    "PublishConfig",
    "PublishResult",
    "StagedFile",
    "check_upload_possible",
    "publish",
    "stage",
]
