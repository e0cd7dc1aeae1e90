"""Training configs as plain data, and the presets that fill them.

``classic`` is the classic recipe: batch 64, 50 epochs, 128x128 input, Adam
1e-3, loss 0.1 * MSE(age) + 1.0 * BCE(gender), augmentation. ``cpu`` is sized
for a 2-core laptop: each of ``custom`` and ``mobilenet_v2`` trains on
subset5000 in well under 45 minutes (see README "Presets" for what it
changes and why). Explicit flags override the preset.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path


@dataclasses.dataclass
class Config:
  arch: str = "custom"
  preset: str = "classic"
  # data
  data: str | None = None  # UTKFace.tar.gz or folder; None: $JAXFACE_DATA or TFDS's manual folder
  dataset: str = "subset5000"  # utk_face config: subset5000 | full
  tfds_dir: str | None = None
  image_size: int = 128
  augment: bool = True
  # model
  pretrained: str | None = None  # converted DIR, or a torchvision .safetensors/.pth
  hidden: tuple[int, ...] = (128,)
  dropout: float = 0.3
  widths: dict | None = None  # custom only: {"trunk": [..3], "branch": [..3]}
  dtype: str = "float32"  # compute dtype; parameters stay float32
  # mobilenet_v2 only: freeze backbone layers features[:freeze_until] (eval mode), compute their
  # output once per image and its mirror, and train the rest on that cache (0: train everything).
  freeze_until: int = 0
  # optimisation
  epochs: int = 50
  batch_size: int = 64
  lr: float = 1e-3
  lr_schedule: str = "constant"  # constant | cosine (to 0 over the run, after warmup)
  warmup_epochs: float = 0.0
  age_loss_weight: float = 0.1
  gender_loss_weight: float = 1.0
  # running
  devices: str = "auto"  # auto | cpu | gpu | tpu
  seed: int = 0
  log_every: int = 10  # steps between host syncs (progress bar, NaN check)

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=2) + "\n"

  @classmethod
  def from_dict(cls, d: dict) -> Config:
    d = dict(d)
    if d.get("hidden") is not None:
      d["hidden"] = tuple(d["hidden"])
    unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
      raise ValueError(f"unknown config keys {sorted(unknown)}")
    return cls(**d)

  @classmethod
  def load(cls, workdir: str | Path) -> Config:
    return cls.from_dict(json.loads((Path(workdir) / "config.json").read_text()))


# Fields that may differ when a run is resumed (a run can be extended or moved).
RESUMABLE_CHANGES = frozenset({"epochs", "devices", "log_every", "data", "tfds_dir"})

PRESETS: dict[str, dict[str, dict]] = {
    "classic": {"*": {}},
    "cpu": {
        # 64 px, classic widths: 1/4 of the classic FLOPs; 35 epochs took 32 min on a 2-core AVX2 CPU.
        "custom": dict(image_size=64, epochs=35, lr=1e-3, lr_schedule="cosine", warmup_epochs=1),
        # ImageNet-pretrained, 128 px: layers 0-13 frozen and cached (image + mirror, computed
        # once), layers 14-18 and the heads trained on the cache: 30 epochs in ~25 min here.
        "mobilenet_v2": dict(image_size=128, freeze_until=14, epochs=30, lr=1e-3, lr_schedule="cosine", warmup_epochs=1),
        # ResNet-50 trains at ~2-3 images/s here: a smoke run only.
        "resnet50": dict(image_size=64, epochs=1, lr=5e-4),
    },
}  # fmt: skip


def make(arch: str, preset: str = "classic", **overrides) -> Config:
  """Defaults <- preset (for this arch) <- explicit overrides (None means not given)."""
  if preset not in PRESETS:
    raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
  p = PRESETS[preset]
  values = {**p.get("*", {}), **p.get(arch, {})}
  values.update({k: v for k, v in overrides.items() if v is not None})
  return Config.from_dict({"arch": arch, "preset": preset, **values})
