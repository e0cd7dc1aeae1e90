"""What ``--data`` names (``open_data``, the one place that decides), preparing its dataset once, and its splits.

``data`` names what to build from: the UTKFace archive or folder (the utk_face
builder), or a manifest, ``.csv`` or ``.jsonl`` (the face_manifest builder).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import os
import shutil
from pathlib import Path

import tensorflow_datasets as tfds

from jaxface.data import collection, face_manifest, manifest, tfds_spill
from jaxface.data import source as source_lib
from jaxface.data.utk_face import Builder, make_config


def data_dir(path: str | os.PathLike | None = None) -> Path:
  """TFDS data dir: ``path``, else $TFDS_DATA_DIR, else ~/tensorflow_datasets."""
  return Path(path or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets").expanduser()


KINDS = ("utkface", "manifest")  # what --data can name


@dataclasses.dataclass(frozen=True)
class Opened:
  """What ``--data`` names, decided once: its kind, the source located, and the builder of a split config of it."""

  kind: str  # one of KINDS
  # The manifest, or the UTKFace archive or folder. None: UTKFace from $JAXFACE_DATA or TFDS's manual folder, looked
  # for only when it is needed (a prepared dataset needs neither).
  source: Path | None
  builder: tfds.core.DatasetBuilder

  def located(self) -> Path:
    """The source, looked for now if it was not named."""
    return self.source or _default_download(self.builder)

  def scan(self, crop: str) -> tuple[list, list]:
    """Every usable image of the source and the skipped files, as ``evaluate --split all`` reads them."""
    if self.kind == "manifest":
      return collection.scan(self.source, manifest.read(self.source), crop)
    return source_lib.scan(self.located())


def open_data(
  data: str | os.PathLike | None = None,
  config: str = "subset5000",
  image_size: int = 128,
  tfds_dir: str | os.PathLike | None = None,
  crop: str = "detect",
) -> Opened:
  """The one place that decides what ``data`` is: a manifest (``.csv`` or ``.jsonl``) or a UTKFace download (an
  archive or folder; None: $JAXFACE_DATA or TFDS's manual folder); ``crop``: a manifest's crop policy."""
  if data is not None and Path(data).suffix.lower() in manifest.SUFFIXES:
    if not manifest.is_manifest(data):
      raise manifest.ManifestError(f"{data}: no such manifest")
    return Opened("manifest", Path(data).expanduser(), _builder("manifest", data, config, image_size, tfds_dir, crop))
  source = None if data is None else source_lib.locate(data)
  return Opened("utkface", source, _builder("utkface", source, config, image_size, tfds_dir, crop))


def _builder(kind: str, source, config: str, image_size: int, tfds_dir, crop: str) -> tfds.core.DatasetBuilder:
  if kind == "manifest":
    return face_manifest.Builder(
      config=face_manifest.make_config(source, config, image_size, crop), data_dir=str(data_dir(tfds_dir)),
      file_format="array_record",
    )  # fmt: skip
  cfg = make_config(config, image_size)
  registered = {c.name for c in Builder.BUILDER_CONFIGS}
  # TFDS takes registered configs by name only; other image sizes as a config object.
  return Builder(
    config=cfg.name if cfg.name in registered else cfg, data_dir=str(data_dir(tfds_dir)), source=source,
    file_format="array_record",
  )  # fmt: skip


def _default_download(b: Builder) -> Path:
  """The UTKFace download when --data names none: $JAXFACE_DATA, else TFDS's manual folder."""
  if os.environ.get(source_lib.ENV_VAR):
    return source_lib.locate(None)
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
  opened = open_data(data, config, image_size, tfds_dir, crop)
  b = opened.builder
  if rebuild or not b.is_prepared():
    with _lock(b):
      if rebuild or not b.is_prepared():
        _build(opened, rebuild)
    # TFDS reads a dataset's info (its metadata: splits, skips, source) when the builder is made: a new one reads
    # what the build wrote, ours or another process's.
    b = _builder(opened.kind, opened.source, config, image_size, tfds_dir, crop)
  elif opened.kind == "utkface" and opened.source is not None:
    built_from, asked = b.info.metadata.get("source"), str(opened.source.resolve())
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


def _build(opened: Opened, rebuild: bool) -> None:
  b = opened.builder
  for leftover in Path(b.data_dir).parent.glob(f"incomplete.*_{b.version}"):  # a killed build's; we hold the lock
    logging.info("Removing %s, left by an interrupted build", leftover)
    shutil.rmtree(leftover, ignore_errors=True)
  if opened.kind == "utkface" and b.source is None:
    b.source = _default_download(b)
  logging.info("Preparing %s/%s from %s into %s", b.name, b.builder_config.name, opened.source, b.data_dir)
  tfds_spill.install()
  mode = (
    tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS if rebuild else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS
  )
  b.download_and_prepare(file_format="array_record", download_config=tfds.download.DownloadConfig(download_mode=mode))


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
