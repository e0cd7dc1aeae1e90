"""Bulk labelling on Ray Data, on a local Ray of 2 CPUs: the records equal predict's, an unreadable photo is an
error row, and a Crops worker killed mid-run is restarted by Ray with no photo lost or counted twice."""

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from conftest import real_photos
from PIL import Image

ray = pytest.importorskip("ray")
pq = pytest.importorskip("pyarrow.parquet")

from jaxface import predict  # noqa: E402
from jaxface.bulk import __main__ as bulk  # noqa: E402
from jaxface.bulk import inputs, job  # noqa: E402
from jaxface.data import manifest  # noqa: E402
from jaxface.inference import export  # noqa: E402
from jaxface.inference.records import DETECT_PHOTOS, FIELDS  # noqa: E402


def album(d: Path, n: int) -> Path:
  """``n`` 320x240 photos, each with one face (a UTKFace crop, or skimage's photos without JAXFACE_DATA) at 120 px,
  its place varied, and every fifth photo a plain one with no face."""
  d.mkdir(parents=True, exist_ok=True)
  faces = real_photos(8)
  for i in range(n):
    canvas = Image.new("RGB", (320, 240), (40 + 7 * i % 180, 90, 120))
    if i % 5:
      canvas.paste(faces[i % len(faces)].resize((120, 120)), (20 + 13 * i % 170, 10 + 11 * i % 100))
    canvas.save(d / f"photo{i:03d}.jpg", quality=92)
  return d


@pytest.fixture(scope="module")
def cluster():
  resources = job.start(num_cpus=2)
  yield resources
  ray.shutdown()


@pytest.fixture(scope="module")
def model(trained, tmp_path_factory):
  return export.export(trained, tmp_path_factory.mktemp("model") / "model.jaxface")


def _key(r):
  return (r["file"], -1 if r["face"] is None else r["face"])


def test_records_equal_predicts_and_a_broken_photo_is_an_error_row(cluster, model, tmp_path, capsys):
  photos = album(tmp_path / "photos", DETECT_PHOTOS + 3)  # two chunks
  (photos / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
  out = tmp_path / "records"
  assert bulk.main([str(photos), "--model", str(model), "--out", str(out)]) == 1  # 1: a photo failed
  assert "1 failed" in capsys.readouterr().err
  got = sorted(pq.read_table(out).to_pylist(), key=_key)
  assert pq.read_schema(next(out.glob("*.parquet"))).names == list(FIELDS)

  assert predict.main([str(photos), "--model", str(model), "--out", str(tmp_path / "p.jsonl")]) == 1
  want = sorted(({k: r.get(k) for k in FIELDS} for r in map(json.loads, open(tmp_path / "p.jsonl"))), key=_key)
  assert got == want  # the same photos grouped alike for the detector: the same numbers, to the last digit
  statuses = {r["file"]: r["status"] for r in got}
  assert statuses[str(photos / "broken.jpg")] == "error"
  assert sum(s == "ok" for s in statuses.values()) >= 3 and "no_face" in statuses.values()
  (broken,) = [r for r in got if r["status"] == "error"]
  assert "not a readable image" in broken["error"] and broken["age"] is None


def test_a_killed_crops_worker_is_retried_without_losing_or_repeating_a_photo(cluster, model, tmp_path):
  photos = album(tmp_path / "photos", 4 * DETECT_PHOTOS)  # 4 chunks: the kill lands in the first
  items = inputs.items([str(photos)])
  out, done = tmp_path / "records", {}
  size = 32  # the tiny model's
  runner = threading.Thread(
    target=lambda: done.setdefault("out", job.run(items, model, out, size=size, actors=job.plan(cluster, 1))),
  )  # fmt: skip
  runner.start()
  pid = _wait_for_worker("MapBatches(Crops)", timeout=120)
  time.sleep(1.0)  # into its first chunks: detection has started
  assert runner.is_alive(), "the run ended before its worker could be killed"
  os.kill(pid, signal.SIGKILL)
  took_over, end = set(), time.monotonic() + 300
  while runner.is_alive() and time.monotonic() < end:  # the workers that carry on
    took_over |= set(_workers("MapBatches(Crops)")) - {pid}
    runner.join(timeout=0.1)
  assert "out" in done, "the run did not finish after its worker was killed"
  assert took_over, "no new Crops worker took over"
  rows = pq.read_table(out).to_pylist()
  per_photo = {}
  for r in rows:
    per_photo.setdefault(r["file"], []).append(r["face"])
  assert sorted(per_photo) == sorted(it["file"] for it in items)  # none lost
  assert all(len(f) == len(set(f)) for f in per_photo.values())  # none counted twice
  assert sum(r["status"] == "ok" for r in rows) >= 10


def _workers(name: str) -> list[int]:
  """PIDs of the Ray workers whose process title names ``name`` (Ray sets it to the actor's class)."""
  pids = []
  for p in Path("/proc").iterdir():
    if p.name.isdigit():
      try:
        if name in (p / "cmdline").read_bytes().decode(errors="replace"):
          pids.append(int(p.name))
      except OSError:
        continue
  return pids


def _wait_for_worker(name: str, timeout: float) -> int:
  end = time.monotonic() + timeout
  while time.monotonic() < end:
    if pids := _workers(name):
      return pids[0]
    time.sleep(0.1)
  raise AssertionError(f"no {name} worker started in {timeout} s")


def test_inputs_globs_and_lists(tmp_path):
  photos = album(tmp_path / "photos", 3)
  (tmp_path / "list.txt").write_text("# a comment\nphotos/photo000.jpg\n\nphotos/missing.jpg\n")
  (tmp_path / "list.csv").write_text("path,age\nphotos/photo001.jpg,30\n")
  got = inputs.items([str(photos / "*.jpg"), str(tmp_path / "list.txt"), str(tmp_path / "list.csv"), "nowhere/*.png"])
  assert [Path(i["file"]).name for i in got] == [
    "photo000.jpg", "photo001.jpg", "photo002.jpg", "photo000.jpg", "missing.jpg", "photo001.jpg", "*.png"
  ]  # fmt: skip
  assert got[-1]["error"] == "the pattern matches no image" and all(i["error"] is None for i in got[:-1])
  assert all(Path(os.fsdecode(i["path"])).is_absolute() for i in got[:-1])
  (tmp_path / "bad.csv").write_text("file\nphotos/photo001.jpg\n")
  with pytest.raises(manifest.ManifestError, match=r"bad.csv, line 1: the header has no 'path' column"):
    inputs.items([str(tmp_path / "bad.csv")])


def test_cli_refuses_a_used_folder_and_a_bad_model(tmp_path, capsys):
  (tmp_path / "out").mkdir()
  (tmp_path / "out" / "part-0.parquet").write_bytes(b"x")
  assert bulk.main([str(tmp_path), "--model", "m.jaxface", "--out", str(tmp_path / "out")]) == 2
  assert "is not empty" in capsys.readouterr().err
  (tmp_path / "m.jaxface").write_bytes(b"not a zip")
  assert bulk.main([str(tmp_path), "--model", str(tmp_path / "m.jaxface"), "--out", str(tmp_path / "o2")]) == 2
  assert "is not a jaxface export" in capsys.readouterr().err


def test_plan_gives_the_cpus_to_the_crops_and_a_gpu_to_each_model_actor():
  assert job.plan({"CPU": 2.0}) == {
    "crop_actors": 2, "crop_cpus": 0.87, "label_actors": 1, "label_cpus": job.LABEL_CPUS, "label_gpus": 0
  }  # fmt: skip
  p = job.plan({"CPU": 16.0, "GPU": 2.0})
  assert (p["crop_actors"], p["crop_cpus"], p["label_actors"], p["label_gpus"], p["label_cpus"]) == (16, 1.0, 2, 1, 0)


def test_a_path_with_brackets_is_that_path_and_a_glob_walks_folders(tmp_path):
  from PIL import Image

  from jaxface.bulk import inputs

  holiday = tmp_path / "Holiday [2019]"
  (holiday / "day1").mkdir(parents=True)
  Image.new("RGB", (8, 8)).save(holiday / "day1" / "a.jpg")
  got = inputs.items([str(holiday)])
  assert [Path(i["file"]).name for i in got] == ["a.jpg"] and got[0]["error"] is None
  walked = inputs.items([str(tmp_path / "Holiday*")])  # a glob that matches a folder walks it
  assert [Path(i["file"]).name for i in walked] == ["a.jpg"]


def test_a_name_that_is_not_utf8_is_a_row_like_any_other(model, tmp_path):
  """A file whose name is not UTF-8: its item, both stages and the Parquet file take it (where Arrow raised
  UnicodeEncodeError and failed the job), the name escaped as predict writes it; the stages run here, without Ray."""
  import pyarrow as pa

  from jaxface.bulk import stages

  photos = album(tmp_path / "photos", 1)
  odd = photos / os.fsdecode(b"caf\xe9.jpg")
  next(photos.iterdir()).rename(odd)
  (item,) = inputs.items([str(photos)])
  assert item["file"].endswith("caf\\udce9.jpg") and item["error"] is None
  crops = stages.Crops(32, detect=False)(pa.table({"items": [[item]]}))
  labelled = stages.Labels(str(model))(crops)
  pq.write_table(labelled, tmp_path / "rows.parquet")
  (row,) = pq.read_table(tmp_path / "rows.parquet").to_pylist()
  assert row["file"] == item["file"] and row["status"] == "ok" and row["age"] is not None


def test_a_photo_that_breaks_the_detector_is_an_error_row_and_its_chunk_is_labelled(tmp_path, monkeypatch):
  """The Crops stage walks photos through predict's loop (records.photo_rows), with its per-photo fallback; the stage
  runs here, without Ray."""
  import pyarrow as pa
  from test_predict import breaks_on

  from jaxface.bulk import stages

  photos = album(tmp_path / "photos", 3)
  Image.new("RGB", (97, 89), (128, 128, 128)).save(photos / "odd.jpg")
  items = inputs.items([str(photos)])
  breaks_on((97, 89), monkeypatch)
  rows = stages.Crops(32)(pa.table({"items": [items]})).to_pylist()
  by_file = {Path(r["file"]).name: r for r in rows}
  assert by_file["odd.jpg"]["status"] == "error" and "detection failed (RuntimeError" in by_file["odd.jpg"]["error"]
  assert by_file["photo000.jpg"]["status"] == "no_face"  # every fifth photo has no face
  assert by_file["photo001.jpg"]["status"] == "ok" and len(by_file["photo001.jpg"]["crop"]) == 32 * 32 * 3
