"""Preparing the utk_face TFDS dataset once, and opening its splits as data sources."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
from pathlib import Path

import tensorflow_datasets as tfds
from tensorflow_datasets.core import shuffle as tfds_shuffle

from jaxface.data import source as source_lib
from jaxface.data.utk_face import Builder, make_config

IN_MEMORY_SHUFFLE = 1 << 40  # bytes: no spill to disk, ever


def data_dir(path: str | os.PathLike | None = None) -> Path:
  """TFDS data dir: ``path``, else $TFDS_DATA_DIR, else ~/tensorflow_datasets."""
  return Path(path or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets").expanduser()


def builder(
  config: str = "subset5000",
  image_size: int = 128,
  tfds_dir: str | os.PathLike | None = None,
  source: Path | None = None,
) -> Builder:
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
) -> Builder:
  """Builds the dataset if it is not built yet (or ``rebuild``); returns its builder.

  Safe when several processes prepare the same dataset at once: they take a
  file lock in turn, and those that find it built by then reuse it.
  """
  b = builder(config, image_size, tfds_dir)
  if rebuild or not b.is_prepared():
    with _lock(b):
      b = builder(config, image_size, tfds_dir)
      if rebuild or not b.is_prepared():
        b = _build(b, data, config, image_size, tfds_dir, rebuild)
  elif data is not None:
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
      logging.info("Waiting for another process preparing utk_face/%s (%s)", b.builder_config.name, path)
      fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


def _build(b: Builder, data, config: str, image_size: int, tfds_dir, rebuild: bool) -> Builder:
  path = _manual_source(b, data)
  for leftover in Path(b.data_dir).parent.glob(f"incomplete.*_{b.version}"):  # a killed build's; we hold the lock
    logging.info("Removing %s, left by an interrupted build", leftover)
    shutil.rmtree(leftover, ignore_errors=True)
  logging.info("Preparing utk_face/%s from %s into %s", b.builder_config.name, path, b.data_dir)
  b = builder(config, image_size, tfds_dir, source=path)
  # TFDS's shuffler spills a split past 1 GB to bucket files written through tf.io.gfile, i.e. TensorFlow, which is
  # not installed (`full` at 224 px failed so). The order it writes is the same either way (sorted by key hash), so
  # the split stays in memory instead: its pixels must fit (`full` at 224 px, 17k train faces: 2.6 GB).
  tfds_shuffle.MAX_MEM_BUFFER_SIZE = max(tfds_shuffle.MAX_MEM_BUFFER_SIZE, IN_MEMORY_SHUFFLE)
  mode = (
    tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS if rebuild else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS
  )
  b.download_and_prepare(file_format="array_record", download_config=tfds.download.DownloadConfig(download_mode=mode))
  return builder(config, image_size, tfds_dir)  # reload: info.metadata as written


def summary(b: Builder) -> dict:
  """What the data command prints: splits, counts, duplicates and skips."""
  meta = dict(b.info.metadata)
  return {
    "dataset": f"utk_face/{b.builder_config.name}:{b.version}",
    "data_dir": str(b.data_dir),
    "image_size": b.builder_config.image_size,
    "source": meta.get("source"),
    "files_read": meta.get("files_read"),
    "usable_unique": meta.get("usable_unique"),
    "splits": meta.get("splits"),
    "duplicates": meta.get("duplicates"),
    "skipped": {"count": len(meta.get("skipped", [])), "files": meta.get("skipped", [])},
  }
