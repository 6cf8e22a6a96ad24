"""fkd: 15 Kaggle facial keypoints, trained and live.

The code lives in the top-level folders model/, train/ and realtime/ (and the shipped
weights in weights/); this folder links to each of them, so ``fkd.model`` (the contract),
``fkd.train`` and ``fkd.realtime`` resolve the same way in a checkout, in an editable
install and in an installed wheel.
"""

__version__ = "0.1.0"
