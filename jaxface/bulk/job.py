"""A bulk run on Ray Data: the items through ``Crops`` and ``Labels`` actors, the records to Parquet."""

from __future__ import annotations

import logging
import math
from pathlib import Path

from jaxface.bulk import stages
from jaxface.inference.records import DETECT_PHOTOS

LABEL_CPUS = 0.25  # Ray's logical share for a Labels actor on a cluster without GPUs


def _ray():
  try:
    import ray
    import ray.data
  except ImportError:
    raise ValueError("bulk labelling needs Ray Data: pip install 'jaxface[ray]'") from None
  return ray


def start(address: str | None = None, num_cpus: int | None = None) -> dict:
  """Joins the cluster at ``address``, or starts one on this machine (``num_cpus``: its CPUs, default all); returns
  its resources. A session already started (by the caller, or a test) is kept."""
  ray = _ray()
  if not ray.is_initialized():
    kw = {} if address else {"num_cpus": num_cpus}
    ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, **kw)
  return ray.cluster_resources()


def plan(resources: dict, crop_actors: int | None = None, label_actors: int | None = None) -> dict:
  """How many actors of each stage, and what each holds. Reading, detecting and cropping is where the time goes, so
  by default every CPU runs a Crops actor. The model runs on a GPU an actor when the cluster has GPUs; without, a
  Labels actor is granted LABEL_CPUS of a CPU (it idles between batches) and the Crops actors share the rest."""
  cpus, gpus = float(resources.get("CPU", 1)), int(resources.get("GPU", 0))
  labels = label_actors or max(1, gpus)
  label_cpus = 0.0 if gpus else LABEL_CPUS
  crops = crop_actors or max(1, int(cpus))
  crop_cpus = max(0.01, min(1.0, math.floor(100 * (cpus - labels * label_cpus) / crops) / 100))  # sums to <= cpus
  return {"crop_actors": crops, "crop_cpus": crop_cpus, "label_actors": labels,
          "label_cpus": label_cpus, "label_gpus": 1 if gpus else 0}  # fmt: skip


def run(
  items: list[dict], model: str | Path, out: str | Path, *, size: int, detect: bool = True, detector: str = "cnn",
  batch_size: int = 32, actors: dict,
) -> Path:  # fmt: skip
  """Labels ``items`` (``inputs.items``) with the exported ``model`` (crops of ``size``), writing Parquet to ``out``.

  Rows are written as their batches finish, so their order is not the input's. A Crops or Labels actor that dies
  is restarted by Ray and its unfinished task run again; a task's rows are written only once it has finished."""
  ray = _ray()
  # One row per chunk of DETECT_PHOTOS consecutive items: the photos predict_many detects together, so the two agree.
  chunks = [{"items": items[i : i + DETECT_PHOTOS]} for i in range(0, len(items), DETECT_PHOTOS)]
  ds = ray.data.from_items(chunks, override_num_blocks=max(1, len(chunks)))
  ds = ds.map_batches(
    stages.Crops, fn_constructor_kwargs={"size": size, "detect": detect, "detector": detector},
    batch_size=1, batch_format="pyarrow", num_cpus=actors["crop_cpus"],
    compute=ray.data.ActorPoolStrategy(size=actors["crop_actors"]),
  )  # fmt: skip
  ds = ds.map_batches(
    stages.Labels, fn_constructor_kwargs={"model": str(Path(model).resolve()), "batch_size": batch_size},
    batch_size=batch_size, batch_format="pyarrow", num_cpus=actors["label_cpus"], num_gpus=actors["label_gpus"],
    compute=ray.data.ActorPoolStrategy(size=actors["label_actors"]),
  )  # fmt: skip
  ds.write_parquet(str(out))
  return Path(out)


def counts(out: str | Path) -> dict[str, int]:
  """Rows by status in the Parquet files of ``out``."""
  import pyarrow.compute as pc
  import pyarrow.parquet as pq

  status = pq.read_table(out, columns=["status"]).column("status")
  return {str(v["values"]): int(v["counts"]) for v in pc.value_counts(status).to_pylist()}
