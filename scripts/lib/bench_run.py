"""What the Linux benchmarks share: running an emulator until a line appears, and the
table of median wall times (scripts/lib/bench_linux.py, scripts/lib/bench_linux_amd64.py)."""
import os, re, statistics, subprocess, time


def run_until(cmd, pattern, limit, stop_at_match=True):
    """Runs `cmd` until a line matches `pattern`, it exits or `limit` seconds pass, then
    stops it; returns (seconds to the first match or None, the output). With
    `stop_at_match` false it reads on after the match until the exit or the limit."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, found = [], None
    os.set_blocking(p.stdout.fileno(), True)
    deadline = t0 + limit
    for raw in p.stdout:
        line = raw.decode(errors="replace")
        out.append(line)
        if found is None and re.search(pattern, line):
            found = time.monotonic() - t0
            if stop_at_match:
                break
        if time.monotonic() > deadline:
            break
    p.kill()
    p.wait()
    return found, "".join(out)


def print_medians(names, times, base="native"):
    """One line per configuration in `names`: the median of its `times[name]` (seconds),
    every run, and the ratio to `base`'s median."""
    reference = statistics.median(times[base]) if times.get(base) else None
    for name in names:
        ts = times[name]
        if not ts:
            print(f"   {name:9} did not reach userspace")
            continue
        med = statistics.median(ts)
        ratio = f"  ({med / reference:.2f}x {base})" if reference and name != base else ""
        print(f"   {name:9} {med:6.2f} s  (runs: {', '.join(f'{t:.2f}' for t in ts)}){ratio}")
