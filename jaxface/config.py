"""Training configs as plain data, the presets that fill them, and the command-line flags made from them.

``classic`` is the classic recipe: batch 64, 50 epochs, 128x128 input, Adam
1e-3, loss 0.1 * MSE(age) + 1.0 * BCE(gender), augmentation. ``cpu`` is sized
for a 2-core laptop (its measured times: docs/experiments.md; what it changes and
why: README "Presets"). Explicit flags override the preset.

Every field of ``Config`` is a flag of ``python -m jaxface.train`` (``--image-size``
for ``image_size``); the choice lists come from the modules that own them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from pathlib import Path

from jaxface import sharding
from jaxface.data import pipeline
from jaxface.data.collection import CROPS
from jaxface.data.splits import DATASETS
from jaxface.models import AGE_HEADS, ARCHS, DTYPES
from jaxface.training.feeds import INPUT_MODES
from jaxface.training.losses import AGE_LOSS_WEIGHTS, DISTRIBUTION_LOSSES
from jaxface.training.optimizer import LR_SCHEDULES


def _field(default, help: str, **flag):
  return dataclasses.field(default=default, metadata={"help": help, **flag})


@dataclasses.dataclass
class Config:
  arch: str = _field("custom", "model architecture", choices=ARCHS)
  preset: str = _field("classic", "recipe whose values fill the fields not given (see README, Presets)")
  # data
  data: str | None = _field(
    None,
    "UTKFace.tar.gz, the UTKFace/ folder, or a manifest .csv/.jsonl of your own faces "
    "(default: $JAXFACE_DATA, then TFDS's manual folder)",
  )
  dataset: str = _field("subset5000", "split config (alias: --config)", choices=DATASETS, aliases=("--config",))
  crop: str = _field("detect", "a manifest's crop policy: detect faces, or take aligned crops as-is", choices=CROPS)
  source_weights: dict | None = _field(
    None, 'a manifest\'s sampling weight per source, as JSON: {"afad": 0.5} (a source not named: 1)'
  )
  balance: float = _field(
    0.0,
    "sample the training split by race x age band x gender: each stratum's faces (n_largest / n) ** BALANCE "
    f"times an epoch, at most {pipeline.BALANCE_CAP:g} (0: as they come; 0.5: square-root balance)",
  )
  tfds_dir: str | None = _field(None, "TFDS data dir (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)")
  image_size: int = _field(128, "input side in pixels (the dataset is prepared at this size)")
  augment: bool = _field(True, "random flip, translation, brightness and contrast, on the device")
  augment_quality: float = _field(
    0.0,
    "with --augment: the probability of each photo-quality degradation per image (grayscale, colour cast, blur, "
    "noise, JPEG-like compression; see README)",
  )
  input: str = _field(
    "auto",
    "device: the splits live on the device, many steps per dispatch; stream: grain on the host, one step per "
    "dispatch; auto: device when they fit the budget",
    choices=INPUT_MODES,
  )
  input_budget_mb: float = _field(
    0, "--input auto: the most the splits may take on a device (0: a quarter of its memory)"
  )
  steps_per_call: int = _field(0, "--input device: train steps per jitted call (0: a whole epoch)")
  # model
  pretrained: str | None = _field(
    None,
    "the backbone's start: a converted DIR (python -m jaxface.convert), a torchvision .safetensors/.pth, or "
    "'released' for the arch's published weights (downloaded once, digest-checked)",
  )
  hidden: tuple[int, ...] = _field(
    (128,), "hidden widths of each head's dense layers; none (`--hidden` alone): linear heads"
  )
  dropout: float = _field(0.3, "dropout after each hidden layer of the heads")
  widths: dict | None = _field(None, 'custom only, as JSON: {"trunk": [3 ints], "branch": [3 ints]}')
  dtype: str = _field("float32", "compute dtype; parameters stay float32", choices=DTYPES)
  age_head: str = _field(
    "regression",
    "regression: the age in years, MSE loss; distribution: logits over ages 0-116, KL to a Gaussian label + L1 of "
    "the expectation (see README, Age heads)",
    choices=AGE_HEADS,
  )
  age_sigma: float = _field(2.0, "distribution head, dldl: std (years) of the Gaussian label around the true age")
  age_loss: str = _field(
    "dldl",
    "distribution head's loss: dldl (KL to a Gaussian label + L1 of the expectation) or mean_variance (cross-entropy "
    "+ squared error of the expectation + variance; Pan et al., 2018)",
    choices=DISTRIBUTION_LOSSES,
  )
  # optimisation
  epochs: int = _field(50, "epochs to train (may change on resume, within the LR schedule's horizon)")
  lr_horizon_epochs: int | None = _field(
    None,
    "length of the LR schedule in epochs (default: --epochs); fixed when a run starts, so resuming with other --epochs never makes the LR jump",
  )
  batch_size: int = _field(64, "global batch size, split over every device")
  lr: float = _field(1e-3, "peak learning rate (Adam)")
  lr_schedule: str = _field(
    "constant", "constant, or cosine to 0 at the horizon, after the warm-up", choices=LR_SCHEDULES
  )
  warmup_epochs: float = _field(0.0, "linear warm-up from 0, in epochs")
  backbone_lr_scale: float = _field(
    1.0, "the pretrained backbone's LR as a fraction of --lr (fine-tuning: below 1; the heads always get --lr)"
  )
  age_loss_weight: float | None = _field(
    None,
    "weight of the age term: MSE in years^2 (regression; default 0.1) or KL in nats + L1 in years (distribution; "
    "default 1.0)",
  )
  gender_loss_weight: float = _field(1.0, "weight of BCE(gender logit) in the loss")
  # running
  devices: str = _field("auto", "platform whose devices form the data mesh", choices=sharding.PLATFORMS)
  seed: int = _field(0, "seeds the initialisation, data order, augmentation and dropout")
  log_every: int = _field(10, "steps between host syncs (progress bar, non-finite loss check)")

  def __post_init__(self):
    if self.age_head not in AGE_LOSS_WEIGHTS:
      raise ValueError(f"unknown age head {self.age_head!r}; choose one of {AGE_HEADS}")
    if self.age_loss not in DISTRIBUTION_LOSSES:
      raise ValueError(f"unknown age loss {self.age_loss!r}; choose one of {DISTRIBUTION_LOSSES}")
    if self.age_head == "regression" and self.age_loss != DISTRIBUTION_LOSSES[0]:  # it would be ignored
      raise ValueError(f"--age-loss {self.age_loss} is a loss of the distribution head; add --age-head distribution")
    if self.age_loss_weight is None:  # each head's term has its own scale
      self.age_loss_weight = AGE_LOSS_WEIGHTS[self.age_head]

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=2) + "\n"

  @classmethod
  def from_dict(cls, d: dict) -> Config:
    d = dict(d)
    if d.get("hidden") is not None:
      d["hidden"] = tuple(d["hidden"])
    for key in RETIRED:  # old workdirs: they evaluate and predict as before (training refuses to resume them)
      d.pop(key, None)
    unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
      raise ValueError(f"unknown config keys {sorted(unknown)}")
    return cls(**d)

  @classmethod
  def load(cls, workdir: str | Path) -> Config:
    path = Path(workdir) / "config.json"
    if not path.exists():
      raise FileNotFoundError(f"{workdir}: no config.json; is this a jaxface training workdir?")
    try:
      return cls.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError) as e:
      raise ValueError(f"{path}: not a jaxface config ({e})") from None

  @property
  def horizon_epochs(self) -> int:
    """Epochs over which the LR schedule runs."""
    return self.lr_horizon_epochs or self.epochs


# Fields of older versions, dropped when an old config.json is read. freeze_until: the mobilenet_v2
# cpu preset once froze and cached backbone layers [0, N); the preset now fine-tunes every layer.
RETIRED = ("freeze_until",)

# Fields that may differ when a run is resumed (a run can be extended or moved).
RESUMABLE_CHANGES = frozenset(
  {"epochs", "devices", "log_every", "data", "tfds_dir", "input", "input_budget_mb", "steps_per_call"}
)


def for_run(cfg: Config, written: dict | None, workdir: str | Path) -> Config:
  """The config a run in ``workdir`` uses, given the config.json already there (``written``, or None for a new run).

  The resume rules: a workdir with a retired field (RETIRED) evaluates but does not resume; only the fields in
  RESUMABLE_CHANGES may differ; the LR schedule's horizon (``lr_horizon_epochs``) is fixed when the run starts, a
  resume keeps it, and asking a decaying schedule to train past it is refused. ValueError says which rule broke.
  """
  if written is not None:
    if written.get("freeze_until"):
      raise ValueError(
        f"{workdir} was trained with --freeze-until {written['freeze_until']} (frozen, cached backbone layers), which "
        "this version no longer has: it evaluates and predicts as before, but cannot be resumed; use a new --workdir"
      )
    try:
      old = Config.from_dict(written)
    except (ValueError, TypeError) as e:
      raise ValueError(f"{Path(workdir) / 'config.json'}: not a jaxface config ({e})") from None
    horizon = old.lr_horizon_epochs or old.epochs  # a config written before the horizon was recorded ran to its epochs
    if cfg.lr_horizon_epochs is None:
      cfg = dataclasses.replace(cfg, lr_horizon_epochs=horizon)
    old_d, new_d = {**json.loads(old.to_json()), "lr_horizon_epochs": horizon}, json.loads(cfg.to_json())
    changed = {k for k in old_d.keys() | new_d.keys() if old_d.get(k) != new_d.get(k)} - RESUMABLE_CHANGES
    if changed:
      diff = {k: (old_d.get(k), new_d.get(k)) for k in sorted(changed)}
      raise ValueError(f"{workdir} holds a run with another config (was, now): {diff}; use a new --workdir")
  elif cfg.lr_horizon_epochs is None:
    cfg = dataclasses.replace(cfg, lr_horizon_epochs=cfg.epochs)
  if cfg.lr_schedule != "constant" and cfg.epochs > cfg.horizon_epochs:
    raise ValueError(
      f"--epochs {cfg.epochs} is past the {cfg.lr_schedule} schedule's horizon of {cfg.horizon_epochs} epochs, fixed "
      f"when {workdir} started: the learning rate has decayed to 0 there, and a longer schedule would make it jump "
      "back up. Train longer in a new --workdir (with --lr-horizon-epochs, if you plan to extend it later)."
    )
  return cfg


PRESETS: dict[str, dict[str, dict]] = {
    "classic": {"*": {}},
    "cpu": {
        # 64 px with the classic widths, to fit a 2-core CPU in about half an hour. The distribution age head beat
        # regression and the mean-variance loss here (the runs: docs/experiments.md and experiments/README.md).
        "custom": dict(
            image_size=64, epochs=50, lr=1e-3, lr_schedule="cosine", warmup_epochs=1, age_head="distribution"
        ),
        # ImageNet-pretrained, 128 px, fine-tuned end to end with the classic augmentation (the depthwise convs as
        # shifted multiply-adds make that affordable on a CPU). The backbone at 0.3x the heads' LR: at 0.1x gender
        # underfit. The distribution head, its sigma, the hidden layer, the epochs and the loss were each chosen
        # against the alternatives, over three seeds where they were close (docs/experiments.md, experiments/README.md).
        "mobilenet_v2": dict(
            image_size=128, epochs=12, lr=1e-3, backbone_lr_scale=0.3, lr_schedule="cosine", warmup_epochs=1,
            age_head="distribution",
        ),
        # Cydral's released age and gender networks (face-pretrained, 64 px chips) under new heads.
        "cydral": dict(
            image_size=64, epochs=30, lr=1e-3, backbone_lr_scale=0.3, lr_schedule="cosine", warmup_epochs=1,
            age_head="distribution", pretrained="released",
        ),
        # HSE FaceRes (face-pretrained MobileNet-v1, released at 224 px) under new heads, at 160 px: its train step is
        # much faster there than at 224 px (benchmarks/results/train_jax_cpu_face.json), so 8 epochs fit a CPU.
        # FaceRes-deep is the same graph with other weights, so the same recipe.
        **{
            arch: dict(
                image_size=160, epochs=8, lr=1e-3, backbone_lr_scale=0.3, lr_schedule="cosine", warmup_epochs=1,
                age_head="distribution", pretrained="released",
            )
            for arch in ("faceres", "faceres_deep")
        },
        # InsightFace's MobileFaceNet (face recognition, non-commercial weights) under new heads, at its own 112 px.
        "mobilefacenet": dict(
            image_size=112, epochs=8, lr=1e-3, backbone_lr_scale=0.3, lr_schedule="cosine", warmup_epochs=1,
            age_head="distribution", pretrained="released",
        ),
        # ResNet-50 is too slow to train on a 2-core CPU (benchmarks/README.md): a smoke run only.
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


def _json_object(text: str) -> dict:
  try:
    value = json.loads(text)
  except json.JSONDecodeError as e:
    raise argparse.ArgumentTypeError(f"not JSON ({e}): {text!r}") from None
  if not isinstance(value, dict):
    raise argparse.ArgumentTypeError(f"not a JSON object: {text!r}")
  return value


def _flag_type(field: dataclasses.Field) -> dict:
  """argparse keywords for a field, from its annotation."""
  hint = typing.get_type_hints(Config)[field.name]
  args = [a for a in typing.get_args(hint) if a is not type(None)] if isinstance(hint, types.UnionType) else [hint]
  kind = args[0]
  if kind is bool:
    return {"action": argparse.BooleanOptionalAction}
  if typing.get_origin(kind) is tuple:  # "*": `--hidden` alone is an empty tuple (linear heads)
    return {"type": int, "nargs": "*", "metavar": "N"}
  if kind is dict:
    return {"type": _json_object, "metavar": "JSON"}
  return {"type": kind}


def add_flags(parser: argparse.ArgumentParser) -> None:
  """One flag per Config field, default None (not given), so that the preset fills what is not given."""
  for f in dataclasses.fields(Config):
    meta = dict(f.metadata)
    names = [f"--{f.name.replace('_', '-')}", *meta.pop("aliases", ())]
    if f.name == "preset":
      meta["choices"] = sorted(PRESETS)
    if "default" not in meta["help"]:
      by_preset = "" if f.name in ("arch", "preset") else ", or the preset's"
      meta["help"] += f" (default: {f.default}{by_preset})"
    parser.add_argument(*names, dest=f.name, default=None, **_flag_type(f), **meta)


def from_flags(args: argparse.Namespace) -> Config:
  values = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config)}
  return make(values.pop("arch") or Config.arch, values.pop("preset") or Config.preset, **values)
