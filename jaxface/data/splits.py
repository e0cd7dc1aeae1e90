"""Duplicate grouping and seeded, stratified splits.

Rules (documented in the README, fixed by tests):
- Byte-identical files (same sha256) form a duplicate group. A group whose
  files agree on age and gender keeps its first file (by name) as the one
  example; the other copies are listed as dropped duplicates. A group whose
  files disagree on age or gender is dropped whole: the true label is unknown,
  and keeping any copy would train or test on a guess. Race that disagrees
  becomes unknown (-1). So every content hash occurs at most once, in one split.
- Strata are age band x gender. Within a stratum, examples are ordered by
  sha256(f"{seed}:{content hash}"), which depends only on the image bytes and
  the seed, not on file order or on the other files.
- Split sizes are allocated to strata in proportion to their sizes (largest
  remainder), so totals are exact and each split mirrors the whole.
"""

from __future__ import annotations

import collections
import hashlib
import math
from collections.abc import Sequence

from jaxface.data import labels as labels_lib
from jaxface.data.source import Record


def deduplicate(records: Sequence[Record]) -> tuple[list[Record], dict]:
  """One record per content hash, and a report of the duplicate groups."""
  groups = collections.defaultdict(list)
  for r in records:
    groups[r.sha256].append(r)
  unique, dropped_copies, conflicting = [], [], []
  for group in groups.values():
    group.sort(key=lambda r: r.file_name)
    first = group[0]
    if len(group) == 1:
      unique.append(first)
      continue
    if len({(r.labels.age, r.labels.gender) for r in group}) > 1:
      conflicting.append([r.file_name for r in group])
      continue
    if len({r.labels.race for r in group}) > 1:
      first = Record(
        first.file_name,
        first.sha256,
        labels_lib.Labels(first.labels.age, first.labels.gender, labels_lib.UNKNOWN_RACE),
        first.data,
      )
    unique.append(first)
    dropped_copies.append({"kept": first.file_name, "dropped": [r.file_name for r in group[1:]]})
  unique.sort(key=lambda r: r.file_name)
  report = {
    "groups": len(dropped_copies) + len(conflicting),
    "files_in_groups": sum(len(d["dropped"]) + 1 for d in dropped_copies) + sum(map(len, conflicting)),
    "policy": "agreeing labels: keep the first copy by name; conflicting age or gender: drop the whole group",
    "kept_one_copy": dropped_copies,
    "dropped_conflicting_labels": conflicting,
  }
  return unique, report


def stratum(r: Record) -> tuple[int, int]:
  return labels_lib.age_band(r.labels.age), r.labels.gender


def _order_key(seed: int, r: Record) -> str:
  return hashlib.sha256(f"{seed}:{r.sha256}".encode()).hexdigest()


def _allocate(total: int, sizes: dict) -> dict:
  """Split ``total`` over keys in proportion to ``sizes``, exactly, by largest remainder."""
  n = sum(sizes.values())
  if total > n:
    raise ValueError(f"cannot draw {total} examples from {n}")
  quotas = {k: total * s / n for k, s in sizes.items()}
  counts = {k: math.floor(q) for k, q in quotas.items()}
  short = total - sum(counts.values())
  for k in sorted(quotas, key=lambda k: (counts[k] - quotas[k], k))[:short]:
    counts[k] += 1
  return counts


def stratified_split(records: Sequence[Record], sizes: dict[str, int], seed: int) -> dict[str, list[Record]]:
  """Draws ``sizes[split]`` records per split, in the order given, stratified by age band x gender.

  Records not drawn by any split are left out; make the sizes add up to
  ``len(records)`` to use them all.
  """
  if sum(sizes.values()) > len(records):
    raise ValueError(f"split sizes {sizes} add up to more than the {len(records)} usable examples")
  strata = collections.defaultdict(list)
  for r in records:
    strata[stratum(r)].append(r)
  for members in strata.values():
    members.sort(key=lambda r: _order_key(seed, r))
  out = {}
  for split, size in sizes.items():
    counts = _allocate(size, {k: len(v) for k, v in strata.items()})
    out[split] = sorted((r for k, v in strata.items() for r in v[: counts[k]]), key=lambda r: r.file_name)
    strata = {k: v[counts[k] :] for k, v in strata.items()}
  return out


def fraction_sizes(n: int, fractions: dict[str, float]) -> dict[str, int]:
  """Exact split sizes for fractions of ``n``; the last split takes the rounding."""
  sizes = {k: round(n * f) for k, f in list(fractions.items())[:-1]}
  sizes[list(fractions)[-1]] = n - sum(sizes.values())
  return sizes


def digest(records: Sequence[Record]) -> str:
  """sha256 over a split's sorted content hashes: names the exact set of images in it."""
  return hashlib.sha256("\n".join(sorted(r.sha256 for r in records)).encode()).hexdigest()


def summarize(records: Sequence[Record]) -> dict:
  """Counts of a split: examples, genders, age bands."""
  genders = collections.Counter(r.labels.gender for r in records)
  bands = collections.Counter(labels_lib.age_band(r.labels.age) for r in records)
  return {
    "examples": len(records),
    "digest": digest(records),
    "gender": {name: genders.get(i, 0) for i, name in enumerate(labels_lib.GENDERS)},
    "age_band": {name: bands.get(i, 0) for i, name in enumerate(labels_lib.AGE_BAND_NAMES)},
  }
