"""Regenerate README.md from nbs/index.ipynb without Quarto.

    python tools/readme.py           # write README.md (and its figures in README_files/)
    python tools/readme.py --check   # exit 1 if README.md is not what nbs/index.ipynb generates

nbdev's own `nbdev-readme` renders with Quarto. This does the same job with nbdev's processing step
(`nbdev.serve.proc_nbs`, which drops hidden cells and nbdev directives and turns the title cell into
front matter) followed by nbconvert's markdown export of the stored outputs. Nothing is executed. A diagram fenced
```{mermaid} for Quarto is fenced ```mermaid for GitHub.
"""
import argparse, contextlib, difflib, fcntl, re, sys
from pathlib import Path
import nbformat, yaml
from nbconvert import MarkdownExporter
from nbdev.config import get_config
from nbdev.serve import proc_nbs

FILES_DIR = 'README_files'

def _front_matter(nb):
    "Split the processed notebook into its front matter (title, description) and the remaining cells"
    c = nb.cells[0] if nb.cells else None
    if c is None or c.cell_type != 'raw' or not c.source.startswith('---'): return {}, nb.cells
    return yaml.safe_load(c.source.strip().strip('-')) or {}, nb.cells[1:]

@contextlib.contextmanager
def proc_lock(cfg):
    ("Hold `_proc.lock` while using nbdev's `_proc` cache: `proc_nbs(force=True)` empties and refills that one "
     "folder, so two builds at once (this and tools/preview.py, as two test workers run them) would break each other")
    with open(cfg.config_path/'_proc.lock', 'w') as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield

def render(cfg=None):
    "Markdown text and figure files {relative path: bytes} of the README that `cfg.readme_nb` generates"
    cfg = cfg or get_config()
    with proc_lock(cfg):
        cache = proc_nbs(str(cfg.nbs_path), file_glob=cfg.readme_nb, n_workers=0, force=True)
        nb = nbformat.read(cache/cfg.readme_nb, as_version=4)
    fm, nb.cells = _front_matter(nb)
    head = f"# {fm['title']}\n\n" if 'title' in fm else ''
    if 'description' in fm: head += f"> {fm['description']}\n\n"
    nb.metadata['language_info'] = {'name': 'python'}  # code blocks fenced as ```python
    body, res = MarkdownExporter().from_notebook_node(nb, resources={'output_files_dir': FILES_DIR})
    body = re.sub(r'\n{3,}', '\n\n', re.sub(r'[ \t]+\n', '\n', body))
    body = re.sub(r'^```\{mermaid\}$', '```mermaid', body, flags=re.M)  # Quarto's diagram fence as GitHub's
    nbs = cfg.nbs_path.relative_to(cfg.config_path).as_posix()
    site = '/'.join(x for x in (cfg.doc_host.rstrip('/'), cfg.doc_baseurl.strip('/')) if x)
    body = re.sub(r'\]\((?!https?:|/|#)([^)]+\.html(?:#[^)]*)?)\)', lambda m: f']({site}/{m.group(1)})', body)  # pages: on the site
    body = re.sub(r'\]\((?!https?:|/|#|' + FILES_DIR + r')([^)]+)\)', lambda m: f']({nbs}/{m.group(1)})', body)  # files: relative to nbs/
    return head + body.strip() + '\n', dict(res.get('outputs', {}))

def _current(root):
    files = {str(p.relative_to(root)): p.read_bytes() for p in (root/FILES_DIR).glob('*')} if (root/FILES_DIR).exists() else {}
    readme = root/'README.md'
    return (readme.read_text() if readme.exists() else ''), files

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--check', action='store_true', help='only check that README.md is up to date')
    args = p.parse_args(argv)
    cfg = get_config()
    root = cfg.config_path
    text, files = render(cfg)
    cur_text, cur_files = _current(root)
    if args.check:
        if text == cur_text and files == cur_files: return print('README.md is up to date with nbs/index.ipynb')
        diff = ''.join(difflib.unified_diff(cur_text.splitlines(True), text.splitlines(True), 'README.md', 'generated'))
        sys.exit(f"README.md is out of date with nbs/index.ipynb; run `python tools/readme.py`.\n{diff[:4000]}"
                 + ('' if files == cur_files else f"\nfigures differ: {sorted(set(files) ^ set(cur_files)) or 'contents'}"))
    for f in cur_files:
        if f not in files: (root/f).unlink()
    for f, data in files.items():
        (root/f).parent.mkdir(exist_ok=True)
        (root/f).write_bytes(data)
    (root/'README.md').write_text(text)
    print(f"wrote README.md and {len(files)} figure(s)")

if __name__ == '__main__': main()
