"""Evaluation metrics."""

from .auroc import auroc

__all__ = ["auroc"]
