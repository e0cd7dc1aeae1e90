"""The numbers in the README's and the docs' prose, written again from their results files: a stale sentence fails.

(The tables are generated, and tested, by experiments/results_table.py and
benchmarks/make_table.py; this covers the sentences around them.)
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXP = ROOT / "experiments" / "results"
BENCH = ROOT / "benchmarks" / "results"


def load(path: Path) -> dict:
  return json.loads(path.read_text())


def ev(run: str, split: str = "validation") -> dict:
  return load(EXP / run / f"eval_{split}.json")


def best_epoch(run: str) -> tuple[int, int]:
  h = load(EXP / run / "history.json")
  return min(h, key=lambda e: e["val_age_mae"])["epoch"], len(h)


def pct(x: float) -> str:
  return f"{100 * x:.1f} %"


def claims() -> list[tuple[str, str]]:
  """(id, the sentence as the files say it)."""
  mnv2, reg = ev("cpu_subset5000/mobilenet_v2"), ev("cpu_subset5000_regression/mobilenet_v2")
  lr01 = ev("cpu_subset5000_backbone_lr_0.1/mobilenet_v2")
  reg_last = load(EXP / "cpu_subset5000_regression/mobilenet_v2/history.json")[-1]
  full, cust = ev("full/faceres", "test"), ev("full/custom", "test")
  out = [
    ("mobilenet_v2 distribution", "age MAE {:.2f} and gender {} at its best epoch ({} of {})".format(
      mnv2["age_mae"], pct(mnv2["gender_acc"]), *best_epoch("cpu_subset5000/mobilenet_v2"))),
    ("mobilenet_v2 regression", "gave {:.2f} and {} (best epoch {} of {})".format(
      reg["age_mae"], pct(reg["gender_acc"]), *best_epoch("cpu_subset5000_regression/mobilenet_v2"))),
    ("mobilenet_v2 backbone 0.1x", f"{lr01['age_mae']:.2f} and {pct(lr01['gender_acc'])} with the backbone at 0.1x"),
    ("mobilenet_v2 underfits", f"(training accuracy {pct(reg_last['train_gender_acc'])} at the last epoch)"),
    ("faceres full", "**{:.2f} years and {} on the frozen test split**, its 90 % interval covering {} at {:.1f} years "
     "wide. That is ahead of the custom CNN's {:.2f}, {} and {:.1f} years".format(
      full["age_mae"], pct(full["gender_acc"]), pct(full["interval"]["coverage"]), full["interval"]["mean_width"],
      cust["age_mae"], pct(cust["gender_acc"]), cust["interval"]["mean_width"])),
  ]  # fmt: skip
  # Each results file is read unconditionally: one that is missing fails the collection, never a silent skip.
  a = load(BENCH / "abuse_cpu.json")["rows"][0]
  f, sizes, slow = a["fuzz"], a["size"], a["slow"]
  out += [
    ("abuse fuzz", f"{f['uploads']:,} generated uploads, {f['responses_5xx']} answers of 500 or more"),
    ("abuse size", "a 1 GB body is refused with {} (RSS growth {:.0f} MB with a Content-Length, {:.0f} MB "
     "chunked)".format(sizes[0]["status"], sizes[0]["rss_growth_mb"], sizes[1]["rss_growth_mb"])),
    ("abuse slow", "{} connections sending a byte a second: a normal request's median latency {:.2f} s against "
     "{:.2f} s unloaded".format(slow["slow_connections"], slow["loaded_median_s"], slow["unloaded_median_s"])),
  ]  # fmt: skip
  for r in a["load"]:
    out.append((f"abuse load {r['request']}", "{} clients for {:.0f} s on the {}: {} requests, {} failed, p50 {:.1f} s, "
                "p99 {:.1f} s".format(r["clients"], r["seconds"], r["request"], r["requests"], r["failures"],
                                     r["latency_p50_ms"] / 1000, r["latency_p99_ms"] / 1000)))  # fmt: skip
  faults = BENCH / "faults_cpu.json"
  k = load(faults)["rows"][0]["kill"]
  equal = sum(r["equal"] for r in k)
  p0 = load(faults)["rows"][0]["process_0_killed"]
  out.append(("faults kill", f"{len(k)} runs killed with `kill -9` at random moments: {equal} of {len(k)} ended"))
  out.append(
    ("faults process 0", f"process 1 stopped {p0['process_1_stopped_after_s']} s later (exit {p0['process_1_rc']},")
  )
  m = load(BENCH / "serve_memory_cpu.json")["rows"][0]
  f, r, c = m["flood"], m["refused"], m["chunked"]
  out += [
    ("memory flood", "{} requests of {} blank 6000 x 6000 PNGs at once ({} MB sent): answers {}, the server's peak "
     "RSS {:.0f} MB (from {:.0f} MB)".format(f["requests"], f["files_each"], f["sent_mb"], ", ".join(
       f"{n} x {k}" for k, n in sorted(f["statuses"].items())), f["rss_peak_mb"], f["rss_before_mb"])),
    ("memory refused", "a request announcing {} MB to a server with no place free: {} after {} MB of its body".format(
      r["announced_mb"], r["status"], r["sent_before_answer_mb"])),
    ("memory chunked", "a chunked 1 GB body: {} after {:.0f} MB, and the connection closed".format(
      c["status"], c["bytes_sent"] / 2**20)),
  ]  # fmt: skip
  v = {row["name"]: row for row in load(BENCH / "video_memory_cpu.json")["rows"]}
  clip, none, faces = v["clip_10s"], v["hour_no_face"], v["hour_face_every_minute"]
  out.append(
    ("video memory", "an hour of video with no face peaks at {:.0f} MB, and an hour with a face every minute at {:.0f} "
     "MB ({} records, written as they came), against {:.0f} MB for a 10-second clip".format(
       none["rss_peak_mb"], faces["rss_peak_mb"], faces["records"], clip["rss_peak_mb"]))
  )  # fmt: skip
  return out


@pytest.mark.parametrize("name, sentence", claims(), ids=[c[0] for c in claims()])
def test_the_readme_and_docs_say_what_the_files_hold(name, sentence):
  text = " ".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
  assert re.sub(r"\s+", " ", sentence) in re.sub(r"\s+", " ", text), f"the README or docs/ should say: {sentence}"
