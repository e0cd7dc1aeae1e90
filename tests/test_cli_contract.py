"""The exit-code contract through the real CLIs (``cli.run``): a mistake is one line and exit 2, never a
traceback, and never costs the user a file."""

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image


def run(*args, cwd=None) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def one_line(res: subprocess.CompletedProcess, *words: str) -> None:
  assert res.returncode == 2, res.stderr[-2000:]
  assert "Traceback" not in res.stderr, res.stderr[-2000:]
  last = res.stderr.strip().splitlines()[-1]
  assert all(w in last for w in words), last


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
  d = tmp_path_factory.mktemp("photos")
  Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(d / "face.jpg")
  return d


def test_bad_flags_and_files_are_one_line_and_exit_2(tmp_path, photo_dir):
  bad = tmp_path / "bad.jaxface"
  with zipfile.ZipFile(bad, "w") as z:
    z.writestr("meta.json", "[]")
    z.writestr("forward.jaxexport", b"x")
  one_line(run("jaxface.predict", str(photo_dir), "--batch-size", "0"), "--batch-size", "give 1 or more")
  one_line(run("jaxface.predict", str(photo_dir), "--model", str(bad)), "bad.jaxface", "export format")
  one_line(run("jaxface.predict", str(photo_dir), "--every", "0"), "--every 0")
  (tmp_path / "file").write_text("x")
  one_line(run("jaxface.bulk", str(photo_dir), "--model", str(bad), "--out", str(tmp_path / "file")), "is a file")


def test_an_output_that_cannot_be_written_is_one_line(trained, tmp_path, photo_dir):
  res = run(
    "jaxface.predict", str(photo_dir), "--workdir", str(trained), "--out", str(tmp_path / "missing" / "x.jsonl")
  )
  one_line(res, "cannot write", "missing")


def test_annotate_never_overwrites_an_input(trained, photo_dir):
  """--annotate into the photos' own folder (as `--annotate .` from there) is refused before any work."""
  before = (photo_dir / "face.jpg").read_bytes()
  res = run("jaxface.predict", ".", "--workdir", str(trained), "--annotate", ".", cwd=photo_dir)
  one_line(res, "--annotate would overwrite the input", "face.jpg")
  assert (photo_dir / "face.jpg").read_bytes() == before


def test_annotated_copies_keep_their_folders(trained, tmp_path):
  """x/face.jpg and y/face.jpg get two copies, not one."""
  from jaxface.predict import annotated_paths

  for sub in ("x", "y"):
    (tmp_path / sub).mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / sub / "face.jpg")
  files = [tmp_path / "x" / "face.jpg", tmp_path / "y" / "face.jpg"]
  got = annotated_paths(files, str(tmp_path / "out"), ".mp4")
  assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in got.values()) == ["x/face.mp4", "y/face.mp4"]


def test_a_name_that_is_not_utf8_is_a_row_like_any_other(trained, tmp_path):
  """predict --csv (and JSON lines) on a file whose name is not UTF-8: its row, the name escaped."""
  import os

  d = tmp_path / "odd"
  d.mkdir()
  name = os.fsdecode(b"caf\xe9.jpg")
  Image.fromarray(np.full((64, 64, 3), 100, np.uint8)).save(d / name)
  for fmt in ([], ["--csv"]):
    res = run("jaxface.predict", str(d), "--workdir", str(trained), "--no-detect", *fmt)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "caf" in res.stdout and ("\\udce9" in res.stdout or "\\xe9" in res.stdout), res.stdout
  json.loads(run("jaxface.predict", str(d), "--workdir", str(trained), "--no-detect").stdout.splitlines()[0])
