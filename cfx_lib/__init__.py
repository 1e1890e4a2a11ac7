"""cfx: counterfactual explanations for image anomaly detectors.

A reference implementation of Liznerski et al., "Reimagining Anomalies: What If Anomalies
Were Normal?" (arXiv 2402.14469). The package is organised by job:

- :mod:`cfx_lib.data`: anomaly-detection datasets (real, coloured and synthetic) and
  outlier-exposure sources, all with an offline default;
- :mod:`cfx_lib.detectors`: the detectors φ (DSVDD, HSC, BCE with OE, supervised BCE);
- :mod:`cfx_lib.counterfactual`: the counterfactual generator and its trainer;
- :mod:`cfx_lib.metrics`: evaluation metrics;
- :mod:`cfx_lib.viz`: plotting helpers;
- :mod:`cfx_lib.config`: typed configuration and the named profiles (smoke, quick, paper).
"""

__version__ = "0.1.0"
