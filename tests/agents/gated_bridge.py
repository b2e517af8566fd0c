"""A bridge whose VM "boots" only when the test opens a FIFO: lets a test act while a VM exists but is not running.

Usage: gated_bridge.py <fifo> <config>. Opening a FIFO for reading blocks until a writer opens it, so there is no
polling and no race: the bridge starts exactly when the test says so.
"""

from __future__ import annotations

import os
import sys

fifo, config = sys.argv[1], sys.argv[2]
with open(fifo, "rb") as gate:
    gate.read()
os.execv(sys.executable, [sys.executable, "-m", "bridge", "--config", config])
