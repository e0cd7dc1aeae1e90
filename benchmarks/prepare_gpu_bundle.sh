#!/usr/bin/env bash
# What benchmarks/gpu_suite.sh needs on the lent GPU machine, which has JAX 0.11.2 (CUDA 13),
# PyTorch and torchvision, other versions of Flax, Optax and Orbax, no grain or TFDS, and cannot
# fetch anything:
#   .whl/  the missing wheels (pip download, Python 3.12, manylinux x86_64)
#   .gpu/UTKFace_subset5000.tar.gz  the 5,000 subset5000 images only (~22 MB, under the 64 MiB
#          carry limit); building subset5000 from it gives the same splits as from the full
#          archive (the split depends only on the pool of images and the seed).
# Both folders are git-ignored (never commit them). Then, with the device tool:
#   run(command="bash benchmarks/gpu_suite.sh", carry=[".whl", ".gpu"], timeout_s=600)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-${JAXFACE_DATA:?give UTKFace.tar.gz or set JAXFACE_DATA}}
mkdir -p .whl .gpu
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
plat="--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64"
# Versions from constraints.txt (the GPU image has flax, optax and orbax at versions of its own),
# but flax 0.12.12: 0.12.8 fails to import with jax 0.11.2 (jax.experimental.hijax.HiPrimitive is
# gone); rehearsed here in a Python 3.12 venv with jax 0.11.2 (CPU).
for pkg in flax==0.12.12 optax==0.2.8 orbax-checkpoint==0.12.8 grain==0.2.18 tensorflow-datasets==4.9.10 \
           array-record==0.8.6 tensorflow-metadata==1.21.0 dm-tree==0.1.10 immutabledict==4.3.1 simple-parsing==0.1.9 \
           docstring-parser==0.18.0 termcolor==3.3.0 toml==0.10.2 googleapis-common-protos==1.76.0 portpicker==1.6.0; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $plat -d .whl "$pkg"
done
python3 -m pip wheel -q --no-deps -w .whl promise==2.3  # an sdist only: built here, pure Python
python3 - "$data" <<'PY'
import io, sys, tarfile
from jaxface.data import prepare
b = prepare.prepare(sys.argv[1], "subset5000")
names = {ex["file_name"].decode() for s in ("train", "validation") for ex in b.as_data_source(s)}
with tarfile.open(sys.argv[1]) as src, tarfile.open(".gpu/UTKFace_subset5000.tar.gz", "w:gz") as dst:
  for m in src:
    if m.isfile() and m.name.rsplit("/", 1)[-1] in names:
      dst.addfile(m, io.BytesIO(src.extractfile(m).read()))
print(f"wrote .gpu/UTKFace_subset5000.tar.gz with {len(names)} images")
PY
du -sh .whl .gpu
