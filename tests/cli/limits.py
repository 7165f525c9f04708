#!/usr/bin/env python3
"""limits.py CMD...: runs CMD, passing its stdout, stderr and exit code
through, and fails (exit 99, a line on stderr) when it runs over 60 s or its
peak resident memory passes 2 GB: bad input must never hang or eat the
machine (issue 15)."""
import resource
import subprocess
import sys

LIMIT_S = 60
LIMIT_RSS_BYTES = 2 << 30

try:
    done = subprocess.run(sys.argv[1:], timeout=LIMIT_S, capture_output=True)
except subprocess.TimeoutExpired:
    print(f"limits.py: over {LIMIT_S} s: {' '.join(sys.argv[1:])}", file=sys.stderr)
    sys.exit(99)
sys.stdout.buffer.write(done.stdout)
sys.stderr.buffer.write(done.stderr)
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # KiB on Linux
if rss > LIMIT_RSS_BYTES:
    print(f"limits.py: peak RSS {rss} bytes over {LIMIT_RSS_BYTES}", file=sys.stderr)
    sys.exit(99)
sys.exit(done.returncode if done.returncode >= 0 else 128 - done.returncode)
