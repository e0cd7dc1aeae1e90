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
- A manifest's rows (``data.manifest``): unknown ages and genders form strata
  of their own. Rows with a ``split`` keep it. When any row names its
  ``subject``, whole persons are drawn (``grouped_split``): no person is in two
  splits, and the sizes are met to within one person's images per stratum.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import math
from collections.abc import Sequence
from pathlib import Path

from jaxface.data import labels as labels_lib
from jaxface.data.source import DataError, Record, Skip

# The split configs a collection is built in (TFDS builder configs of utk_face and face_manifest).
KINDS = {
  # The classic experiment: 5,000 images stratified by age band x gender, 80/20.
  "subset5000": dict(subset=5000, split_sizes=(("train", 4000), ("validation", 1000)), seed=0),
  # Every usable image, 80/10/10. Test is drawn first so that its draw depends only
  # on the usable images and the seed: it is frozen (a test pins its digest).
  "full": dict(subset=None, split_sizes=(("test", 0.1), ("validation", 0.1), ("train", 0.8)), seed=0),
}
DATASETS = tuple(KINDS)


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
      first = dataclasses.replace(first, labels=dataclasses.replace(first.labels, race=labels_lib.UNKNOWN_RACE))
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
  """Age band x gender; an unknown age or gender is a band or gender of its own (-1)."""
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


def grouped_split(records: Sequence[Record], sizes: dict[str, int], seed: int) -> dict[str, list[Record]]:
  """As ``stratified_split``, drawing whole persons (``Record.subject``; a record without one is a person alone).

  A person's stratum is that of their first image by content hash. Within a stratum, persons are ordered by
  sha256(seed:subject), and each split takes persons until its share of the stratum's images is reached.
  """
  persons = collections.defaultdict(list)
  for r in records:
    persons[r.subject or f"\0{r.sha256}"].append(r)
  strata = collections.defaultdict(list)
  for subject, members in persons.items():
    members.sort(key=lambda r: r.sha256)
    strata[stratum(members[0])].append((hashlib.sha256(f"{seed}:{subject}".encode()).hexdigest(), members))
  for units in strata.values():
    units.sort(key=lambda u: u[0])
  out = {}
  everything = sum(sizes.values()) == len(records)
  for i, (split, size) in enumerate(sizes.items()):
    left = {k: sum(len(m) for _, m in v) for k, v in strata.items()}
    # Whole persons overshoot a quota by a part of one; the last split of a full partition takes what is left.
    size = sum(left.values()) if everything and i == len(sizes) - 1 else min(size, sum(left.values()))
    counts = _allocate(size, left)
    taken = []
    for k, units in strata.items():
      n = 0
      while units and n < counts[k]:
        n += len(units[0][1])
        taken.extend(units.pop(0)[1])
    out[split] = sorted(taken, key=lambda r: r.file_name)
  return out


def plan(records: Sequence[Record], *, subset: int | None, split_sizes: dict, seed: int) -> dict[str, list[Record]]:
  """The splits of a collection's unique records, as a builder config asks (``split_sizes``: counts, or fractions
  adding to 1). Records that name a split keep it; the others are drawn, by person when any names one."""
  given = collections.defaultdict(list)
  for r in records:
    if r.split:
      given[r.split].append(r)
  pool = [r for r in records if not r.split]
  if given and subset is not None:
    raise ValueError(
      f"a subset of {subset} cannot be drawn from a collection whose rows name their splits; use the full config"
    )
  by_person = any(r.subject for r in records)
  if subset is not None:
    pool = (grouped_split if by_person else stratified_split)(pool, {"subset": subset}, seed)["subset"]
  out = {}
  if pool:
    sizes = dict(split_sizes)
    if all(isinstance(v, float) for v in sizes.values()):
      sizes = fraction_sizes(len(pool), sizes)
    out = (grouped_split if by_person else stratified_split)(pool, sizes, seed)
  for split, members in given.items():
    out[split] = sorted([*out.get(split, []), *members], key=lambda r: r.file_name)
  if by_person:
    seen = {}
    for split, members in out.items():
      for r in members:
        if r.subject and seen.setdefault(r.subject, split) != split:
          raise ValueError(
            f"subject {r.subject!r} is in the {seen[r.subject]} and {split} splits (given by the split column)"
          )
  return {k: v for k, v in out.items() if v}


def build_plan(path, records: Sequence[Record], skips: Sequence[Skip], cfg) -> tuple[dict[str, list[Record]], dict]:
  """A builder's splits of the records read from ``path``, and the metadata that reports them (``prepare.summary``)."""
  unique, duplicates = deduplicate(records)
  if not unique:
    raise DataError(
      f"{path}: no usable images ({len(skips)} files skipped, {len(records)} dropped as conflicting copies)"
    )
  if cfg.subset is not None and len(unique) < cfg.subset:
    raise DataError(
      f"{path}: subset{cfg.subset} needs {cfg.subset} usable images, found {len(unique)}; use --dataset full"
    )
  try:
    splits = plan(unique, subset=cfg.subset, split_sizes=dict(cfg.split_sizes), seed=cfg.seed)
  except ValueError as e:
    raise DataError(f"{path}: {e}") from None
  metadata = {
    "source": str(Path(path).resolve()),
    "files_read": len(records) + len(skips),
    "usable_unique": len(unique),
    "skipped": [dataclasses.asdict(s) for s in skips],
    "duplicates": duplicates,
    "splits": {k: summarize(v) for k, v in splits.items()},
  }
  return splits, metadata


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
  out = {
    "examples": len(records),
    "digest": digest(records),
    "gender": {name: genders.get(i, 0) for i, name in enumerate(labels_lib.GENDERS)},
    "age_band": {name: bands.get(i, 0) for i, name in enumerate(labels_lib.AGE_BAND_NAMES)},
  }
  # Only where there are any, so that UTKFace's summaries (and the digests pinned by tests) read as before.
  if genders.get(-1):
    out["gender"]["unknown"] = genders[-1]
  if bands.get(-1):
    out["age_band"]["unknown"] = bands[-1]
  ranges = sum(1 for r in records if r.labels.age_min is not None and r.labels.age_min != r.labels.age_max)
  if ranges:
    out["age_ranges"] = ranges
  subjects = {r.subject for r in records if r.subject}
  if subjects:
    out["subjects"] = len(subjects)
  return out
