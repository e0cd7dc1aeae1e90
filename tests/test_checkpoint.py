"""Checkpoints across processes: each process restores its own data iterator position."""

import json
import subprocess
import sys

import portpicker

CHILD = r"""
import json, sys
import jax
import numpy as np
import grain
jax.distributed.initialize(coordinator_address=sys.argv[1], num_processes=2, process_id=int(sys.argv[2]))
from jax.sharding import NamedSharding, PartitionSpec as P
from jaxface import sharding
from jaxface.data import pipeline
from jaxface.checkpoint import Checkpointer

i = jax.process_index()
mesh = sharding.data_mesh(jax.devices())
state = {"w": jax.make_array_from_process_local_data(NamedSharding(mesh, P()), np.arange(3.0))}

def iterator():
  src = [{"image": np.zeros((2, 2, 3), np.uint8), "age": k, "gender": 0} for k in range(40)]
  ds = pipeline.train_dataset(src, batch_size=2, seed=0, num_epochs=1, shard_index=i, shard_count=2)
  return iter(ds.to_iter_dataset())

it = iterator()
for _ in range(2 + 3 * i):  # the processes stop at different positions
  next(it)
want = next(it)["age"].tolist()
ck = Checkpointer(sys.argv[3])
fresh = iterator()
for _ in range(2 + 3 * i):
  next(fresh)
ck.save(1, state, fresh, {"epoch": 0}, {"val_age_mae": 1.0})
ck.close()
ck = Checkpointer(sys.argv[3])
restored_it = iterator()
restored, meta = ck.restore(1, jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding), state), restored_it)
ck.close()
print(json.dumps({"process": i, "want": want, "got": next(restored_it)["age"].tolist(), "w": np.asarray(restored["w"].addressable_data(0)).tolist()}))
"""


def test_each_process_resumes_its_own_iterator(tmp_path):
  addr = f"127.0.0.1:{portpicker.pick_unused_port()}"
  env_code = ["-c", CHILD, addr]
  procs = [
    subprocess.Popen(
      [sys.executable, *env_code, str(i), str(tmp_path / "ckpt")],
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
    )
    for i in range(2)
  ]
  try:
    outs = [p.communicate(timeout=180) for p in procs]
  finally:
    for p in procs:
      p.kill()
  for p, (_, err) in zip(procs, outs, strict=True):
    assert p.returncode == 0, err[-3000:]
  results = sorted((json.loads(out.strip().splitlines()[-1]) for out, _ in outs), key=lambda r: r["process"])
  assert results[0]["want"] != results[1]["want"]
  for r in results:
    assert r["got"] == r["want"], r
    assert r["w"] == [0.0, 1.0, 2.0]
  assert sorted(p.name for p in (tmp_path / "ckpt" / "1" / "data").glob("process_*")) == [
    "process_0-of-2.json",
    "process_1-of-2.json",
  ]
