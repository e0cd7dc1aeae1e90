"""face_manifest: any labelled face collection, from a manifest (``data.manifest``), built as utk_face is.

The same guarantees as utk_face, through the same code (``splits.build_plan``):
duplicates by content, splits by content hash, stratified, and a report of
every skipped file. Beyond UTKFace's labels, each example carries its age
range and spread, and an unknown age or gender as -1 (``labels.Labels``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from jaxface.data import collection, examples
from jaxface.data import manifest as manifest_lib
from jaxface.data import splits as splits_lib

DEFAULT_IMAGE_SIZE = 128


@dataclasses.dataclass(kw_only=True)
class FaceManifestConfig(tfds.core.BuilderConfig):
  """One manifest, built in one split config (``splits.KINDS``), at one resolution, by one crop policy."""

  manifest: str = ""
  image_size: int = DEFAULT_IMAGE_SIZE
  crop: str = "detect"
  subset: int | None = None
  split_sizes: tuple[tuple[str, float], ...] = ()
  seed: int = 0


def _identity(path: Path) -> str:
  """A digest of the manifest's bytes, its resolved path, and the size and modification time of each image it
  lists (a row it cannot read, or an image that is missing, counts as it is: the build names them)."""
  h = hashlib.sha256(path.read_bytes())
  h.update(str(path).encode())
  try:
    for _, rec in manifest_lib.records(path):
      image = path.parent / str(rec.get("path") or "").strip()
      try:
        st = image.stat()
        h.update(f"\n{image}:{st.st_size}:{st.st_mtime_ns}".encode())
      except OSError:
        h.update(f"\n{image}:missing".encode())
  except (manifest_lib.ManifestError, UnicodeDecodeError):
    pass  # the build reads it again, and names what is wrong
  return h.hexdigest()


def make_config(manifest: str | Path, kind: str = "full", image_size: int = DEFAULT_IMAGE_SIZE, crop: str = "detect"):
  """The config of ``manifest``, named by what it is (``_identity``): an edited manifest, the same manifest in
  another folder, or an image changed in place is another dataset, built anew."""
  if kind not in splits_lib.KINDS:
    raise ValueError(f"unknown split config {kind!r}; choose one of {sorted(splits_lib.KINDS)}")
  if crop not in collection.CROPS:
    raise ValueError(f"unknown crop policy {crop!r}; choose one of {collection.CROPS}")
  path = Path(manifest).expanduser().resolve()
  digest = _identity(path)[:12]
  stem = re.sub(r"[^a-z0-9]+", "_", path.stem.lower()).strip("_")[:40] or "manifest"
  name = f"{stem}_{digest}_{kind}_{image_size}px_{crop.replace('-', '_')}"
  return FaceManifestConfig(
    name=name, description=f"{path} ({kind}, {image_size}x{image_size}, crop {crop})", manifest=str(path),
    image_size=image_size, crop=crop, **splits_lib.KINDS[kind],
  )  # fmt: skip


class Builder(tfds.core.GeneratorBasedBuilder):
  """Faces listed in a manifest, with age (or its range), gender (or unknown), race, group, subject and source."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = "Write a manifest (jaxface.data.manifest) or import a layout (jaxface.data.layouts)."

  def __init__(self, *, workers: int | None = None, **kwargs):
    super().__init__(**kwargs)
    self._workers = workers

  def _info(self) -> tfds.core.DatasetInfo:
    s = self.builder_config.image_size
    text = tfds.features.Text
    return self.dataset_info_from_configs(
      features=tfds.features.FeaturesDict(
        {
          "image": tfds.features.Tensor(shape=(s, s, 3), dtype=np.uint8),
          "age": tfds.features.Scalar(dtype=np.float32, doc="years; a range's midpoint; -1 unknown"),
          "age_min": tfds.features.Scalar(dtype=np.float32, doc="a range's low end (= age when exact); -1 unknown"),
          "age_max": tfds.features.Scalar(dtype=np.float32, doc="a range's high end (= age when exact); -1 unknown"),
          "age_std": tfds.features.Scalar(dtype=np.float32, doc="an apparent age's std; 0 none"),
          "gender": tfds.features.Scalar(dtype=np.int32, doc="0 male, 1 female, -1 unknown"),
          "race": tfds.features.Scalar(dtype=np.int32, doc="UTKFace's 0-4, -1 unknown"),
          "file_name": text(doc="the manifest's path"),
          "sha256": text(doc="sha256 of the original file's bytes"),
          "subject": text(),
          "group": text(),
          "source": text(),
        }
      ),
      supervised_keys=None,
      metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    cfg = self.builder_config
    path = Path(cfg.manifest)
    rows = manifest_lib.read(path)
    records, skips = collection.scan(path, rows, cfg.crop, self._workers)
    splits, metadata = splits_lib.build_plan(path, records, skips, cfg)
    metadata["crop"] = cfg.crop
    metadata["partial_labels"] = any(r.labels.partial for r in records)
    self.info.metadata.update(metadata)
    return {k: self._generate_examples(v) for k, v in splits.items()}

  def _generate_examples(self, records):
    faces = collection.faces(records, self.builder_config.image_size, self._workers)
    for r, image in zip(records, faces, strict=True):
      yield r.file_name, examples.example(r, image, manifest=True)
