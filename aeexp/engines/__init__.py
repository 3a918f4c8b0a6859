"""Training: a lock-step group of models, an epoch per compiled call, on TensorFlow or JAX.

base (what every engine shares: the Engine Protocol, History, the callbacks, StopRule, the
per-epoch bookkeeping), tensorflow and keras2 (Keras 2.2's optimizer rules), jax and
jax_optimizers, model (the autoencoder), events (TensorBoard files). An engine module's
ENGINE is its backend (registered in aeexp.env.backend.ENGINES); it imports its framework
on first use, never on import, and this package's face imports nothing.
"""
