"""The images: where they come from (sources: npz, IDX, Keras's loader) and the dataset a run uses.

The driver loads and checks a dataset once and ships it as uint8 arrays; no framework is
imported unless the Keras loader is the source.
"""
