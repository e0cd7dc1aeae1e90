"""The PyTorch peer: the same three models, heads, loss, optimizer, batch and image size.

  python benchmarks/peer_torch.py --mode train [--archs ...] [--batch-sizes 32] [--image-sizes 128]
      [--dtypes float32 bfloat16] [--compile off on]
  python benchmarks/peer_torch.py --mode inference [--archs ...]

Run it with a Python that has torch (never a jaxface dependency): torchvision's
resnet50 / mobilenet_v2 when torchvision imports, else the same networks built
here from torch.nn (the CPU wheel has no torchvision). Channels-last memory
format; bfloat16 autocast on a GPU; with and without torch.compile. The step
takes uint8 images and rescales/normalises on the device like jaxface's, but
does no augmentation (jaxface's does: a small extra cost on its side).
Writes benchmarks/results/{train,inference}_torch_<device>.json in the schema
of the JAX benchmarks.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import platform
import shlex
import sys
import time

import common
import torch
import torch.nn.functional as F
from torch import nn

# --- the models -------------------------------------------------------------


def _bn(c):
  return nn.BatchNorm2d(c)


class Custom(nn.Module):
  """jaxface's custom two-branch CNN (models/custom.py), layer for layer."""

  def __init__(self, image_size=128, trunk=(32, 32, 48), branch=(48, 48, 48), hidden=128, dropout=0.3):
    super().__init__()
    a, b, c = trunk
    self.trunk = nn.Sequential(
      nn.Conv2d(3, a, 3, padding=1), nn.ReLU(), nn.Conv2d(a, b, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), _bn(b),
      nn.Conv2d(b, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    )  # fmt: skip
    side = image_size // 16

    def branch_net():
      x, y, z = branch
      return nn.Sequential(
        nn.Conv2d(c, x, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), _bn(x),
        nn.Conv2d(x, y, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), _bn(y),
        nn.Conv2d(y, z, 3, padding=1), nn.ReLU(), nn.Flatten(),
        nn.Linear(side * side * z, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1),
      )  # fmt: skip

    self.age, self.gender = branch_net(), branch_net()

  def forward(self, x):
    x = self.trunk(x)
    return self.age(x)[:, 0], self.gender(x)[:, 0]


class Bottleneck(nn.Module):
  def __init__(self, cin, width, stride):
    super().__init__()
    cout = width * 4
    self.conv1, self.bn1 = nn.Conv2d(cin, width, 1, bias=False), _bn(width)
    self.conv2, self.bn2 = nn.Conv2d(width, width, 3, stride, 1, bias=False), _bn(width)
    self.conv3, self.bn3 = nn.Conv2d(width, cout, 1, bias=False), _bn(cout)
    self.downsample = (
      nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), _bn(cout)) if stride != 1 or cin != cout else None
    )

  def forward(self, x):
    y = F.relu(self.bn1(self.conv1(x)))
    y = F.relu(self.bn2(self.conv2(y)))
    y = self.bn3(self.conv3(y))
    return F.relu(y + (self.downsample(x) if self.downsample is not None else x))


class ResNet50(nn.Module):
  num_features = 2048

  def __init__(self):
    super().__init__()
    self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), _bn(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
    layers, cin = [], 64
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
      for i in range(blocks):
        layers.append(Bottleneck(cin, width, stride if i == 0 else 1))
        cin = width * 4
    self.layers = nn.Sequential(*layers)

  def forward(self, x):
    return self.layers(self.stem(x)).mean((2, 3))


def _cbr(cin, cout, k, s=1, g=1):
  return nn.Sequential(nn.Conv2d(cin, cout, k, s, (k - 1) // 2, groups=g, bias=False), _bn(cout), nn.ReLU6())


class InvertedResidual(nn.Module):
  def __init__(self, cin, cout, stride, t):
    super().__init__()
    h = cin * t
    layers = ([_cbr(cin, h, 1)] if t != 1 else []) + [
      _cbr(h, h, 3, stride, h),
      nn.Conv2d(h, cout, 1, bias=False),
      _bn(cout),
    ]
    self.conv, self.res = nn.Sequential(*layers), stride == 1 and cin == cout

  def forward(self, x):
    return x + self.conv(x) if self.res else self.conv(x)


class MobileNetV2(nn.Module):
  num_features = 1280

  def __init__(self):
    super().__init__()
    layers, cin = [_cbr(3, 32, 3, 2)], 32
    for t, c, n, s in (
      (1, 16, 1, 1),
      (6, 24, 2, 2),
      (6, 32, 3, 2),
      (6, 64, 4, 2),
      (6, 96, 3, 1),
      (6, 160, 3, 2),
      (6, 320, 1, 1),
    ):
      for i in range(n):
        layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
        cin = c
    self.features = nn.Sequential(*layers, _cbr(cin, 1280, 1))

  def forward(self, x):
    return self.features(x).mean((2, 3))


class Pretrained(nn.Module):
  """A pooled-feature backbone with jaxface's two heads (dense 128, ReLU, dropout 0.3, 1 unit)."""

  def __init__(self, backbone, features, hidden=128, dropout=0.3):
    super().__init__()
    self.backbone = backbone
    head = lambda: nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1))
    self.age, self.gender = head(), head()

  def forward(self, x):
    f = self.backbone(x)
    return self.age(f)[:, 0], self.gender(f)[:, 0]


def make_model(arch: str, image_size: int) -> tuple[nn.Module, str]:
  if arch == "custom":
    return Custom(image_size), "torch.nn port of jaxface's custom CNN"
  try:
    import torchvision

    tv = getattr(torchvision.models, arch)()
    if arch == "resnet50":
      tv.fc = nn.Identity()
      return Pretrained(tv, 2048), "torchvision"
    return Pretrained(nn.Sequential(tv.features, nn.AdaptiveAvgPool2d(1), nn.Flatten()), 1280), "torchvision"
  except ImportError:
    net = {"resnet50": ResNet50, "mobilenet_v2": MobileNetV2}[arch]()
    return Pretrained(net, net.num_features), "torch.nn port (no torchvision here)"


# --- measuring ----------------------------------------------------------------

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def device_name(dev: torch.device) -> str:
  if dev.type == "cuda":
    return f"1x {torch.cuda.get_device_name(dev)}"
  return f"1x cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def sync(dev):
  return (lambda _: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda _: None)


def train_row(arch, batch, size, dtype, compiled, dev, steps):
  torch.manual_seed(0)
  model, source = make_model(arch, size)
  model = model.to(dev, memory_format=torch.channels_last).train()
  opt = torch.optim.Adam(model.parameters(), lr=1e-3)
  norm = arch != "custom"
  mean, std = MEAN.to(dev), STD.to(dev)
  images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, device=dev).contiguous(
    memory_format=torch.channels_last
  )
  age = torch.randint(1, 90, (batch,), device=dev).float()
  gender = torch.randint(0, 2, (batch,), device=dev).float()
  use_bf16 = dtype == "bfloat16"

  def step():
    opt.zero_grad(set_to_none=True)
    x = images.float() / 255
    x = (x - mean) / std if norm else x
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_bf16):
      pred_age, logit = model(x)
      loss = 0.1 * F.mse_loss(pred_age.float(), age) + F.binary_cross_entropy_with_logits(logit.float(), gender)
    loss.backward()
    opt.step()
    return loss

  fn = torch.compile(step) if compiled else step
  flops = None
  try:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
      step()
    flops = float(fc.get_total_flops())
  except Exception:  # the counter is best-effort; throughput does not depend on it
    pass
  if dev.type == "cuda":
    torch.cuda.reset_peak_memory_stats(dev)
  first, times = common.timed(fn, steps, warmup=1, sync=sync(dev))
  mem = torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else None
  return common.row(
    "torch", arch, batch, size, dtype, device_name(dev), first, times, flops,
    compile=compiled, channels_last=True, model_source=source, peak_mem_bytes=mem,
  )  # fmt: skip


def inference_rows(arch, size, dev, batch_sizes, steps):
  torch.manual_seed(0)
  model, source = make_model(arch, size)
  model = model.to(dev, memory_format=torch.channels_last).eval()
  rows = []
  for b in batch_sizes:
    x = torch.rand(b, 3, size, size, device=dev).contiguous(memory_format=torch.channels_last)

    def fwd(x=x):
      with torch.inference_mode():
        return model(x)

    first, times = common.timed(fwd, steps, warmup=2, sync=sync(dev))
    r = common.row(
      "torch",
      arch,
      b,
      size,
      "float32",
      device_name(dev),
      first,
      times,
      None,
      model_source=source,
      threads=torch.get_num_threads(),
    )
    r["latency_ms_median"] = r["step_ms_median"]
    rows.append(r)
  return rows


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--mode", choices=["train", "inference"], default="train")
  p.add_argument("--archs", nargs="+", default=["custom", "resnet50", "mobilenet_v2"])
  p.add_argument("--batch-sizes", nargs="+", type=int, default=None)
  p.add_argument("--image-sizes", nargs="+", type=int, default=[128])
  p.add_argument("--dtypes", nargs="+", default=["float32"])
  p.add_argument("--compile", nargs="+", default=["off"], choices=["off", "on"])
  p.add_argument("--skip", nargs="*", default=[], help="arch:image_size pairs to leave out")
  p.add_argument("--steps", type=int, default=5)
  p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's own)")
  p.add_argument("--name")
  a = p.parse_args()
  if a.threads:
    torch.set_num_threads(a.threads)
  dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
  t0 = time.perf_counter()
  rows = []
  if a.mode == "train":
    for arch, b, s, d, c in itertools.product(a.archs, a.batch_sizes or [32], a.image_sizes, a.dtypes, a.compile):
      if f"{arch}:{s}" in a.skip:
        continue
      r = train_row(arch, b, s, d, c == "on", dev, a.steps)
      print(
        f"{arch:13s} b{b:<4d} {s}px {d:9s} compile={c:3s} {r['images_per_s']:9.1f} img/s  step {r['step_ms_median']:9.1f} ms",
        flush=True,
      )
      rows.append(r)
  else:
    for arch, s in itertools.product(a.archs, a.image_sizes):
      for r in inference_rows(arch, s, dev, a.batch_sizes or [1, 64], a.steps):
        print(
          f"{arch:13s} b{r['batch']:<4d} {s}px {r['images_per_s']:9.1f} img/s  latency {r['step_ms_median']:8.2f} ms  threads {r['threads']}",
          flush=True,
        )
        rows.append(r)
  meta = {
    "benchmark": f"{a.mode}_throughput" if a.mode == "train" else "inference", "framework": "torch",
    "command": "python " + " ".join(map(shlex.quote, sys.argv)), "torch": torch.__version__,
    "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), "platform": dev.type,
    "host": common.host(),
    "wall_s": round(time.perf_counter() - t0, 1),
  }  # fmt: skip
  common.write(a.name or f"{a.mode}_torch_{dev.type}", rows, meta)


if __name__ == "__main__":
  main()
