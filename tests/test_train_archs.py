"""The pretrained architectures' training recipes.

Their fine-tuning through the trainer is test_cydral's (the cpu preset's lower backbone LR, from converted weights),
the LR mask on each real model's backbone test_optimizer's, and each arch's gradients (MobileNetV2's depthwise,
ResNet-50's strided 1x1) test_xla_options' against float64: a short training run of each big arch here only
compiled them again, for a good share of the suite's time."""

import json

import jax
import pytest

from jaxface import config as config_lib
from jaxface.training import trainer


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
