"""Preparing a dataset once, and opening its splits as data sources.

``data`` names what to build from: the UTKFace archive or folder (the utk_face
builder), or a manifest, ``.csv`` or ``.jsonl`` (the face_manifest builder).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
from pathlib import Path

import tensorflow_datasets as tfds

from jaxface.data import face_manifest, manifest, tfds_spill
from jaxface.data import source as source_lib
from jaxface.data.utk_face import Builder, make_config


def data_dir(path: str | os.PathLike | None = None) -> Path:
  """TFDS data dir: ``path``, else $TFDS_DATA_DIR, else ~/tensorflow_datasets."""
  return Path(path or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets").expanduser()


def builder(
  config: str = "subset5000",
  image_size: int = 128,
  tfds_dir: str | os.PathLike | None = None,
  source: Path | None = None,
  data: str | os.PathLike | None = None,
  crop: str = "detect",
) -> tfds.core.DatasetBuilder:
  """The builder of ``data`` in split config ``config``: face_manifest for a manifest, else utk_face."""
  if manifest.is_manifest(data):
    return face_manifest.Builder(
      config=face_manifest.make_config(data, config, image_size, crop), data_dir=str(data_dir(tfds_dir)),
      file_format="array_record",
    )  # fmt: skip
  cfg = make_config(config, image_size)
  registered = {c.name for c in Builder.BUILDER_CONFIGS}
  # TFDS takes registered configs by name only; other image sizes as a config object.
  return Builder(
    config=cfg.name if cfg.name in registered else cfg,
    data_dir=str(data_dir(tfds_dir)),
    source=source,
    file_format="array_record",
  )


def _manual_source(b: Builder, data: str | os.PathLike | None) -> Path:
  """The download to build from: ``data``, $JAXFACE_DATA, or TFDS's manual folder."""
  if data is None and not os.environ.get(source_lib.ENV_VAR):
    manual = Path(b.data_dir_root) / "downloads" / "manual"
    try:
      return source_lib.locate(
        manual / source_lib.ARCHIVE_NAME
        if (manual / source_lib.ARCHIVE_NAME).exists()
        else manual / source_lib.FOLDER_NAME
      )
    except source_lib.DataNotFoundError:
      raise source_lib.DataNotFoundError(
        f"No UTKFace data given (--data or ${source_lib.ENV_VAR}) and none in {manual}.\n{source_lib.HOW_TO_GET}"
      ) from None
  return source_lib.locate(data)


def prepare(
  data: str | os.PathLike | None = None,
  config: str = "subset5000",
  image_size: int = 128,
  tfds_dir: str | os.PathLike | None = None,
  rebuild: bool = False,
  crop: str = "detect",
) -> tfds.core.DatasetBuilder:
  """Builds the dataset if it is not built yet (or ``rebuild``); returns its builder.

  Safe when several processes prepare the same dataset at once: they take a
  file lock in turn, and those that find it built by then reuse it.
  ``crop``: a manifest's crop policy (``collection.CROPS``).
  """
  if data is not None and Path(data).suffix.lower() in manifest.SUFFIXES and not manifest.is_manifest(data):
    raise manifest.ManifestError(f"{data}: no such manifest")
  b = builder(config, image_size, tfds_dir, data=data, crop=crop)
  if rebuild or not b.is_prepared():
    with _lock(b):
      b = builder(config, image_size, tfds_dir, data=data, crop=crop)
      if rebuild or not b.is_prepared():
        b = _build(b, data, config, image_size, tfds_dir, rebuild, crop)
  elif data is not None and not manifest.is_manifest(data):
    built_from, asked = b.info.metadata.get("source"), str(source_lib.locate(data).resolve())
    if built_from and built_from != asked:
      logging.warning(
        "utk_face/%s was prepared from %s, not %s; pass --rebuild (jaxface.data) to build it again",
        b.builder_config.name,
        built_from,
        asked,
      )
  return b


@contextlib.contextmanager
def _lock(b: Builder):
  """An exclusive lock per dataset config and version, held while it is built."""
  path = Path(b.data_dir).parent / f".{b.version}.prepare.lock"
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(path, "a") as f:
    try:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      logging.info("Waiting for another process preparing %s/%s (%s)", b.name, b.builder_config.name, path)
      fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


def _build(b, data, config: str, image_size: int, tfds_dir, rebuild: bool, crop: str):
  for leftover in Path(b.data_dir).parent.glob(f"incomplete.*_{b.version}"):  # a killed build's; we hold the lock
    logging.info("Removing %s, left by an interrupted build", leftover)
    shutil.rmtree(leftover, ignore_errors=True)
  if not manifest.is_manifest(data):
    path = _manual_source(b, data)
    b = builder(config, image_size, tfds_dir, source=path)
  logging.info("Preparing %s/%s from %s into %s", b.name, b.builder_config.name, data, b.data_dir)
  tfds_spill.install()
  mode = (
    tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS if rebuild else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS
  )
  b.download_and_prepare(file_format="array_record", download_config=tfds.download.DownloadConfig(download_mode=mode))
  return builder(config, image_size, tfds_dir, data=data, crop=crop)  # reload: info.metadata as written


def name(b: tfds.core.DatasetBuilder) -> str:
  """``utk_face/full:1.0.0``: the dataset, its config and version."""
  return f"{b.name}/{b.builder_config.name}:{b.version}"


def summary(b: tfds.core.DatasetBuilder) -> dict:
  """What the data command prints: splits, counts, duplicates and skips."""
  meta = dict(b.info.metadata)
  return {
    "dataset": name(b),
    "data_dir": str(b.data_dir),
    "image_size": b.builder_config.image_size,
    "source": meta.get("source"),
    "files_read": meta.get("files_read"),
    "usable_unique": meta.get("usable_unique"),
    "splits": meta.get("splits"),
    "duplicates": meta.get("duplicates"),
    "skipped": {"count": len(meta.get("skipped", [])), "files": meta.get("skipped", [])},
    **{k: meta[k] for k in ("crop", "partial_labels") if k in meta},
  }
