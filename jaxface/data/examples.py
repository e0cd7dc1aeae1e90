"""One example per record: what the TFDS builders write, and what ``evaluate --split all`` reads without a build."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jaxface.data import collection
from jaxface.data import source as source_lib


def example(record: source_lib.Record, image: np.ndarray, manifest: bool = False) -> dict:
  """The fields of ``utk_face``'s examples; with ``manifest``, also ``face_manifest``'s (the age range and spread,
  the subject, group and source)."""
  lab = record.labels
  out = {
    "image": image, "age": lab.age, "gender": lab.gender, "race": lab.race, "file_name": record.file_name,
    "sha256": record.sha256,
  }  # fmt: skip
  if manifest:
    out |= {
      "age_min": lab.age_min, "age_max": lab.age_max, "age_std": lab.age_std, "subject": record.subject,
      "group": record.group, "source": record.source,
    }  # fmt: skip
  return out


class ImageSource(Sequence):
  """Every usable image of a download or manifest, decoded (and cropped) on access at ``size``: the examples a
  build would write, for evaluating on a whole collection (``--split all``)."""

  def __init__(self, records: list[source_lib.Record], size: int, manifest: bool = False):
    self.records, self.size, self.manifest = records, size, manifest

  def __len__(self) -> int:
    return len(self.records)

  def __getitem__(self, i: int) -> dict:
    r = self.records[i]
    return example(r, collection.face_pixels(r, self.size), self.manifest)
