"""The cost of distribution: real 2PC against one local transaction, and where a 2PC
transaction's time goes. Prints tables; never part of the test pass/fail.

Run: ``.venv/bin/python benchmarks/real.py`` (``--quick`` for short windows,
``--no-postgres`` to skip PostgreSQL). The measuring code is :mod:`txlib.real.bench`
(lesson 12 shows the same tables):

- *2PC tx/s*: txlib.real's 2PC (coordinator and 3 participants, each its own process,
  TCP on 127.0.0.1, one transaction at a time, each finished before the next begins,
  trace recording off); every transaction moves money between the participants;
- *local tx/s*: one local transaction doing the same three account updates in one
  database (SQLite: WAL, synchronous=FULL; PostgreSQL: synchronous_commit on);
- *local/2PC*: what distribution costs;
- *syncs/tx*: real syncs per transaction: those SQLite and the coordinator ask the OS
  for (counted by the power-cut layer, in a separate short run), and PostgreSQL's WAL
  syncs (``pg_stat_wal.wal_sync``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from txlib.errors import TxlibError
from txlib.real import PostgresServer
from txlib.real.bench import benchmark, breakdown, format_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1-second timing windows")
    parser.add_argument("--seconds", type=float, default=None, help="timing window")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()
    window = args.seconds or (1.0 if args.quick else 5.0)

    note = ""
    pg = None
    if not args.no_postgres:
        try:
            pg = PostgresServer.start()
        except TxlibError as exc:
            note = f"PostgreSQL skipped: {exc}"
    try:
        rows = benchmark(window, pg)
    finally:
        if pg is not None:
            pg.stop()
    print(f"txlib.real benchmark: 3 participants, sequential transactions, "
          f"{window:.0f} s windows (Python {sys.version.split()[0]})")
    print(format_table(rows))
    if note:
        print(note)
    print("\nwhere a 2PC transaction's time goes (SQLite; parts measured alone):")
    for what, ms, share in breakdown(rows[0]["2PC ms/tx"]):
        print(f"  {what:<78} {ms:7.3f} ms {share:>5}")


if __name__ == "__main__":
    main()
