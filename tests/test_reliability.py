"""What happens when a user kills a run, starts two, or hands jaxface bad data or a bad photo."""

import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import conftest
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxface import Predictor, faces
from jaxface import config as config_lib
from jaxface import predict as predict_cli
from jaxface.data import prepare, source
from jaxface.inference import evaluation
from jaxface.training import feeds, trainer, workdir_lock


def tiny_cfg(archive, tfds_dir, **kw) -> config_lib.Config:
  return conftest.tiny_cfg(archive, tfds_dir, **{"log_every": 1, **kw})  # a host sync every step


def kept_steps(workdir: Path) -> list[int]:
  """Finalised checkpoints only: Orbax writes a step into a temporary folder, then renames it."""
  return sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())


# --- 1. two trainers, one workdir -------------------------------------------------------------------------------


def test_a_second_trainer_on_a_busy_workdir_is_refused(tmp_path, fake_archive, tfds_dir):
  tmp_path.mkdir(exist_ok=True)
  with workdir_lock.hold(tmp_path):
    with pytest.raises(workdir_lock.WorkdirBusyError, match=f"in use by another training run \\(PID {os.getpid()} on"):
      trainer.train(tiny_cfg(fake_archive[0], tfds_dir, epochs=1), tmp_path)
  assert not (tmp_path / "config.json").exists()  # the refused run wrote nothing
  # A lock left by a dead process (the file, no flock on it) does not block.
  (tmp_path / ".lock").write_text(json.dumps({"pid": 999999, "host": "gone", "started": "then"}))
  trainer.train(tiny_cfg(fake_archive[0], tfds_dir, epochs=1), tmp_path)
  assert kept_steps(tmp_path) == [6]


# --- 2. every exit waits for the checkpoint in flight -----------------------------------------------------------


def _interrupt_in_epoch_2(monkeypatch, what):
  real = feeds.DeviceFeed.run

  def run(self, state, epoch, offset, k, acc=None):
    if epoch == 1:
      if what == "nan":
        state = {**state, "first_bad_step": jnp.asarray(6, jnp.int32)}
      else:
        raise KeyboardInterrupt
    return real(self, state, epoch, offset, k, acc)

  monkeypatch.setattr(feeds.DeviceFeed, "run", run)


def test_a_non_finite_loss_after_an_epoch_keeps_that_epochs_checkpoint(tmp_path, fake_archive, tfds_dir, monkeypatch):
  _interrupt_in_epoch_2(monkeypatch, "nan")
  with pytest.raises(trainer.NonFiniteLossError, match="step 6 .*last good checkpoint is step 6"):
    trainer.train(tiny_cfg(fake_archive[0], tfds_dir, input="device"), tmp_path)
  assert kept_steps(tmp_path) == [6]  # finalised when the error is raised, not left in a temporary folder


def test_an_interrupt_after_an_epoch_keeps_that_epochs_checkpoint(tmp_path, fake_archive, tfds_dir, monkeypatch):
  _interrupt_in_epoch_2(monkeypatch, "interrupt")
  with pytest.raises(KeyboardInterrupt):
    trainer.train(tiny_cfg(fake_archive[0], tfds_dir, input="device"), tmp_path)
  assert kept_steps(tmp_path) == [6]


def test_a_non_finite_loss_before_any_checkpoint_says_so(tmp_path, fake_archive, tfds_dir, monkeypatch):
  real = feeds.DeviceFeed.run
  monkeypatch.setattr(
    feeds.DeviceFeed, "run", lambda self, s, e, o, k, a: real(self, {**s, "first_bad_step": jnp.asarray(0)}, e, o, k, a)
  )
  with pytest.raises(trainer.NonFiniteLossError, match="No checkpoint was saved yet"):
    trainer.train(tiny_cfg(fake_archive[0], tfds_dir, input="device"), tmp_path)


# --- 3. unsorted archives --------------------------------------------------------------------------------------


def test_an_unsorted_archive_is_read_in_one_pass(tmp_path, fake_archive, monkeypatch):
  """The fake archive's members are not in name order; reading them sorted must not rewind the gzip stream."""
  rewinds = []
  real = gzip._GzipReader._rewind
  monkeypatch.setattr(gzip._GzipReader, "_rewind", lambda self: rewinds.append(1) or real(self))
  names = [n for n, _ in source.iter_files(fake_archive[0])]
  assert names == sorted(names) and len(names) > 40
  assert rewinds == []


# --- 4. a decompression bomb among photos ------------------------------------------------------------------------


def test_a_huge_photo_gets_an_error_record_and_the_rest_go_on(trained, tmp_path):
  Image.new("1", (20000, 10000)).save(tmp_path / "huge.png")  # 200 Mpx: past Pillow's bomb limit
  Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(tmp_path / "small.png")
  p = Predictor.from_workdir(trained, detect=False, batch_size=2)
  recs = list(p.predict_many(faces.load_photo(tmp_path / n) for n in ("huge.png", "small.png")))
  assert [r["status"] for r in recs] == ["error", "ok"]
  assert "huge.png" in recs[0]["file"] and "pixels" in recs[0]["error"]


# --- 5. a user's mistakes: one line naming the file, no traceback ------------------------------------------------


def _cli(module: str, *args: str, env=None) -> subprocess.CompletedProcess:
  return subprocess.run(
    [sys.executable, "-m", module, *args], capture_output=True, text=True, env={**os.environ, **(env or {})}
  )


def _one_clear_line(out: subprocess.CompletedProcess, *needles: str) -> None:
  assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr[-3000:]
  line = [x for x in out.stderr.splitlines() if x.startswith("error:")]
  assert len(line) == 1 and all(n in line[0] for n in needles), out.stderr[-3000:]


def test_a_truncated_archive_is_one_clear_error(tmp_path, fake_archive):
  data = Path(fake_archive[0]).read_bytes()
  cut = tmp_path / "cut.tar.gz"
  cut.write_bytes(data[: len(data) // 2])
  _one_clear_line(_cli("jaxface.data", "--data", str(cut), "--tfds-dir", str(tmp_path / "t1")), str(cut), "truncated")
  args = [
    "--data",
    str(cut),
    "--tfds-dir",
    str(tmp_path / "t2"),
    "--workdir",
    str(tmp_path / "w"),
    "--image-size",
    "32",
  ]
  _one_clear_line(_cli("jaxface.train", *args), str(cut), "truncated")


def test_an_empty_folder_or_too_few_images_is_one_clear_error(tmp_path, fake_archive):
  (tmp_path / "empty").mkdir()
  out = _cli("jaxface.data", "--data", str(tmp_path / "empty"), "--tfds-dir", str(tmp_path / "t1"))
  _one_clear_line(out, str(tmp_path / "empty"), "no usable images")
  out = _cli(
    "jaxface.data", "--data", str(fake_archive[0]), "--dataset", "subset5000", "--tfds-dir", str(tmp_path / "t2")
  )
  _one_clear_line(out, str(fake_archive[0]), "subset5000 needs 5000")


def test_a_corrupt_config_or_history_names_the_file(trained, tmp_path):
  broken = tmp_path / "broken"
  broken.mkdir()
  (broken / "config.json").write_text('{"arch": "custom",')
  _one_clear_line(_cli("jaxface.evaluate", "--workdir", str(broken)), str(broken / "config.json"))
  copy = tmp_path / "copy"
  copy.mkdir()
  (copy / "config.json").write_text((trained / "config.json").read_text())
  (copy / "history.json").write_text("")
  _one_clear_line(
    _cli("jaxface.plot", "--workdirs", str(copy), "--out", str(tmp_path / "f")), str(copy / "history.json")
  )


# --- 6. 16-bit images --------------------------------------------------------------------------------------------


def test_a_16_bit_png_keeps_its_grey_levels():
  buf = io.BytesIO()
  Image.fromarray(np.full((40, 40), 32768, np.uint16)).save(buf, format="PNG")
  pixels = source.decode(buf.getvalue(), 32)
  assert pixels.shape == (32, 32, 3) and abs(int(pixels.mean()) - 128) <= 1


# --- 7. and 8. checkpoints: a corrupted one, a lost history, the keep policy across resumes -----------------------


def _truncate_the_state_files(step_dir: Path) -> None:
  """Cuts every data file of the saved state in half, as a full disk or a killed copy would."""
  for path in [f for f in (step_dir / "state").rglob("*") if f.is_file() and f.stat().st_size > 64]:
    with open(path, "r+b") as f:
      f.truncate(path.stat().st_size // 2)


def test_a_corrupted_checkpoint_falls_back_to_the_previous_one(tmp_path, fake_archive, tfds_dir, caplog):
  trainer.train(tiny_cfg(fake_archive[0], tfds_dir, epochs=2), tmp_path)
  _truncate_the_state_files(tmp_path / "checkpoints" / "12")
  with pytest.raises(ValueError, match="checkpoint 12 .* cannot be read"):
    evaluation.evaluate(tmp_path, "validation", checkpoint="last")
  last = trainer.train(tiny_cfg(fake_archive[0], tfds_dir, epochs=3), tmp_path)
  assert "checkpoint 12 is damaged" in caplog.text and "resuming from step 6" in caplog.text
  assert last["epoch"] == 3 and last["step"] == 18
  assert [h["epoch"] for h in json.loads((tmp_path / "history.json").read_text())] == [1, 2, 3]


def test_a_transient_read_error_stops_the_run_and_sets_nothing_aside(tmp_path, fake_archive, tfds_dir, monkeypatch):
  """An I/O error (NFS, gcsfuse) or out of memory is not damage: the run stops, and every step stays."""
  from jaxface import checkpoint

  trainer.train(tiny_cfg(fake_archive[0], tfds_dir, epochs=2), tmp_path)

  def flaky(self, step, *a):
    raise OSError(5, "Input/output error", str(self.directory / str(step)))

  monkeypatch.setattr(checkpoint.Checkpointer, "restore", flaky)
  with pytest.raises(checkpoint.CheckpointReadError, match="checkpoint 12 .*Input/output error.*nothing was set aside"):
    trainer.train(tiny_cfg(fake_archive[0], tfds_dir, epochs=3), tmp_path)
  assert kept_steps(tmp_path) == [6, 12] and not list((tmp_path / "checkpoints").glob("*.unreadable"))


def test_when_every_checkpoint_is_damaged_a_fresh_start_needs_the_flag(tmp_path, fake_archive, tfds_dir):
  from jaxface import checkpoint

  trainer.train(tiny_cfg(fake_archive[0], tfds_dir, epochs=2), tmp_path)
  for step in (6, 12):
    _truncate_the_state_files(tmp_path / "checkpoints" / str(step))
  for _ in range(2):  # also once they have been set aside
    with pytest.raises(checkpoint.DamagedCheckpointsError, match="every checkpoint .*--restart-if-damaged"):
      trainer.train(tiny_cfg(fake_archive[0], tfds_dir, epochs=2), tmp_path)
  last = trainer.train(tiny_cfg(fake_archive[0], tfds_dir, epochs=2), tmp_path, restart_if_damaged=True)
  assert last["step"] == 12 and [h["epoch"] for h in json.loads((tmp_path / "history.json").read_text())] == [1, 2]


def test_history_lives_with_the_checkpoints_and_the_keep_policy_holds(tmp_path, fake_archive, tfds_dir):
  trainer.train(tiny_cfg(fake_archive[0], tfds_dir, epochs=3), tmp_path)
  (tmp_path / "history.json").unlink()
  trainer.train(tiny_cfg(fake_archive[0], tfds_dir, epochs=6), tmp_path)
  h = json.loads((tmp_path / "history.json").read_text())
  assert [e["epoch"] for e in h] == [1, 2, 3, 4, 5, 6]
  best = min(h, key=lambda e: e["val_age_mae"])["step"]
  assert kept_steps(tmp_path) == sorted({30, 36, best})
  assert evaluation.evaluate(tmp_path, "validation", checkpoint="best")["step"] == best


# --- 9. annotated copies of photos with the same name -------------------------------------------------------------


def test_annotated_copies_keep_their_folders(trained, tmp_path):
  for d in ("x", "y"):
    (tmp_path / "in" / d).mkdir(parents=True)
    Image.fromarray(np.full((64, 64, 3), 100 if d == "x" else 200, np.uint8)).save(tmp_path / "in" / d / "face.jpg")
  rc = predict_cli.main(
    [
      str(tmp_path / "in"),
      "--workdir",
      str(trained),
      "--annotate",
      str(tmp_path / "ann"),
      "--out",
      str(tmp_path / "r.jsonl"),
    ]
  )
  assert rc == 0
  assert sorted(str(p.relative_to(tmp_path / "ann")) for p in (tmp_path / "ann").rglob("*.jpg")) == [
    "x/face.jpg",
    "y/face.jpg",
  ]


# --- 10. the trainer says what it does; a killed build is cleaned up ---------------------------------------------


def test_a_killed_build_is_cleaned_up(tmp_path, fake_archive):
  b = prepare.open_data(None, "full", 24, tmp_path).builder
  leftover = Path(b.data_dir).parent / f"incomplete.ABC123_{b.version}"
  leftover.mkdir(parents=True)
  (leftover / "half.array_record-00000-of-00001").write_bytes(b"partial")
  prepare.prepare(fake_archive[0], "full", 24, tmp_path)
  assert not leftover.exists()


def test_files_are_written_atomically(tmp_path, monkeypatch):
  from jaxface import files

  files.write_json(tmp_path / "a.json", {"x": 1})
  assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1} and [p.name for p in tmp_path.iterdir()] == [
    "a.json"
  ]
  # Until the rename, the file keeps its old bytes (the detector's conversion writes this way: two processes
  # converting it at once never let a reader see half a weights file).
  files.write_bytes(tmp_path / "w.bin", b"old")

  def killed(*_):
    raise OSError("killed before the rename")

  monkeypatch.setattr(files.os, "replace", killed)
  with pytest.raises(OSError, match="killed"):
    files.write_bytes(tmp_path / "w.bin", b"new, half-written")
  assert (tmp_path / "w.bin").read_bytes() == b"old"
  assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "w.bin"]  # no temporary file left behind

  def full(*_):
    raise OSError(28, "No space left on device")

  monkeypatch.setattr(files.os, "fsync", full)
  with pytest.raises(OSError, match=r"No space left on device: '.*history.json'"):  # the error names the file
    files.write_json(tmp_path / "history.json", [])


def test_an_error_that_ends_a_run_is_not_replaced_by_the_failed_save(tmp_path, monkeypatch, caplog):
  """A full disk fails the write that ends the run and the save in flight: the first error is the one raised."""
  from jaxface import checkpoint

  def save_failed():
    raise ValueError("RESOURCE_EXHAUSTED: the save failed too")

  with pytest.raises(OSError, match="No space left"), checkpoint.Checkpointer(tmp_path / "ckpt") as ckpt:
    monkeypatch.setattr(ckpt.mngr, "wait_until_finished", save_failed)
    raise OSError(28, "No space left on device")
  assert "the checkpoint being saved failed as well: ValueError: RESOURCE_EXHAUSTED" in caplog.text
  with pytest.raises(ValueError, match="the save failed too"), checkpoint.Checkpointer(tmp_path / "ckpt2") as ckpt:
    monkeypatch.setattr(ckpt.mngr, "wait_until_finished", save_failed)  # nothing else went wrong: its error stands


def test_a_stuck_run_exits_128_plus_its_signal_without_spinning(tmp_path):
  """A main thread that never unwinds, and Ctrl-C pressed twice: the guard exits after its grace time with 128 + the
  signal received (130), and waits without burning a core (the wakeup pipe is drained)."""
  import signal
  import subprocess
  import sys
  import time

  # The main thread blocks SIGINT and sleeps: as one stuck in native code, it never runs Python's handler, and the
  # signal goes to the guard's thread (where the wakeup byte is written).
  code = (
    "import signal, time\nfrom jaxface.training import guard\nguard.start(grace_s=3.0)\n"
    "signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT])\nprint('ready', flush=True)\ntime.sleep(600)\n"
  )
  p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  try:
    assert p.stdout.readline().strip() == "ready"
    # Into its sleep first: a signal that lands while the main thread still runs bytecode (between the print and the
    # sleep) has Python run the handler there, whatever the mask, and the child dies of KeyboardInterrupt (-2).
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    time.sleep(0.2)
    p.send_signal(signal.SIGINT)  # a second Ctrl-C: its byte in the wakeup pipe must be read too

    def cpu_s():
      fields = open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()
      return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    time.sleep(0.5)
    before = cpu_s()
    time.sleep(2.0)
    spent = cpu_s() - before
    assert p.wait(timeout=30) == 130
    assert spent < 0.5, f"{spent:.2f} s of CPU in 2 s of waiting"
    assert "did not unwind within 3 s" in p.stderr.read()
  finally:
    p.kill()
