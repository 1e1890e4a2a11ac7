"""Anomaly detectors φ: images in [0, 1] → scores in [0, 1] (higher = more anomalous).

Objectives: ``bce`` (BCE with outlier exposure), ``hsc`` (hypersphere classifier with OE),
``dsvdd`` (Deep SVDD, no OE) and ``supervised_bce`` (normal vs labelled anomalies).
"""

from .detector import BaseDetector, CallableDetector, Detector, as_detector
from .heatmap import gradient_heatmap
from .networks import CNN28, CNN32, build_network
from .trainer import DetectorTrainResult, TrainingDiverged, train_detector

__all__ = [
    "BaseDetector", "CallableDetector", "Detector", "as_detector", "gradient_heatmap", "CNN28", "CNN32", "build_network",
    "DetectorTrainResult", "TrainingDiverged", "train_detector",
]
