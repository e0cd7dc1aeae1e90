"""TFDS's shuffle buffer spilling to local files without TensorFlow.

TFDS orders a split's examples by key hash before writing them. Past
``MAX_MEM_BUFFER_SIZE`` bytes it spills them to 1,000 bucket files, written
through ``tf.io.gfile``, i.e. TensorFlow, which jaxface does not install: so a
split had to fit in memory (``full`` at 224 px: 2.6 GB). Here the buckets are
written with Python's own files, in the same format, so a build's memory stays
flat at any size. The order written is the same either way: sorted by key hash.
"""

from __future__ import annotations

import os
import resource
import struct

from tensorflow_datasets.core import shuffle as tfds_shuffle

MEMORY_BUDGET = 64 << 20  # bytes of serialised examples held before spilling


class _Bucket(tfds_shuffle._Bucket):
  def add(self, key, data: bytes):
    if not self._fobj:
      os.makedirs(os.path.dirname(self._path), exist_ok=True)
      self._fobj = open(self._path, "wb")  # noqa: SIM115 -- held open across adds, closed by flush()
    self._fobj.write(tfds_shuffle._hkey_to_bytes(key))
    self._fobj.write(struct.pack("=Q", len(data)))
    self._fobj.write(data)
    self._length += 1
    self._size += len(data)

  def flush(self):
    if self._fobj:
      self._fobj.close()
      self._fobj = None

  def read_values(self):
    self.flush()
    if not os.path.exists(self._path):
      return
    with open(self._path, "rb") as f:
      while head := f.read(tfds_shuffle.HKEY_SIZE_BYTES):
        (size,) = struct.unpack("=Q", f.read(8))
        yield tfds_shuffle._read_hkey(head), f.read(size)

  def del_file(self):
    if os.path.exists(self._path):
      os.remove(self._path)


# The private pieces of tensorflow_datasets.core.shuffle this module stands on; a TFDS that moved one is named at
# install(), not met as an AttributeError half-way through a build.
PRIVATE = ("_Bucket", "_hkey_to_bytes", "_read_hkey", "HKEY_SIZE_BYTES", "BUCKETS_NUMBER", "MAX_MEM_BUFFER_SIZE")


def install() -> None:
  """Makes TFDS spill to Python files past MEMORY_BUDGET (and lets this process hold its 1,000 bucket files open)."""
  missing = [name for name in PRIVATE if not hasattr(tfds_shuffle, name)]
  if missing:
    import tensorflow_datasets as tfds

    raise RuntimeError(
      f"tensorflow-datasets {tfds.__version__} has no shuffle.{', shuffle.'.join(missing)}, which jaxface's "
      "spilling (jaxface/data/tfds_spill.py) replaces; use the version in constraints.txt"
    )
  soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
  want = tfds_shuffle.BUCKETS_NUMBER + 256
  if soft != resource.RLIM_INFINITY and soft < want:
    resource.setrlimit(resource.RLIMIT_NOFILE, (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))
  tfds_shuffle._Bucket = _Bucket
  tfds_shuffle.MAX_MEM_BUFFER_SIZE = MEMORY_BUDGET
