"""Execute a notebook headlessly with nbclient, keeping outputs the kernel publishes after a cell's idle status.

Why (measured with Deno 2.9.6's kernel, see README "Notebooks"): the Deno kernel publishes a cell's display_data,
execute_result and stream messages on IOPub from another task than the one that publishes the cell's
`status: idle`, ordering them only by a fixed 5 ms sleep. Large bundles (charts of 50-400 KB) or a loaded machine
make the output arrive *after* idle; nbclient (and so `jupyter nbconvert --execute`) treats idle as the end of the
cell and drops the output. It is not lost: it carries its cell's parent msg_id and arrives within milliseconds. This
executor keeps reading IOPub after idle until `--late-grace` seconds pass without a message for that cell, and
files late messages under their cell, so no output is dropped and no retry is needed.

Usage: python3 scripts/execute_notebook.py IN.ipynb OUT.ipynb [--kernel deno] [--timeout 600] [--late-grace 0.5]
       [--log-late]   (print one line per late message to stderr: the evidence)
Exit status 0 when executed (cell errors are kept in the outputs, like --allow-errors).
"""
import argparse
import asyncio
import os
import sys
from queue import Empty
from time import monotonic

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionComplete
from nbclient.util import ensure_async


class LateOutputClient(NotebookClient):
    """nbclient that also collects a cell's outputs published after its idle status."""

    late_grace = 0.5
    log_late = False
    late_count = 0

    async def _async_poll_output_msg(self, parent_msg_id, cell, cell_index):
        await super()._async_poll_output_msg(parent_msg_id, cell, cell_index)
        quiet_until = monotonic() + self.late_grace
        while True:
            left = quiet_until - monotonic()
            if left <= 0:
                return
            try:
                msg = await ensure_async(self.kc.iopub_channel.get_msg(timeout=left))
            except Empty:
                return
            if msg["parent_header"].get("msg_id") != parent_msg_id:
                continue
            if msg["msg_type"] != "status":
                self.late_count += 1
                if self.log_late:
                    print(f"late output: cell {cell_index + 1} {msg['msg_type']} after idle", file=sys.stderr)
            try:
                self.process_message(msg, cell, cell_index)
            except CellExecutionComplete:
                pass
            quiet_until = monotonic() + self.late_grace


def main():
    p = argparse.ArgumentParser()
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--kernel", default="deno")
    p.add_argument("--timeout", type=int, default=600)
    p.add_argument("--late-grace", type=float, default=0.5)
    p.add_argument("--log-late", action="store_true")
    a = p.parse_args()
    nb = nbformat.read(a.input, as_version=4)
    client = LateOutputClient(
        nb,
        kernel_name=a.kernel,
        timeout=a.timeout,
        allow_errors=True,
        resources={"metadata": {"path": os.path.dirname(os.path.abspath(a.input))}},
    )
    client.late_grace = a.late_grace
    client.log_late = a.log_late
    client.execute()
    nbformat.write(nb, a.output)
    print(f"late outputs kept: {client.late_count}", file=sys.stderr)


if __name__ == "__main__":
    main()
