"""fkd: 15 Kaggle facial keypoints, trained and live.

The code lives in three sibling packages mapped under this name by pyproject.toml:
``fkd.model`` (the contract), ``fkd.train`` and ``fkd.realtime``.
"""

__version__ = "0.1.0"
