"""The package's module graph as a Mermaid flowchart, generated from the imports so that it cannot drift.

    python tools/modgraph.py                          # print the diagram
    python tools/modgraph.py --check FILE             # exit 1 unless FILE's mermaid block is the generated one
    python tools/modgraph.py --update                 # write it into nbs/index.ipynb, then regenerate README.md

The modules are `diffnotes/*.py` (not `_*`); an arrow `a --> b` says that `b` imports `a` (at module level or inside a
function, as `from .a import` or `from diffnotes.a import`), so the arrows run the way the layers build on each other.
Only the arrows that no longer path implies are drawn (the transitive reduction): `cli` imports `checks` too, but it
also reaches it through `config`. Each module sits in its layer's box; `LAYERS` orders them, and a module without a
layer is an error, so a new module must be placed here before the diagram (and the tests) accept it.
The notebook fences the block as ```{mermaid} (Quarto renders that), the README as ```mermaid (GitHub renders that):
`tools/readme.py` turns the one into the other.
"""
import argparse, ast, difflib, json, re, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = 'diffnotes'
INDEX = ROOT/'nbs'/'index.ipynb'

# Where each module sits: a module imports only modules of a lower number (tests/test_repo.py checks it).
LAYERS = {'checks': -1, 'schedules': 0, 'weights': 1, 'diffusion': 1, 'timesteps': 1,
          'models': 0, 'data': 0, 'eval': 1, 'fidelity': 1.1, 'features': 1.2,
          'callbacks': 2, 'ema': 2.1, 'grids': 1.8, 'denoiser': 1.9, 'samplers': 2, 'consistency': 2.05,
          'cm_training': 2.08,
          'config': 2.5, 'distributed': 3, 'files': 3.1, 'learner': 3.2, 'checkpoints': 3.3, 'sampling': 3.4,
          'runs': 3.5, 'studies': 3.6, 'export': 3.7,
          'cli': 4}
MATH = ('schedules', 'weights', 'diffusion', 'timesteps')
# The boxes of the diagram, in reading order: STYLE.md's layers.
GROUPS = {'math': ('checks',) + MATH,
          'training': ('callbacks', 'ema', 'cm_training'),
          'sampling': ('grids', 'denoiser', 'samplers', 'consistency'),
          'models, data, eval': ('models', 'data', 'eval', 'fidelity', 'features'),
          'runs': ('config', 'distributed', 'files', 'learner', 'checkpoints', 'sampling', 'runs', 'studies', 'export'),
          'cli': ('cli',)}
assert sorted(m for g in GROUPS.values() for m in g) == sorted(LAYERS)

def imports(top_level=False, root=ROOT):
    ("{module: [(imported module, [names], ours)]} for the package's modules: every `import` and `from … import` "
     "(only the module-level ones with `top_level`); `ours` marks the package's own modules")
    out = {}
    for f in sorted((root/PKG).glob('*.py')):
        if f.stem.startswith('_'): continue
        edges, tree = [], ast.parse(f.read_text())
        for node in (tree.body if top_level else ast.walk(tree)):
            if isinstance(node, ast.ImportFrom) and node.module:
                own = node.level > 0 or node.module.startswith(PKG)
                mod = node.module.removeprefix(PKG + '.').lstrip('.') if own else node.module
                edges.append((mod, [a.name for a in node.names], own))
            elif isinstance(node, ast.Import): edges += [(a.name, [], False) for a in node.names]
        out[f.stem] = edges
    return out

def module_graph(root=ROOT):
    "{module: sorted modules of the package it imports}, for the modules that exist"
    imps = imports(root=root)
    return {m: sorted({e for e, _, own in edges if own and e in imps and e != m}) for m, edges in imps.items()}

def reduction(graph):
    "The transitive reduction of an acyclic `graph`: drop `a -> c` when another path leads from `a` to `c`"
    def reach(m, seen):
        for d in graph[m]:
            if d not in seen: seen.add(d); reach(d, seen)
        return seen
    below = {m: reach(m, set()) for m in graph}
    return {m: [d for d in deps if not any(d in below[o] for o in deps if o != d)] for m, deps in graph.items()}

def mermaid(root=ROOT):
    "The diagram's text (without fences): one box per layer, an arrow from each module to those that import it"
    graph = module_graph(root)
    unplaced = sorted(set(graph) - set(LAYERS))
    if unplaced: raise SystemExit(f"modules without a layer: {unplaced}; add them to LAYERS and GROUPS in {__file__}")
    lines = ['flowchart TB']
    for i, (name, mods) in enumerate(GROUPS.items()):
        present = sorted((m for m in mods if m in graph), key=lambda m: (LAYERS[m], mods.index(m)))
        if not present: continue
        lines += [f'  subgraph L{i}["{name}"]', '    direction LR'] + [f'    {m}' for m in present] + ['  end']
    order = lambda m: (LAYERS[m], m)
    arrows = sorted((order(d), order(m)) for m, deps in reduction(graph).items() for d in deps)
    lines += [f'  {d} --> {m}' for (_, d), (_, m) in arrows]
    return '\n'.join(lines) + '\n'

FENCE = re.compile(r'^```(?:mermaid|\{mermaid\})[ \t]*\n(.*?)^```[ \t]*$', re.S | re.M)

def text_of(path):
    "The text of a Markdown file, or the markdown cells of a notebook"
    path = Path(path)
    if path.suffix != '.ipynb': return path.read_text()
    cells = json.loads(path.read_text())['cells']
    return '\n\n'.join(''.join(c['source']) for c in cells if c['cell_type'] == 'markdown')

def diagram_in(path):
    "The body of the first ```mermaid (or ```{mermaid}) block of `path`, or None"
    m = FENCE.search(text_of(path))
    return m.group(1) if m else None

def check(path, root=ROOT):
    "An empty string when `path` holds the generated diagram, else what differs"
    want, have = mermaid(root), diagram_in(path)
    if have is None: return f"{path} has no ```mermaid block"
    if have == want: return ''
    return ''.join(difflib.unified_diff(have.splitlines(True), want.splitlines(True), str(path), 'generated'))

def update(nb_path=INDEX, root=ROOT):
    "Write the generated diagram into the ```{mermaid} block of the notebook `nb_path` (the cell keeps its id)"
    nb = json.loads(Path(nb_path).read_text())
    cells = [c for c in nb['cells'] if c['cell_type'] == 'markdown' and FENCE.search(''.join(c['source']))]
    if len(cells) != 1: raise SystemExit(f"{nb_path} needs one markdown cell with a mermaid block; it has {len(cells)}")
    src = FENCE.sub(lambda m: '```{mermaid}\n' + mermaid(root) + '```', ''.join(cells[0]['source']), count=1)
    cells[0]['source'] = src.splitlines(True)
    Path(nb_path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--check', metavar='FILE', help="exit 1 unless FILE's mermaid block is the generated diagram")
    p.add_argument('--update', action='store_true', help='write it into nbs/index.ipynb and regenerate README.md')
    args = p.parse_args(argv)
    if args.check:
        diff = check(args.check)
        if diff: sys.exit(f"the module graph in {args.check} is out of date; run `tools/modgraph.py --update`\n{diff}")
        return print(f"the module graph in {args.check} is up to date")
    if args.update:
        update()
        subprocess.run([sys.executable, str(ROOT/'tools'/'readme.py')], cwd=ROOT, check=True)
        return print(f"wrote the module graph into {INDEX.relative_to(ROOT)}")
    print(mermaid(), end='')

if __name__ == '__main__': main()
