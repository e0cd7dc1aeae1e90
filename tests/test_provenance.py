"""Provenance: which commit a result came from, and whether the code had changed since."""

import subprocess

from jaxface import provenance


def test_result_files_do_not_make_the_code_dirty(tmp_path):
  git = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True, text=True).stdout
  git("init", "-q")
  (tmp_path / "benchmarks" / "results").mkdir(parents=True)
  (tmp_path / "benchmarks" / "results" / "r.json").write_text("{}\n")
  (tmp_path / "code.py").write_text("x = 1\n")
  git("add", "-A")
  git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
  head = git("rev-parse", "HEAD").strip()
  assert provenance.git_commit(tmp_path / "benchmarks") == head
  (tmp_path / "benchmarks" / "results" / "r.json").write_text('{"rows": []}\n')  # a run writing its result
  assert provenance.git_commit(tmp_path / "benchmarks") == head
  (tmp_path / "notes.md").write_text("an untracked note is not code\n")
  assert provenance.git_commit(tmp_path / "benchmarks") == head
  (tmp_path / "new_module.py").write_text("y = 1\n")  # an uncommitted module a run may import
  assert provenance.git_commit(tmp_path / "benchmarks") == head + "+dirty"
  (tmp_path / "new_module.py").unlink()
  (tmp_path / "code.py").write_text("x = 2\n")
  assert provenance.git_commit(tmp_path / "benchmarks") == head + "+dirty"
  assert provenance.git_commit(tmp_path.parent / "not_a_repo_anywhere") == "unknown"
