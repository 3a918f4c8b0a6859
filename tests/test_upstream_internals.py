"""The upstream internals aeexp relies on, named, so a release that moves one fails here first.

aeexp/engines/keras2.py rewrites Keras optimizers' update steps on their private slot lists, the JAX
backend switches off a private Keras probe (aeexp/env/backend.py), and the Ray executor bounds
Ray's start-up through an environment variable Ray reads in its private node module. The lock
pins versions where these hold; this file says which internal moved when they stop holding.
"""

import inspect

import numpy as np
import pytest

from aeexp.env import backend

# Optimizer -> the private attributes aeexp/engines/keras2.py reads or calls after build().
OPTIMIZER_INTERNALS = {
    "Adagrad": ("_accumulators", "_get_variable_index"),
    "RMSprop": ("_velocities", "_get_variable_index"),
    "Nadam": (
        "_momentums",
        "_velocities",
        "_u_product",
        "_get_variable_index",
        "_backend_update_step",
    ),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZER_INTERNALS))
def test_keras_optimizers_keep_the_internals_keras2_rewrites(name):
    keras = backend.import_keras()
    optimizer = getattr(keras.optimizers, name)()
    optimizer.build([keras.Variable(np.zeros(3, np.float32))])
    missing = [a for a in OPTIMIZER_INTERNALS[name] if not hasattr(optimizer, a)]
    assert not missing, (
        f"Keras {keras.__version__} has no {name}.{', '.join(missing)}, which "
        "aeexp/engines/keras2.py uses: port it, then 'make lock UPGRADE=1'"
    )


def test_keras_keeps_the_lazy_tensorflow_probes_the_jax_backend_switches_off():
    from keras.src.utils import module_utils

    for lazy in ("tensorflow", "gfile"):
        probe = getattr(module_utils, lazy, None)
        assert probe is not None and hasattr(probe, "_available"), (
            f"keras.src.utils.module_utils.{lazy}._available is gone; "
            "aeexp/env/backend.py _without_tensorflow sets it"
        )


def test_ray_reads_the_start_up_variable_the_executor_sets():
    pytest.importorskip("ray")
    from ray._private import node

    from aeexp.execute import ray as ray_executor

    assert ray_executor.GCS_CONNECT_TRIES.isdigit()
    assert "RAY_gcs_server_port_wait_time_s" in inspect.getsource(node), (
        "Ray's node module no longer reads RAY_gcs_server_port_wait_time_s, which "
        "aeexp/execute/ray.py sets to bound its start-up"
    )


def test_ray_keeps_what_the_executor_reads_to_name_a_token_problem():
    """A refused token must stay one line naming the token, not a 30 s timeout or a traceback."""
    pytest.importorskip("ray")
    import ray.exceptions
    from ray._private import grpc_utils, node
    from ray.core.generated import ray_client_pb2, ray_client_pb2_grpc

    moved = "which aeexp/execute/ray.py uses to name a refused or missing Ray token"
    assert hasattr(ray.exceptions, "AuthenticationError"), f"no AuthenticationError, {moved}"
    assert "message" in inspect.signature(ray.exceptions.AuthenticationError).parameters, moved
    # ray.init's ConnectionError chains a RuntimeError holding the last formatted traceback.
    assert "traceback.format_exc()" in inspect.getsource(node), f"node's GCS error, {moved}"
    assert callable(grpc_utils.init_grpc_channel), f"no init_grpc_channel, {moved}"
    assert ".ClusterInfo = " in inspect.getsource(ray_client_pb2_grpc.RayletDriverStub), moved
    assert ray_client_pb2.ClusterInfoType.PING is not None, moved
