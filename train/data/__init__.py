"""Labelled faces from every format fkd-train reads (Kaggle CSV, .pts photo folders, MTFL), their
negatives, splits and cache, and the augmentation that makes training batches of them.
"""
