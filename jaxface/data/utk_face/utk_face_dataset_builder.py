"""utk_face: UTKFace aligned & cropped faces, with labels parsed from file names.

Stored as plain tensors in array_record files, so it is built and read without
TensorFlow (``tfds.features.Image`` would need TensorFlow to encode).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from jaxface.data import source as source_lib
from jaxface.data import splits as splits_lib

_CITATION = """\
@inproceedings{zhifei2017cvpr,
  title={Age Progression/Regression by Conditional Adversarial Autoencoder},
  author={Zhang, Zhifei and Song, Yang and Qi, Hairong},
  booktitle={IEEE Conference on Computer Vision and Pattern Recognition (CVPR)},
  year={2017}
}"""

DEFAULT_IMAGE_SIZE = 128


@dataclasses.dataclass(kw_only=True)
class UtkFaceConfig(tfds.core.BuilderConfig):
  """Which images go into which split, and at what resolution they are stored.

  subset: examples drawn for the subset (None: every usable image).
  split_sizes: examples per split, or fractions of the pool when they add to 1.
  seed: orders each stratum; changing it changes the splits.
  """

  image_size: int = DEFAULT_IMAGE_SIZE
  subset: int | None = None
  split_sizes: tuple[tuple[str, float], ...] = ()
  seed: int = 0


_KINDS = {
  # The classic experiment: 5,000 images stratified by age band x gender, 80/20.
  "subset5000": dict(subset=5000, split_sizes=(("train", 4000), ("validation", 1000)), seed=0),
  # Every usable image, 80/10/10. Test is drawn first so that its draw depends only
  # on the usable images and the seed: it is frozen (a test pins its digest).
  "full": dict(subset=None, split_sizes=(("test", 0.1), ("validation", 0.1), ("train", 0.8)), seed=0),
}


DATASETS = tuple(_KINDS)


def make_config(kind: str, image_size: int = DEFAULT_IMAGE_SIZE) -> UtkFaceConfig:
  """The config ``kind`` (subset5000 or full) at ``image_size`` pixels square."""
  if kind not in _KINDS:
    raise ValueError(f"unknown UTKFace config {kind!r}; choose one of {sorted(_KINDS)}")
  name = kind if image_size == DEFAULT_IMAGE_SIZE else f"{kind}_{image_size}px"
  return UtkFaceConfig(
    name=name, description=f"{kind} at {image_size}x{image_size}", image_size=image_size, **_KINDS[kind]
  )


class Builder(tfds.core.GeneratorBasedBuilder):
  """UTKFace faces with age, gender and race."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = [make_config("subset5000"), make_config("full")]
  MANUAL_DOWNLOAD_INSTRUCTIONS = source_lib.HOW_TO_GET

  def __init__(self, *, source: str | None = None, **kwargs):
    """``source``: the archive or folder to build from; default: TFDS's manual folder."""
    super().__init__(**kwargs)
    self._source = source

  def _info(self) -> tfds.core.DatasetInfo:
    s = self.builder_config.image_size
    return self.dataset_info_from_configs(
      features=tfds.features.FeaturesDict(
        {
          "image": tfds.features.Tensor(shape=(s, s, 3), dtype=np.uint8),
          "age": tfds.features.Scalar(dtype=np.int32),
          "gender": tfds.features.Scalar(dtype=np.int32, doc="0 male, 1 female"),
          "race": tfds.features.Scalar(dtype=np.int32, doc="0 White, 1 Black, 2 Asian, 3 Indian, 4 Others, -1 unknown"),
          "file_name": tfds.features.Text(),
          "sha256": tfds.features.Text(doc="sha256 of the original file's bytes"),
        }
      ),
      supervised_keys=None,
      homepage="https://susanqq.github.io/UTKFace/",
      citation=_CITATION,
      metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    path = source_lib.locate(self._source or dl_manager.manual_dir)
    records, skips = source_lib.scan(path)
    unique, duplicates = splits_lib.deduplicate(records)
    cfg = self.builder_config
    if not unique:
      raise source_lib.DataError(
        f"{path}: no usable images ({len(skips)} files skipped; UTKFace names look like 25_0_1_<date>.jpg.chip.jpg)"
      )
    if cfg.subset is not None and len(unique) < cfg.subset:
      raise source_lib.DataError(
        f"{path}: subset{cfg.subset} needs {cfg.subset} usable images, found {len(unique)}; use --dataset full"
      )
    pool = unique
    if cfg.subset is not None:
      pool = splits_lib.stratified_split(unique, {"subset": cfg.subset}, cfg.seed)["subset"]
    sizes = dict(cfg.split_sizes)
    if all(isinstance(v, float) for v in sizes.values()):
      sizes = splits_lib.fraction_sizes(len(pool), sizes)
    splits = splits_lib.stratified_split(pool, sizes, cfg.seed)
    self.info.metadata.update(
      {
        "source": str(path.resolve()),
        "files_read": len(records) + len(skips),
        "usable_unique": len(unique),
        "skipped": [dataclasses.asdict(s) for s in skips],
        "duplicates": duplicates,
        "splits": {k: splits_lib.summarize(v) for k, v in splits.items()},
      }
    )
    return {k: self._generate_examples(v) for k, v in splits.items()}

  def _generate_examples(self, records):
    size = self.builder_config.image_size
    for r in records:
      yield (
        r.file_name,
        {
          "image": source_lib.decode(r.data, size),
          "age": r.labels.age,
          "gender": r.labels.gender,
          "race": r.labels.race,
          "file_name": r.file_name,
          "sha256": r.sha256,
        },
      )
