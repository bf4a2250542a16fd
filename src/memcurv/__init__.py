"""memcurv: privacy, memorization and input-curvature links (Ravikumar et al., ICML 2024)."""

__version__ = "0.1.0"
