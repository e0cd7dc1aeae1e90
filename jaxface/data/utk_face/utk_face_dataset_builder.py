"""utk_face: UTKFace aligned & cropped faces, with labels parsed from file names.

Stored as plain tensors in array_record files, so it is built and read without
TensorFlow (``tfds.features.Image`` would need TensorFlow to encode).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from jaxface.data import collection, examples
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


DATASETS = splits_lib.DATASETS


def make_config(kind: str, image_size: int = DEFAULT_IMAGE_SIZE) -> UtkFaceConfig:
  """The config ``kind`` (subset5000 or full) at ``image_size`` pixels square."""
  if kind not in splits_lib.KINDS:
    raise ValueError(f"unknown UTKFace config {kind!r}; choose one of {sorted(splits_lib.KINDS)}")
  name = kind if image_size == DEFAULT_IMAGE_SIZE else f"{kind}_{image_size}px"
  return UtkFaceConfig(
    name=name, description=f"{kind} at {image_size}x{image_size}", image_size=image_size, **splits_lib.KINDS[kind]
  )


class Builder(tfds.core.GeneratorBasedBuilder):
  """UTKFace faces with age, gender and race."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = [make_config("subset5000"), make_config("full")]
  MANUAL_DOWNLOAD_INSTRUCTIONS = source_lib.HOW_TO_GET

  def __init__(self, *, source: str | None = None, **kwargs):
    """``source``: the archive or folder to build from (``prepare`` sets it before a build when it was not given);
    default: TFDS's manual folder."""
    super().__init__(**kwargs)
    self.source = source

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
    path = source_lib.locate(self.source or dl_manager.manual_dir)
    records, skips = source_lib.scan(path)
    if not records:
      raise source_lib.DataError(
        f"{path}: no usable images ({len(skips)} files skipped; UTKFace names look like 25_0_1_<date>.jpg.chip.jpg)"
      )
    splits, metadata = splits_lib.build_plan(path, records, skips, self.builder_config)
    self.info.metadata.update(metadata)
    return {k: self._generate_examples(v) for k, v in splits.items()}

  def _generate_examples(self, records):
    for r, image in zip(records, collection.faces(records, self.builder_config.image_size), strict=True):
      yield r.file_name, examples.example(r, image)
