"""How long notebook 5 takes, run top to bottom the way nbconvert runs it.

    .venv/bin/python benchmarks/notebook_time.py                 # CRM_EXPLORE_ORDERS=1000000
    CRM_EXPLORE_ORDERS=200000 .venv/bin/python benchmarks/notebook_time.py

`make bench` runs it after the loading/reading benchmark. The notebook empties and reloads
its own database (`crm_analysis`) on the local TiDB the environment names (TIDB_PORT ...);
its outputs stay in memory, never written to the committed notebook. Prints the wall time
from kernel start to the last cell, the slowest cells, and one NOTEBOOK line.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime
from pathlib import Path

import nbformat
from bench import server_pid, settle
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "05_explore_orders.ipynb"
DEFAULT_ORDERS = "1000000"
#: Cells shown by their own time.
SLOWEST = 5


def cell_seconds(cell: nbformat.NotebookNode) -> float:
    """How long one executed cell ran, from the timing nbclient records in its metadata."""
    timing = cell.get("metadata", {}).get("execution", {})
    started, ended = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not started or not ended:
        return 0.0
    return (datetime.fromisoformat(ended.replace("Z", "+00:00"))
            - datetime.fromisoformat(started.replace("Z", "+00:00"))).total_seconds()


def main() -> int:
    orders = os.environ.setdefault("CRM_EXPLORE_ORDERS", DEFAULT_ORDERS)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # Run after `bench.py` by `make bench`: start once the server is done with its loads.
    settled = settle(server_pid())
    load = os.getloadavg()
    # Executed in memory: the outputs are never written anywhere.
    client = NotebookClient(notebook, timeout=1800, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}},
                            record_timing=True)
    started = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - started
    cells = [(cell_seconds(cell), index, "".join(cell.source).splitlines()[0][:70])
             for index, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    print(f"Notebook 5 at CRM_EXPLORE_ORDERS={int(orders):,}: {seconds:.1f} s from kernel start "
          f"to the last cell; load average before {load[0]:.2f}, after {os.getloadavg()[0]:.2f}; "
          f"server settled in {settled:.0f} s first")
    for cell_time, index, first_line in sorted(cells, reverse=True)[:SLOWEST]:
        print(f"  cell {index:>2} {cell_time:6.1f} s  {first_line}")
    print(f"NOTEBOOK notebook5_seconds={seconds:.1f} orders={orders}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
