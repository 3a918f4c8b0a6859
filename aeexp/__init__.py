"""aeexp: reproduce and extend 'Autoencoder with New Loss Functions' (Haruguchi, 2019)."""

__version__ = "0.1.0"
