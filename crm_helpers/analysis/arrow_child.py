"""The child process of `child_stream`: one query's rows from connectorx, as an Arrow stream.

It reads {"url", "sql", "batch_size"} as JSON from stdin and writes Arrow's IPC stream format
to stdout. It imports nothing of crm_helpers, so that it starts fast. On an error it prints
one line, the exception, to stderr and exits with 1.
"""

from __future__ import annotations

import json
import sys


def serve() -> None:
    """Run the request on stdin; write its record batches to stdout as they come."""
    import connectorx
    import pyarrow as pa

    request = json.loads(sys.stdin.buffer.read())
    reader = connectorx.read_sql(request["url"], request["sql"], return_type="arrow_stream",
                                 batch_size=request["batch_size"])
    with pa.ipc.new_stream(sys.stdout.buffer, reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch)


if __name__ == "__main__":
    try:
        serve()
    except BrokenPipeError:  # the reader stopped reading (it has all it wants, or gave up)
        sys.exit(0)
    except BaseException as exc:  # connectorx's Rust panics are BaseExceptions
        print(f"{type(exc).__name__}: {exc}".replace("\n", " "), file=sys.stderr)
        sys.exit(1)
