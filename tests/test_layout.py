"""The floor plan, held: the import map of ``jaxface`` has no cycles, nothing in ``faces/`` imports from ``data/``,
and the top level holds only the verbs and the spine (docs/development.md lists them, generated)."""

import ast
import importlib.util
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "jaxface"
SPINE = {"checkpoint", "cli", "config", "distributed", "fetch", "figures", "files", "metrics", "provenance", "sharding"}


def _generate():
  spec = importlib.util.spec_from_file_location("generate", PACKAGE.parent / "docs" / "generate.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _name(path: Path) -> str:
  parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_map() -> dict[str, set[str]]:
  """Each module -> the jaxface modules it imports when it is imported (module level, ``if`` blocks included; imports
  inside functions are made when called, and may run the other way)."""
  modules = {_name(p): p for p in PACKAGE.rglob("*.py")}
  graph = {}
  for name, path in modules.items():
    out = set()
    for node in ast.parse(path.read_text()).body:
      for n in node.body if isinstance(node, ast.If) else [node]:
        if isinstance(n, ast.Import):
          out |= {a.name for a in n.names if a.name.startswith("jaxface")}
        elif isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("jaxface"):
          out |= {f"{n.module}.{a.name}" if f"{n.module}.{a.name}" in modules else n.module for a in n.names}
    graph[name] = out - {name}
  return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
  """The strongly connected components of more than one module (Tarjan)."""
  index, low, stack, on, found = {}, {}, [], set(), []

  def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on.add(v)
    for w in graph.get(v, ()):
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      comp = []
      while True:
        w = stack.pop()
        on.discard(w)
        comp.append(w)
        if w == v:
          break
      if len(comp) > 1:
        found.append(sorted(comp))

  for v in graph:
    if v not in index:
      visit(v)
  return found


def test_the_import_map_has_no_cycles():
  graph = import_map()
  assert len(graph) > 100 and sum(map(len, graph.values())) > 200  # the whole package was read
  assert cycles(graph) == []
  assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]  # the check finds one


def test_nothing_in_faces_imports_from_data():
  """data/ reads pictures through faces/ (faces.image); an import back up would make the two one tangle."""
  back = {m: sorted(i for i in imports if i.startswith("jaxface.data")) for m, imports in import_map().items()}
  assert {m: v for m, v in back.items() if m.startswith("jaxface.faces") and v} == {}


def test_the_top_level_holds_the_verbs_and_the_spine_only():
  generate = _generate()
  top = {p.stem: p for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}
  verbs = {name for name, p in top.items() if generate.is_verb(p)}
  assert {"train", "evaluate", "predict", "serve", "export", "convert"} <= verbs
  assert set(top) - verbs == SPINE, "a new top-level module: a verb, the spine (add it to SPINE), or a folder's"
