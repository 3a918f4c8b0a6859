"""The Ray executor: long-lived actors on a Ray cluster train the groups.

Each actor owns ``cpus_per_worker`` CPUs. It imports nothing of a backend until its first
group arrives: then it makes that group's ``train.backend`` its Keras backend (a process
keeps one) and, for TensorFlow, sizes TensorFlow's thread pools to its CPUs before
TensorFlow starts; a JAX worker imports no TensorFlow. Datasets go to the cluster once per
sweep through the object store and are checked by hash on arrival, so no worker reads a
path. An actor whose aeexp, TensorFlow, JAX or Keras differs from the driver's is refused.
A job whose worker dies is retried on another worker a bounded number of times, then
handed back as lost. Attaching to a cluster keeps Ray's own log lines off the terminal, and a
cluster that wants a token this driver does not send is one line naming the token and the fix.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import numbers
import os
import platform
import signal
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

from aeexp.config.run import DataConfig
from aeexp.data.dataset import Dataset
from aeexp.engines.base import StopRule
from aeexp.env import host
from aeexp.env.extras import install_hint
from aeexp.errors import UserError, clip, one_line, shorten
from aeexp.execute import interrupts, reach
from aeexp.execute.executors import Job, JobResult

try:
    import ray
    import ray.exceptions
except ImportError:  # the optional extra; make_executor reports it on one line
    ray = None

# A job's worker may die this many times before the job is recorded as failed.
MAX_RETRIES = 2
# How long the driver waits on its workers before it looks at Ctrl-C again.
WAIT_SECONDS = 0.2
# Versions that must match between the driver and every worker for bit-identical numbers.
PINNED = ("aeexp", "tensorflow", "jax", "jaxlib", "keras")
# Seconds to wait for a worker to start and report its versions.
START_TIMEOUT = 300.0
# How many times ray.init tries an explicit address's GCS (Ray's default is 20). Each try waits
# up to about 40 s (RAY_py_gcs_connect_timeout_s, 30 s, plus two 5 s gRPC connect waits), which
# Ray reads when it is imported, so only the number of tries can be bounded here.
GCS_CONNECT_TRIES = "1"
ADDRESS_FORMS = "auto, HOST:PORT or ray://HOST:PORT"
# A cluster with token authentication (Ray 2.52+; `ray start` turns it on where a token exists)
# refuses a driver without its token. Where Ray looks for the token, in Ray's order.
TOKEN_FIX = (
    "put the cluster's token (`ray get-auth-token` on its head node) in RAY_AUTH_TOKEN, "
    "in a file named by RAY_AUTH_TOKEN_PATH, or in ~/.ray/auth_token"
)
# What a refused token leaves in the error ray.init raises for HOST:PORT: its ConnectionError
# chains a RuntimeError holding the GCS client's formatted AuthenticationError.
REFUSED_TOKEN_MARKERS = ("AuthenticationError", "InvalidAuthToken")


def _distribution_version(name: str) -> str:
    """Return an installed distribution's version; TensorFlow ships under several names."""
    candidates = {"tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-gpu")}.get(
        name, (name,)
    )
    for candidate in candidates:
        try:
            return importlib.metadata.version(candidate)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"


def pinned_versions() -> dict[str, str]:
    """Return this process's versions of the pinned packages and of Python (major.minor)."""
    versions = {name: _distribution_version(name) for name in PINNED}
    versions["python"] = ".".join(platform.python_version_tuple()[:2])
    return versions


def check_cpus_per_worker(value: Any) -> None:
    """Refuse a CPU count per worker that is not a whole number of at least 1."""
    whole = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not whole or value < 1:
        raise UserError(f"--cpus-per-worker must be a whole number of at least 1, got {value!r}")


def cluster_endpoint(address: str) -> tuple[str, int] | None:
    """Return the host and port an explicit address names; None for ``auto`` and ``local``."""
    if address in ("auto", "local"):
        return None  # Ray finds (or starts) the cluster itself and fails fast when there is none
    rest = address.removeprefix("ray://").rstrip("/")
    host, colon, port = rest.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")  # an IPv6 literal: [::1]:6379
    if not colon or not host or "://" in rest or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"--address must be {ADDRESS_FORMS}, got {address!r}")
    return host, int(port)


def check_address(address: str) -> None:
    """Refuse an explicit address nothing listens at, in seconds, before Ray tries for minutes."""
    endpoint = cluster_endpoint(address)
    if endpoint is None:
        return
    reason = reach.unreachable_reason(*endpoint)
    if reason is not None:
        raise UserError(f"no Ray cluster answers at {address} ({reason})")


def _token_source() -> str | None:
    """Return where Ray takes this driver's token from, in Ray's order; None if nowhere."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    if os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return shorten(os.environ["RAY_AUTH_TOKEN_PATH"])
    default = Path.home() / ".ray" / "auth_token"
    return "~/.ray/auth_token" if default.is_file() else None


def token_refused(address: str) -> str:
    """Return the one line for a cluster that refused this driver's token: cause and fix."""
    # Ray sends a token only in token mode, and never turns it on for an explicit address.
    if os.environ.get("RAY_AUTH_MODE", "").strip().lower() != "token":
        return (
            f"the Ray cluster at {address} requires a token, and RAY_AUTH_MODE is not token: "
            f"set RAY_AUTH_MODE=token and {TOKEN_FIX}"
        )
    source = _token_source()
    if source is None:
        return f"the Ray cluster at {address} requires a token; this driver has none: {TOKEN_FIX}"
    return f"the Ray cluster at {address} refused the token in {source}: {TOKEN_FIX}"


def _authentication_errors() -> tuple[type[BaseException], ...]:
    """Return Ray's error for a token it cannot find (Ray 2.52+; none before)."""
    error = getattr(ray.exceptions, "AuthenticationError", None)
    return (error,) if error is not None else ()


def ray_reason(error: BaseException) -> str:
    """Return a Ray error on one line; of one that quotes a traceback, only its last line.

    Ray Client's server failures arrive as a formatted traceback whose path names alone fill
    a line; the cause is the last line.
    """
    lines = [line for line in str(error).splitlines() if line.strip()]
    if any(line.startswith("Traceback (most recent call last)") for line in lines):
        return f"{type(error).__name__}: {clip(lines[-1])}"
    return one_line(error)


def token_problem(error: BaseException, address: str) -> str | None:
    """Return the one line for a ray.init failure caused by the token; None for other causes."""
    if isinstance(error, _authentication_errors()):
        # Raised before connecting: token mode is on and Ray found no token to send.
        # Its first sentence: the rest, and what str() appends, is help that TOKEN_FIX condenses.
        reason = clip(str(getattr(error, "message", error)).split(". ")[0].rstrip("."))
        return f"no Ray token to send to {address} ({reason}): {TOKEN_FIX}"
    chain, cause = [], error
    while cause is not None and len(chain) < 10:
        chain.append(str(cause))
        cause = cause.__cause__ or cause.__context__
    if any(marker in text for text in chain for marker in REFUSED_TOKEN_MARKERS):
        return token_refused(address)
    return None


def client_token_problem(address: str) -> str | None:
    """Return why a Ray Client server refuses this driver's token, or None if it does not.

    Ray Client takes a refusal for a server still starting: it retries for 30 s, then
    reports a timeout that names no token. One ping, with Ray's own token header, says at once.
    """
    endpoint = cluster_endpoint(address)
    if endpoint is None or not address.startswith("ray://"):
        return None
    try:
        import grpc
        from ray._private.grpc_utils import init_grpc_channel
        from ray.core.generated import ray_client_pb2, ray_client_pb2_grpc
    except ImportError:  # moved by a newer Ray (test_upstream_internals.py says): ray.init alone
        return None
    host, port = endpoint
    channel = init_grpc_channel(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    ping = ray_client_pb2.ClusterInfoRequest(type=ray_client_pb2.ClusterInfoType.PING)
    try:
        ray_client_pb2_grpc.RayletDriverStub(channel).ClusterInfo(
            ping, timeout=reach.CONNECT_TIMEOUT
        )
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.UNAUTHENTICATED:
            return token_refused(address)
    except _authentication_errors() as error:  # a token file that cannot be read
        return token_problem(error, address)
    finally:
        channel.close()
    return None  # answered, or not yet: ray.init says what else is wrong


@contextmanager
def _stderr_discarded() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the block; Python's sys.stderr too.

    Ray's C++ core writes its warnings (gcs_client.cc's refused token, for one) to the
    descriptor itself, whatever RAY_BACKEND_LOG_LEVEL or Python's logging say, and the
    error ray.init then raises carries the same news into aeexp's one line.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no descriptor 2 (a daemon) or a closed sys.stderr
        yield
        return
    try:
        with open(os.devnull, "w") as sink:
            os.dup2(sink.fileno(), 2)
        yield
    finally:
        with suppress(OSError, ValueError):  # what Python buffered meanwhile was Ray's too
            sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


@contextmanager
def _ctrl_c_held() -> Iterator[None]:
    """Hold a first Ctrl-C until the block ends, then deliver it; a second one acts at once.

    An embedded ray.init interrupted half-way has started the GCS and a raylet (which starts
    its agents) but not yet recorded them, so ray.shutdown cannot stop them and the agents
    outlive the driver. Held, the interrupt arrives once ray.shutdown can stop everything.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread receives signals
        return
    held: list[bool] = []

    def hold(signum: int, frame: Any) -> None:
        if held:
            raise KeyboardInterrupt  # pressed again: the user insists
        held.append(True)

    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if held:
            # To whatever handled Ctrl-C before (the driver's records it, then raises).
            signal.raise_signal(signal.SIGINT)


def _lost_worker_errors() -> tuple[type[BaseException], ...]:
    errors = ray.exceptions
    return (
        errors.RayActorError,
        errors.WorkerCrashedError,
        errors.NodeDiedError,
        errors.ObjectLostError,
        errors.OwnerDiedError,
        errors.LocalRayletDiedError,
    )


class GroupWorker:
    """A Ray actor that trains groups on the backend its first group names."""

    def __init__(self, threads: int) -> None:
        # Read when a framework starts (TensorFlow's pools; OpenMP): set before any can.
        for variable in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
            os.environ[variable] = str(threads)
        self.threads = threads
        self.backend: str | None = None
        self.datasets: dict[str, Dataset] = {}

    def _prepare(self, backend_name: str) -> None:
        """Make ``backend_name`` this worker's backend before anything imports Keras."""
        if self.backend == backend_name:
            return
        from aeexp.env import backend

        # A second backend in one worker is refused, on one line.
        engine = backend.start(backend_name)
        # Before the framework runs anything: its pools take the worker's CPUs, no more.
        engine.worker_setup(self.threads)
        self.backend = backend_name

    def describe(self) -> dict[str, Any]:
        """Return this worker's pinned versions, node and thread count."""
        return {
            "versions": pinned_versions(),
            "node": platform.node(),
            "threads": self.threads,
            "usable_cpus": host.usable_cpus(),
        }

    def _dataset(self, digest: str, boxed_ref: list) -> Dataset:
        if digest not in self.datasets:
            dataset = ray.get(boxed_ref[0])
            dataset.verify()  # once per worker and dataset: what arrived is what was sent
            if dataset.digest != digest:
                raise ValueError("received a different dataset than the driver sent")
            self.datasets[digest] = dataset
        return self.datasets[digest]

    def train(
        self, configs: tuple, digest: str, boxed_ref: list, stop: StopRule | None = None
    ) -> tuple[str, Any, float]:
        """Train one group; return ("ok", artifacts, seconds) or ("error", one line, seconds)."""
        from aeexp.execute import runner

        started = time.perf_counter()
        try:
            self._prepare(configs[0].train.backend)
            artifacts = runner.train_group(configs, self._dataset(digest, boxed_ref), stop=stop)
        except Exception as error:  # isolated by the driver, like the local executor's
            return "error", one_line(error), time.perf_counter() - started
        return "ok", artifacts, time.perf_counter() - started


class RayExecutor:
    """Trains jobs on Ray actors, attached to a cluster or in an embedded local Ray."""

    def __init__(
        self,
        address: str | None = None,
        cpus_per_worker: int = 1,
        max_workers: int | None = None,
        max_retries: int = MAX_RETRIES,
    ) -> None:
        if ray is None:
            raise UserError(
                f"--executor ray needs Ray: {install_hint('ray')} (on every node of the cluster)"
            )
        check_cpus_per_worker(cpus_per_worker)
        if address is not None and not address.strip():
            raise UserError(f"--address is empty; give {ADDRESS_FORMS}, or leave it out")
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.cpus_per_worker = int(cpus_per_worker)  # a NumPy integer would trip Ray
        self.max_workers = max_workers
        self.max_retries = max_retries
        self.workers = 0
        self.lost_workers = 0  # workers that died while training, for reports and tests
        self._started_ray = False
        self._actors: list[Any] = []
        self._idle: deque[Any] = deque()
        self._queue: deque[Job] = deque()
        # object ref -> (job, actor, when it was dispatched)
        self._running: dict[Any, tuple[Job, Any, float]] = {}
        self._datasets: dict[DataConfig, tuple[str, Any]] = {}

    def _connect(self) -> None:
        if not ray.is_initialized():  # else a notebook or a test already attached us
            self._init_ray()
        cpus = int(ray.cluster_resources().get("CPU", 0))
        self.workers = cpus // self.cpus_per_worker
        if self.max_workers is not None:
            self.workers = min(self.workers, self.max_workers)
        if self.workers < 1:
            self.shutdown()
            raise UserError(
                f"the Ray cluster has {cpus} CPUs, fewer than --cpus-per-worker "
                f"{self.cpus_per_worker}"
            )

    def _init_ray(self) -> None:
        """Attach to the cluster or start an embedded Ray; on any failure leave nothing running."""
        if self.address:
            check_address(self.address)
            with _stderr_discarded():
                refused = client_token_problem(self.address)
            if refused:
                raise UserError(refused)
        try:
            self._call_ray_init()
        except (ConnectionError, ValueError, RuntimeError, *_authentication_errors()) as error:
            ray.shutdown()
            problem = token_problem(error, self.address) if self.address else None
            where = self.address or "an embedded local Ray"
            raise UserError(
                problem or f"cannot start or reach Ray at {where}: {ray_reason(error)}"
            ) from None
        except BaseException:
            # Ctrl-C during start-up: the processes ray.init started (GCS, raylet, its
            # agents) only ray.shutdown stops; the caller's shutdown does not know Ray started.
            ray.shutdown()
            raise
        self._started_ray = True

    def _call_ray_init(self) -> None:
        """Call ray.init quietly, with a bounded number of tries to reach an explicit address."""
        options: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "logging_level": "ERROR",
        }
        with ExitStack() as quiet:
            quiet.enter_context(warnings.catch_warnings())
            # Ray Client warns on stderr before raising; the raised error is reported instead.
            warnings.simplefilter("ignore")
            if self.address not in (None, "local"):
                # Attaching starts no process here that could inherit the silenced stderr.
                quiet.enter_context(_stderr_discarded())
            if self.address and cluster_endpoint(self.address):
                # Attaching to HOST:PORT starts no process here, so Ctrl-C may act at once.
                with reach.environment_defaults(
                    {"RAY_gcs_server_port_wait_time_s": GCS_CONNECT_TRIES}
                ):
                    ray.init(address=self.address, **options)
                return
            # An embedded Ray (or address "local") starts processes; "auto" returns in a moment.
            where = {"address": self.address} if self.address else {"num_cpus": host.usable_cpus()}
            with _ctrl_c_held():
                ray.init(**where, **options)

    def _new_actor(self) -> Any:
        remote = ray.remote(GroupWorker).options(
            num_cpus=self.cpus_per_worker, max_restarts=0, scheduling_strategy="SPREAD"
        )
        return remote.remote(self.cpus_per_worker)

    def _check(self, actors: list[Any]) -> None:
        """Wait for new workers to start; refuse any whose versions differ from the driver's."""
        mine = pinned_versions()
        try:
            described = ray.get([a.describe.remote() for a in actors], timeout=START_TIMEOUT)
        except ray.exceptions.GetTimeoutError:
            raise UserError(
                f"Ray workers did not start within {START_TIMEOUT:.0f} s "
                "(not enough free CPUs on the cluster?)"
            ) from None
        except ray.exceptions.RayActorError as error:
            raise UserError(f"a Ray worker failed to start: {one_line(error)}") from None
        for info in described:
            theirs = info["versions"]
            differ = [
                f"{k} {theirs.get(k)} (driver: {v})" for k, v in mine.items() if theirs.get(k) != v
            ]
            if differ:
                raise UserError(
                    f"Ray worker on {info['node']} has {', '.join(differ)}; install the "
                    "driver's versions on every node so that runs give the same numbers"
                )

    def start(self, datasets: Mapping[DataConfig, Dataset]) -> None:
        """Start the workers, check their versions and put each dataset in the object store."""
        self._connect()
        self._actors = [self._new_actor() for _ in range(self.workers)]
        self._check(self._actors)
        self._idle.extend(self._actors)
        self._datasets = {key: (d.digest, ray.put(d)) for key, d in datasets.items()}

    def submit(self, job: Job) -> None:
        """Queue a job; it starts as soon as a worker is idle."""
        self._queue.append(job)
        self._dispatch()

    def outstanding(self) -> int:
        """Return how many jobs are queued or training."""
        return len(self._queue) + len(self._running)

    def _dispatch(self) -> None:
        while self._queue and self._idle:
            job, actor = self._queue.popleft(), self._idle.popleft()
            digest, ref = self._datasets[job.data]
            # Boxed in a list so the worker fetches (and checks) it once, not on every call.
            result = actor.train.remote(job.configs, digest, [ref], job.stop)
            self._running[result] = (job, actor, time.perf_counter())

    def _replace(self, actor: Any) -> None:
        """Drop a dead worker; start a replacement only if none is left.

        The cluster's free CPUs lag behind a lost node, so a replacement might wait forever
        for room; the survivors take the retried job instead.
        """
        ray.kill(actor, no_restart=True)
        self._actors.remove(actor)
        self.lost_workers += 1
        if not self._actors:
            replacement = self._new_actor()
            self._check([replacement])
            self._actors.append(replacement)
            self._idle.append(replacement)

    def _wait_for_one(self) -> Any:
        """Return a finished job's reference, looking at Ctrl-C between short waits."""
        while True:
            ready, _ = ray.wait(list(self._running), num_returns=1, timeout=WAIT_SECONDS)
            if ready:
                return ready[0]
            interrupts.check()

    def next_result(self) -> JobResult:
        """Wait for any running job; retry it elsewhere if its worker died."""
        while True:
            self._dispatch()
            done = self._wait_for_one()
            job, actor, dispatched = self._running.pop(done)
            try:
                kind, payload, seconds = ray.get(done)
            except _lost_worker_errors() as error:
                self._replace(actor)
                if job.attempt < self.max_retries:
                    # replace(), not a new Job: the retry keeps the job's stop rule.
                    self._queue.append(dataclasses.replace(job, attempt=job.attempt + 1))
                    continue
                reason = f"worker lost {job.attempt + 1} times: {one_line(error)}"
                return JobResult(job, error=reason, lost=True)
            round_trip = time.perf_counter() - dispatched
            self._idle.append(actor)
            self._dispatch()
            if kind == "ok":
                return JobResult(job, tuple(payload), None, False, seconds, round_trip)
            return JobResult(job, error=payload, worker_seconds=seconds)

    def shutdown(self, cancel: bool = False) -> None:
        """Stop the workers; stop the embedded Ray if this executor started it."""
        self._queue.clear()
        for actor in self._actors:
            ray.kill(actor, no_restart=True)
        self._actors.clear()
        self._running.clear()
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False


def create(
    progress: bool = False, address: str | None = None, cpus_per_worker: int | None = None
) -> RayExecutor:
    """Return a Ray executor (the registry's factory for ``ray``); progress is the driver's."""
    # None means the default; 0 is a mistake RayExecutor refuses, not a default.
    cpus = 1 if cpus_per_worker is None else cpus_per_worker
    return RayExecutor(address=address, cpus_per_worker=cpus)
