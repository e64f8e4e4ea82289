"""Run every notebook headless into a build folder (notebook + HTML) and report the result.

`make run` calls this: python -m crm_helpers.devtools.notebook_run [BUILD_DIR]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter

from crm_helpers.config import PROJECT_ROOT

NOTEBOOKS = PROJECT_ROOT / "notebooks"
RESULT_TAG = "tutorial-result"


def run_notebooks(build_dir: Path, notebooks: list[Path] | None = None) -> dict[str, float]:
    """Execute the notebooks in order, writing each executed copy and its HTML to `build_dir`."""
    build_dir.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    for path in notebooks or sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        started = time.monotonic()
        NotebookClient(notebook, timeout=1800, kernel_name="python3",
                       resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
        seconds[path.name] = time.monotonic() - started
        nbformat.write(notebook, build_dir / path.name)
        html, _ = HTMLExporter().from_notebook_node(notebook)
        (build_dir / path.with_suffix(".html").name).write_text(html)
        print(f"{path.name}: ran in {seconds[path.name]:.1f} s", flush=True)
    return seconds


def tagged_output(notebook_path: Path, tag: str = RESULT_TAG) -> str:
    """The printed output of the cell carrying `tag` in an executed notebook."""
    notebook = nbformat.read(notebook_path, as_version=4)
    for cell in notebook.cells:
        if tag in cell.metadata.get("tags", []):
            return "".join(out.get("text", "") for out in cell.outputs
                           if out.output_type == "stream").strip()
    raise LookupError(f"No cell tagged {tag!r} in {notebook_path}.")


def main(argv: list[str] | None = None) -> int:
    """Run all notebooks and print the tutorial's join result from notebook 04."""
    args = sys.argv[1:] if argv is None else argv
    build_dir = Path(args[0]) if args else PROJECT_ROOT / "build"
    run_notebooks(build_dir)
    print(f"Executed notebooks and HTML are in {build_dir}")
    print("Tutorial result:", tagged_output(build_dir / "04_crm_application.ipynb"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
