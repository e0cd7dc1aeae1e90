"""On the real UTKFace archive ($JAXFACE_DATA); skipped, with the reason, where it is absent."""

import pytest

from jaxface.data import labels, prepare, source, splits
from jaxface.data.utk_face import make_config

# The full config's test split of ../shared's UTKFace.tar.gz (21,417 files). It is
# published and must never change: results on it stay comparable across versions.
FULL_TEST_DIGEST = "c033828b2d43c88a94d1abdb20b9c545fa0f5d1279a5a46c6cf43506d751ce6b"


@pytest.fixture(scope="module")
def real_scan(real_data):
  records, skips = source.scan(source.locate(real_data))
  if len(records) + len(skips) != 21417:
    pytest.skip(f"{real_data} is not ../shared's copy (21,417 files); the frozen digest is for that copy")
  return records, skips


def test_real_malformed_names_parse(real_scan):
  records, skips = real_scan
  assert skips == []
  names = {r.file_name for r in records}
  for name in [
    "24_0_1_20170116220224657 .jpg.chip.jpg",
    "55_0_0_20170116232725357jpg.chip.jpg",
    "39_1_20170116174525125.jpg.chip.jpg",
  ]:
    assert name in names


def test_real_full_test_split_is_frozen(real_scan):
  records, _ = real_scan
  unique, report = splits.deduplicate(records)
  assert report["groups"] == 375 and report["files_in_groups"] == 765
  cfg = make_config("full")
  got = splits.stratified_split(unique, splits.fraction_sizes(len(unique), dict(cfg.split_sizes)), cfg.seed)
  assert {k: len(v) for k, v in got.items()} == {"test": 2080, "validation": 2080, "train": 16643}
  assert splits.digest(got["test"]) == FULL_TEST_DIGEST


@pytest.mark.slow
def test_real_subset5000(real_data, tmp_path_factory):
  # 32 px: what this checks (the splits' counts, strata and disjointness) does not depend on the size.
  b = prepare.prepare(real_data, "subset5000", 32, tfds_dir=tmp_path_factory.mktemp("tfds_real"))
  meta = b.info.metadata
  assert {k: v["examples"] for k, v in meta["splits"].items()} == {"train": 4000, "validation": 1000}
  hashes = {}
  for split in ("train", "validation"):
    src = b.as_data_source(split)
    assert len(src) == meta["splits"][split]["examples"]
    hashes[split] = {ex["sha256"] for ex in src}
    assert len(hashes[split]) == len(src)
    counts = meta["splits"][split]
    assert all(counts["gender"][g] > 0 for g in labels.GENDERS)
    assert all(counts["age_band"][a] > 0 for a in labels.AGE_BAND_NAMES)
  assert not hashes["train"] & hashes["validation"]
