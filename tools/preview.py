"""Build a local HTML preview of the documentation without Quarto.

    python tools/preview.py            # writes _preview/index.html and one page per notebook
    python tools/preview.py --out DIR  # the same pages in DIR

The real site is rendered by Quarto (the GitHub deploy workflow). Where Quarto is not installed this
does the same two steps with what is: nbdev's processing step (`nbdev.serve.proc_nbs`: hidden cells and
nbdev directives removed, `show_doc` rendered, the title cell turned into front matter), then
nbconvert's HTML export of the stored outputs. Nothing is executed. Pages keep their figures as
embedded images; files the notebooks link to (nbs/figures) are copied beside them.
"""
import argparse, html, json, re, shutil, sys
from pathlib import Path
import nbformat, yaml
from nbconvert import HTMLExporter
from nbconvert.preprocessors import TagRemovePreprocessor
from nbdev.config import get_config
from nbdev.serve import proc_nbs

OUT = '_preview'

sys.path.insert(0, str(Path(__file__).parent))
from readme import _front_matter, proc_lock  # the same front-matter split as the README build, and its lock

def _order(nbs_path):
    "Pages in sidebar order, then any others"
    side = nbs_path/'sidebar.yml'
    names = []
    def walk(items):
        for it in items:
            if isinstance(it, str): names.append(it)
            elif isinstance(it, dict): walk(it.get('contents', []))
    if side.exists(): walk(yaml.safe_load(side.read_text())['website']['sidebar']['contents'])
    return names

_cell_keys = {'cell_type', 'id', 'metadata', 'source', 'outputs', 'execution_count', 'attachments'}

def _read(nb_path):
    "A processed notebook, without the bookkeeping keys nbdev adds to cells (nbformat refuses them)"
    d = json.loads(Path(nb_path).read_text())
    d['cells'] = [{k: v for k, v in c.items() if k in _cell_keys} for c in d['cells']]
    for c in d['cells']: c.get('metadata', {}).pop('execution', None)  # execnb's timings, not nbformat's schema
    for c in d['cells']:  # `#| echo: false`: Quarto shows the output alone, and so does the preview
        if c['cell_type'] == 'code' and re.search(r'^#\|\s*echo:\s*false\s*$', ''.join(c['source']), re.M):
            c.setdefault('metadata', {}).setdefault('tags', []).append('remove_input')
    return nbformat.reads(json.dumps(d), as_version=4)

def render_page(nb, exporter, name):
    "HTML of one processed notebook (read by `_read`) called `name`, with its title and description as a header"
    fm, nb.cells = _front_matter(nb)
    nb.metadata['language_info'] = {'name': 'python'}
    body, _ = exporter.from_notebook_node(nb, resources={'metadata': {'name': fm.get('title', name)}})
    head = f"<h1 class='title'>{html.escape(fm.get('title', name))}</h1>"
    if fm.get('description'): head += f"<p class='description'>{html.escape(fm['description'])}</p>"
    return body.replace('<main>', '<main>' + head, 1) if '<main>' in body else body.replace('<body', head + '<body', 1), fm

def build(out=OUT):
    cfg = get_config()
    root, nbs = cfg.config_path, cfg.nbs_path
    with proc_lock(cfg):
        cache = proc_nbs(str(nbs), n_workers=0, force=True)
        procs = {p.relative_to(cache): _read(p) for p in sorted(cache.rglob('*.ipynb'))}  # read while holding the lock
    out = root/out
    shutil.rmtree(out, ignore_errors=True); out.mkdir()
    exporter = HTMLExporter(template_name='lab')
    exporter.register_preprocessor(TagRemovePreprocessor(remove_input_tags={'remove_input'}), enabled=True)
    pages = []
    for rel, nb in procs.items():
        page, fm = render_page(nb, exporter, rel.stem)
        dest = (out/rel).with_name(re.sub(r'^\d+[a-zA-Z0-9]*_', '', rel.name)).with_suffix('.html')  # as the site names it: 01_schedules → schedules.html
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(page)
        pages.append((str(rel), dest.relative_to(out), fm.get('title', rel.stem)))
    for d in ('figures',):
        if (nbs/d).exists(): shutil.copytree(nbs/d, out/d)
    order = _order(nbs)
    pages.sort(key=lambda x: (order.index(x[0]) if x[0] in order else len(order), x[0]))
    links = '\n'.join(f"<li><a href='{html.escape(str(href))}'>{html.escape(title)}</a></li>" for _, href, title in pages)
    (out/'contents.html').write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{cfg.title} — contents</title></head>"
                                     f"<body><h1>{cfg.title}</h1><ul>{links}</ul></body></html>")
    print(f"wrote {len(pages)} pages to {out} (start at {out/'index.html'}; all pages: {out/'contents.html'})")
    return out, pages

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', default=OUT, help=f"folder for the pages, relative to the repository (default {OUT})")
    build(p.parse_args().out)
