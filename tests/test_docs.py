"""The docs site builds with MkDocs in strict mode (a broken link, a missing anchor or a page left out of the nav
fails), with its API reference; its generated parts (the layout, the config fields) match the package; and the README
is a front page whose links all lead somewhere."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_site_builds_strictly(tmp_path):
  pytest.importorskip("mkdocs")
  p = subprocess.run(
    [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
    cwd=ROOT, capture_output=True, text=True, env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
  )  # fmt: skip
  assert p.returncode == 0, p.stderr[-3000:]
  assert (tmp_path / "site" / "bulk" / "index.html").exists()
  api = (tmp_path / "site" / "api" / "index.html").read_text()
  assert "predict_many" in api and "augment_quality" in api  # mkdocstrings rendered Predictor; the config table


def test_the_generated_docs_match_the_package(tmp_path, monkeypatch, capsys):
  """docs/generate.py --check; and a module added to the package makes the layout stale."""
  import importlib.util

  spec = importlib.util.spec_from_file_location("generate", ROOT / "docs" / "generate.py")
  generate = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(generate)
  assert generate.main(["--check"]) == 0, capsys.readouterr().err
  package = tmp_path / "jaxface"
  (package / "xla").mkdir(parents=True)
  (package / "xla" / "__init__.py").write_text('"""XLA helpers."""\n')
  (package / "xla" / "new.py").write_text('"""A module added since the docs were made."""\n')
  monkeypatch.setattr(generate, "PACKAGE", package)
  assert "`new.py`: A module added since the docs were made." in generate.layout()


def test_the_readme_is_a_front_page_whose_links_resolve():
  text = (ROOT / "README.md").read_text()
  assert len(text.splitlines()) <= 200
  for target in re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", text):
    if not target.startswith(("http://", "https://")):
      assert (ROOT / target).exists(), f"README links to {target}, which does not exist"
