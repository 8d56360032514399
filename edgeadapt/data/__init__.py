"""Datasets: specs such as ``xquad:de``, readers of each format into one example type, fetching,
and synthetic data generators."""
