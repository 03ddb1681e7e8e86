"""Evaluation: text-to-motion metrics, retrieval protocols, confidence intervals, the evaluation report."""
