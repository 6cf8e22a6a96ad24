"""Scoring keypoints: Kaggle's RMSE and NME, fkd-eval on labelled faces, and fkd-submit's file.
"""
