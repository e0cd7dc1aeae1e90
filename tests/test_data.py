"""The utk_face builder and the grain pipeline on a tiny generated archive."""

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest

from jaxface.data import pipeline, prepare, source, splits
from jaxface.data.utk_face import Builder, UtkFaceConfig


def _pixels_hash(img) -> str:
  return hashlib.sha256(np.ascontiguousarray(img).tobytes()).hexdigest()


def test_scan_skips_and_reports(fake_archive):
  path, expect = fake_archive
  records, skips = source.scan(path)
  assert {s.file_name for s in skips} == expect["skipped"]
  reasons = {s.file_name: s.reason for s in skips}
  assert "empty" in reasons["22_0_0_20170110000000005.jpg.chip.jpg"]
  assert "decode" in reasons["23_1_0_20170110000000006.jpg.chip.jpg"]
  assert "file name" in reasons["notes.txt"]
  by_name = {r.file_name: r for r in records}
  for name, (age, gender, race) in expect["malformed"].items():
    assert (by_name[name].labels.age, by_name[name].labels.gender, by_name[name].labels.race) == (age, gender, race)


def test_folder_and_archive_read_the_same(tmp_path, fake_archive):
  import fake_utkface

  fake_utkface.write_folder(tmp_path / "UTKFace")
  a, _ = source.scan(fake_archive[0])
  b, _ = source.scan(source.locate(tmp_path))  # the parent folder holds UTKFace/
  assert [(r.file_name, r.sha256) for r in a] == [(r.file_name, r.sha256) for r in b]


def test_missing_data_error_says_how(tmp_path, monkeypatch):
  monkeypatch.delenv("JAXFACE_DATA", raising=False)
  with pytest.raises(source.DataNotFoundError, match="JAXFACE_DATA") as e:
    prepare.prepare(None, "subset5000", tfds_dir=tmp_path)
  assert "UTKFace.tar.gz" in str(e.value) and "--data" in str(e.value)
  with pytest.raises(source.DataNotFoundError, match="no such file"):
    source.locate(tmp_path / "nope.tar.gz")


def test_deduplicate_policy(fake_archive):
  path, expect = fake_archive
  records, _ = source.scan(path)
  unique, report = splits.deduplicate(records)
  names = {r.file_name for r in unique}
  assert len(unique) == expect["usable"]
  assert not names & expect["conflicting"]
  assert expect["dropped_copy"] not in names
  assert report["groups"] == 2 and report["files_in_groups"] == 4
  assert sorted(report["dropped_conflicting_labels"][0]) == sorted(expect["conflicting"])
  assert len({r.sha256 for r in unique}) == len(unique)


def test_stratified_split_exact_and_seeded(fake_archive):
  records, _ = source.scan(fake_archive[0])
  unique, _ = splits.deduplicate(records)
  a = splits.stratified_split(unique, {"x": 20, "y": 10}, seed=0)
  assert len(a["x"]) == 20 and len(a["y"]) == 10
  assert not {r.sha256 for r in a["x"]} & {r.sha256 for r in a["y"]}
  # Every stratum (age band x gender) holds 3+ examples, so a draw of 20 of 69 reaches most of them.
  assert len({splits.stratum(r) for r in a["x"]}) >= 10
  again = splits.stratified_split(list(reversed(unique)), {"x": 20, "y": 10}, seed=0)
  assert [r.file_name for r in again["x"]] == [r.file_name for r in a["x"]]
  other = splits.stratified_split(unique, {"x": 20, "y": 10}, seed=1)
  assert [r.file_name for r in other["x"]] != [r.file_name for r in a["x"]]
  with pytest.raises(ValueError, match="more than"):
    splits.stratified_split(unique, {"x": 100}, seed=0)


def test_full_build_labels_and_splits(fake_full):
  b, expect = fake_full
  meta = prepare.summary(b)
  assert meta["usable_unique"] == expect["usable"]
  assert {s["file_name"] for s in meta["skipped"]["files"]} == expect["skipped"]
  sizes = {k: v["examples"] for k, v in meta["splits"].items()}
  assert sizes == {"test": 7, "validation": 7, "train": 55}
  hashes = {}
  for split in sizes:
    src = b.as_data_source(split)
    assert len(src) == sizes[split]
    hashes[split] = set()
    for ex in src:
      assert ex["image"].shape == (32, 32, 3) and ex["image"].dtype == np.uint8
      name = ex["file_name"].decode()
      assert source.labels_lib.parse_file_name(name).age == ex["age"]
      if name in expect["malformed"]:
        assert (ex["age"], ex["gender"], ex["race"]) == expect["malformed"][name]
      hashes[split].add(ex["sha256"])
  assert sum(map(len, hashes.values())) == expect["usable"]  # no hash twice, in or across splits
  assert not (hashes["train"] & hashes["test"]) and not (hashes["train"] & hashes["validation"])


def test_custom_subset_config(tmp_path, fake_archive):
  cfg = UtkFaceConfig(name="tiny", image_size=16, subset=30, split_sizes=(("train", 24), ("validation", 6)))
  b = Builder(config=cfg, data_dir=str(tmp_path), source=str(fake_archive[0]))
  b.download_and_prepare(file_format="array_record")
  assert len(b.as_data_source("train")) == 24 and len(b.as_data_source("validation")) == 6
  assert b.as_data_source("train")[0]["image"].shape == (16, 16, 3)


def test_a_split_larger_than_tfds_in_memory_shuffle_builds_without_tensorflow(tmp_path, fake_archive, monkeypatch):
  """Past its memory limit TFDS's shuffler writes buckets through tf.io.gfile (TensorFlow); prepare has it write them
  with Python's files (data.tfds_spill), in the same order, so memory stays flat (full at 224 px once failed so). The
  limit is made tiny here to reach it; the buckets are gone afterwards."""
  from jaxface.data import tfds_spill

  small = prepare.prepare(str(fake_archive[0]), "full", 16, tmp_path / "a")
  monkeypatch.setattr(tfds_spill, "MEMORY_BUDGET", 1000)
  added = []
  add = tfds_spill._Bucket.add
  monkeypatch.setattr(tfds_spill._Bucket, "add", lambda self, key, data: added.append(key) or add(self, key, data))
  spilled = prepare.prepare(str(fake_archive[0]), "full", 16, tmp_path / "b")
  a, b = small.as_data_source("train"), spilled.as_data_source("train")
  assert len(a) == len(b) and [a[i]["file_name"] for i in range(len(a))] == [b[i]["file_name"] for i in range(len(b))]
  assert all(np.array_equal(a[i]["image"], b[i]["image"]) for i in range(len(a)))
  assert len(added) == len(spilled.as_data_source("train")) + len(spilled.as_data_source("validation")) + len(
    spilled.as_data_source("test")
  )
  assert not list((tmp_path / "b").rglob("bucket_*.tmp"))


def test_train_epoch_yields_each_example_once(fake_full):
  b, _ = fake_full
  src = b.as_data_source("train")  # 55 examples
  ds = pipeline.train_dataset(src, batch_size=5, seed=3, num_epochs=2)
  spe = pipeline.steps_per_epoch(len(src), 5)
  assert spe == 11 and len(ds) == 22
  everything = {_pixels_hash(ex["image"]) for ex in src}
  epochs = []
  for e in range(2):
    seen = [_pixels_hash(img) for i in range(e * spe, (e + 1) * spe) for img in ds[i]["image"]]
    assert len(seen) == len(set(seen)) == 55
    assert set(seen) == everything
    epochs.append(seen)
  assert epochs[0] != epochs[1], "each epoch must be shuffled anew"
  batch = ds[0]
  assert set(batch) == {"image", "age", "gender"} and batch["image"].shape == (5, 32, 32, 3)


def test_iterator_state_resumes(fake_full):
  b, _ = fake_full
  ds = pipeline.train_dataset(b.as_data_source("train"), batch_size=4, seed=0, num_epochs=3)
  it = pipeline.iterate(ds)
  for _ in range(7):
    next(it)
  state = it.get_state()
  want = [next(it)["age"] for _ in range(3)]
  it2 = pipeline.iterate(ds)
  it2.set_state(json.loads(json.dumps(state)))  # state survives a JSON round trip
  got = [next(it2)["age"] for _ in range(3)]
  np.testing.assert_array_equal(np.stack(got), np.stack(want))


def test_eval_yields_every_example_once_with_mask(fake_full):
  b, _ = fake_full
  src = b.as_data_source("validation")  # 7 examples, batches of 3: 3 + 3 + 1 padded to 3
  batches = list(pipeline.eval_dataset(src, batch_size=3))
  assert len(batches) == 3
  assert all(x["image"].shape == (3, 32, 32, 3) for x in batches)
  assert [int(x["mask"].sum()) for x in batches] == [3, 3, 1]
  names = [n for x in batches for n, m in zip(x["file_name"], x["mask"], strict=True) if m]
  assert sorted(names) == sorted(ex["file_name"] for ex in src)


def test_sharded_eval_covers_everything(fake_full):
  b, _ = fake_full
  src = b.as_data_source("train")
  names = []
  for host in range(3):
    for x in pipeline.eval_dataset(src, batch_size=4, shard_index=host, shard_count=3):
      names += [n for n, m in zip(x["file_name"], x["mask"], strict=True) if m]
  assert sorted(names) == sorted(ex["file_name"] for ex in src)


def test_data_cli_prints_summary_and_never_imports_tensorflow(tmp_path, fake_archive):
  code = (
    "import sys; data, tfds_dir = sys.argv[1:];"
    "from jaxface.data import __main__ as m;"
    "rc = m.main(['--data', data, '--config', 'full', '--image-size', '24', '--tfds-dir', tfds_dir]);"
    "from jaxface.data import prepare, pipeline; b = prepare.open_data(None, 'full', 24, tfds_dir).builder;"
    "next(iter(pipeline.eval_dataset(b.as_data_source('test'), batch_size=2)));"
    "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'; sys.exit(rc)"
  )
  out = subprocess.run(
    [sys.executable, "-c", code, str(fake_archive[0]), str(tmp_path)], capture_output=True, text=True
  )
  assert out.returncode == 0, out.stderr[-3000:]
  summary = json.loads(out.stdout)
  assert summary["splits"]["train"]["examples"] == 55
  assert summary["skipped"]["count"] == 3
  assert summary["duplicates"]["groups"] == 2
  assert "notes.txt" in out.stderr  # skipped files are named in a warning too
  # A second call reuses the prepared dataset.
  out2 = subprocess.run(
    [sys.executable, "-c", code, str(fake_archive[0]), str(tmp_path)], capture_output=True, text=True
  )
  again = json.loads(out2.stdout)
  assert out2.returncode == 0 and "Preparing" not in out2.stderr
  assert {k: v for k, v in again.items() if k != "run"} == {k: v for k, v in summary.items() if k != "run"}
  assert summary["run"]["git_commit"] and summary["run"]["date"] and summary["run"]["wall_s"] >= 0


def test_preparing_the_same_dataset_at_once_is_safe(tmp_path, fake_archive):
  """Two processes prepare one dataset together: one builds, the other waits for the lock and reuses it."""
  code = "import sys; from jaxface.data import prepare; b = prepare.prepare(sys.argv[1], 'full', 24, sys.argv[2]); print(len(b.as_data_source('train')))"
  procs = [
    subprocess.Popen(
      [sys.executable, "-c", code, str(fake_archive[0]), str(tmp_path)],
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
    )
    for _ in range(2)
  ]
  outs = [p.communicate(timeout=300) for p in procs]
  for p, (_, err) in zip(procs, outs, strict=True):
    assert p.returncode == 0, err[-2000:]
  sizes = [out.strip().splitlines()[-1] for out, _ in outs]
  assert sizes[0] == sizes[1] and int(sizes[0]) > 0
  assert sum("Downloading and preparing dataset" in out for out, _ in outs) == 1  # TFDS built it once


def test_the_tfds_spill_names_a_tfds_that_moved_its_private_pieces(monkeypatch):
  from tensorflow_datasets.core import shuffle as tfds_shuffle

  from jaxface.data import tfds_spill

  monkeypatch.delattr(tfds_shuffle, "_read_hkey")
  with pytest.raises(RuntimeError, match=r"has no shuffle._read_hkey, which jaxface's spilling"):
    tfds_spill.install()
