"""Training: a lock-step group of models, an epoch per compiled call, on TensorFlow or JAX.

base (what every engine shares: History, the callbacks, StopRule), tensorflow and keras2
(Keras 2.2's optimizer rules), jax and jax_optimizers, model (the autoencoder), events
(TensorBoard files). An engine module imports its framework; this package's face imports
nothing.
"""
