"""Training the pretrained architectures on the CPU (tiny inputs): the recipes the cpu preset uses for them."""

import json

import jax
import numpy as np
import pytest
from conftest import restored_params

from jaxface import config as config_lib
from jaxface.training import trainer


def test_mobilenet_v2_fine_tunes_every_layer_with_a_lower_backbone_lr(tmp_path, fake_archive, tfds_dir):
  """The cpu preset's recipe: the whole backbone trains (no frozen layers), at a fraction of the heads' LR."""
  from jaxface.training import model_def

  cfg = config_lib.make(
    "mobilenet_v2", "classic", data=str(fake_archive[0]), dataset="full", tfds_dir=str(tfds_dir), image_size=32,
    batch_size=8, epochs=1, backbone_lr_scale=0.1, hidden=(16,), log_every=3,
  )  # fmt: skip
  trainer.train(cfg, tmp_path)
  _, init, _ = model_def.init_model(cfg)
  init = {k: np.asarray(v) for k, v in nnx_flat(init)}
  after = {k: np.asarray(v) for k, v in nnx_flat(restored_params(tmp_path, 6))}
  assert init.keys() == after.keys()
  first, last = ("backbone", "features", 0, 0, "kernel"), ("backbone", "features", 18, 0, "kernel")
  assert not np.allclose(init[first], after[first]) and not np.allclose(init[last], after[last])
  h = json.loads((tmp_path / "history.json").read_text())
  assert len(h) == 1 and np.isfinite(h[0]["val_loss"]) and h[0]["lr"] > 0


def test_a_workdir_of_the_retired_frozen_prefix_evaluates_but_does_not_resume(tmp_path):
  """--freeze-until is gone: an old config.json still loads (inference), but resuming it is refused, saying why."""
  old = json.loads(config_lib.make("mobilenet_v2").to_json())
  (tmp_path / "config.json").write_text(json.dumps({**old, "freeze_until": 14}))
  assert config_lib.Config.load(tmp_path).arch == "mobilenet_v2"
  with pytest.raises(ValueError, match="--freeze-until 14.*cannot be resumed"):
    trainer.train(config_lib.make("mobilenet_v2"), tmp_path)


def nnx_flat(tree):
  """(path tuple with int list indices, array) pairs of a params tree, restored or live."""
  out = []
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    key = tuple(int(p.key) if str(p.key).isdigit() else p.key for p in path if hasattr(p, "key"))
    out.append((key[:-1] if key[-1] == "value" else key, leaf))  # restored Variables carry a 'value' level
  return out


def test_resnet50_short_run_on_cpu(tmp_path, fake_archive, tfds_dir):
  """A few ResNet-50 steps on the CPU, at 32 px: the full network trains and evaluates."""
  cfg = config_lib.make(
    "resnet50", "cpu", data=str(fake_archive[0]), dataset="full", tfds_dir=str(tfds_dir), image_size=32,
    batch_size=8, epochs=1, hidden=(16,), log_every=3,
  )  # fmt: skip
  last = trainer.train(cfg, tmp_path)
  assert last["step"] == 6 and np.isfinite(last["train_loss"]) and np.isfinite(last["val_age_mae"])
