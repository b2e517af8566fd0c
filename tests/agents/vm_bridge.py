"""The real bridge, listening as cloud-init sets it up on a VM: /health on every interface (0.0.0.0), the agent API on
its Unix socket. The local provider runs it (`bridge_argv`) so a lifecycle's bridge can be reached from another network
namespace, as a VM's is from the internet.

Usage: vm_bridge.py <config>. The port stays the one the config names (0, a free one: 8787 on 0.0.0.0 would collide
with cloudsim's VMs on their 127.x addresses), and so does the socket (the agent's state directory, not /run/lobstack).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

path = Path(sys.argv[1])
config = json.loads(path.read_text())
config["listen_host"] = "0.0.0.0"  # exactly what activities/cloud/adapter_support.py sets on a VM
path.write_text(json.dumps(config))  # the file exists (0600): writing keeps its mode
# -I: the bridge comes from the interpreter's own environment, never from the working directory.
os.execv(sys.executable, [sys.executable, "-I", "-m", "bridge", "--config", str(path)])
