#!/usr/bin/env python3
"""Turns a weakgc event log into pictures and a summary.

    tools/plot_events.py LOG [--out DIR] [--format svg|png] [--prefix NAME] [--summary-only]

LOG is the binary file written by the event log (WEAKGC_EVENT_LOG=<path>, or
weakgc_event_log_start); its format is documented in core/events.hpp and docs/design/capi.md.
Writes, under DIR (default docs/img):

  <prefix>pause_timeline.<fmt>     every pause (flip, increment, full collection, barrier fault)
                                   by start time, duration on a log scale
  <prefix>pause_histogram.<fmt>    pause counts in log2 buckets of duration, by kind
  <prefix>faults_by_outcome.<fmt>  barrier faults by outcome (scanned, emulated, declined, budget,
                                   weak phase), cumulative over time

and prints a summary (counts, pause quantiles, splats, sweeps) on stdout. Pictures are drawn by
matplotlib when it can be imported, else by gnuplot (a generated script; gnuplot-nox is installed
by scripts/setup.sh). Uses only the standard library otherwise.
"""
import argparse
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HEADER = struct.Struct("<8sIIQQQQQQ")  # EventChunkHeader, 64 bytes
RECORD = struct.Struct("<QQQQHBBHH")   # EventRecord, 40 bytes
assert HEADER.size == 64 and RECORD.size == 40

FLIP, INCREMENT, FULL, FAULT, SPLAT, SWEEP = 1, 2, 3, 4, 5, 6
KIND_NAMES = {FLIP: "flip", INCREMENT: "increment", FULL: "full collection", FAULT: "fault",
              SPLAT: "splat", SWEEP: "sweep"}
OUTCOMES = ["scanned", "emulated", "declined", "budget", "weak phase"]
PHASES = ["idle", "mark", "weak", "sweep"]
# emulate/emulate.hpp, enum class Decline
DECLINE_NAMES = ["none", "decode failed", "truncated", "unsupported", "address mismatch",
                 "segment prefix", "lock prefix", "no memory operand", "accessor failed"]


class Event:
    __slots__ = ("time_ns", "duration_ns", "value", "value2", "kind", "phase", "detail",
                 "reason", "mnemonic", "arena")

    def __init__(self, fields, arena):
        (self.time_ns, self.duration_ns, self.value, self.value2, self.kind, self.phase,
         self.detail, self.reason, self.mnemonic) = fields
        self.arena = arena


def read_log(path):
    """Returns (events, origin_ns, lost) for every chunk of the file."""
    events, starts, lost = [], [], 0
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos + HEADER.size <= len(data):
        magic, version, record_size, records, chunk_lost, serial, start_ns, _pid, _ = \
            HEADER.unpack_from(data, pos)
        if magic != b"WGCEVLOG":
            raise SystemExit(f"{path}: not a weakgc event log (bad magic at byte {pos})")
        if version != 1 or record_size != RECORD.size:
            raise SystemExit(f"{path}: unsupported version {version} / record size {record_size}")
        pos += HEADER.size
        end = pos + records * RECORD.size
        if end > len(data):
            raise SystemExit(f"{path}: truncated chunk at byte {pos}")
        for off in range(pos, end, RECORD.size):
            events.append(Event(RECORD.unpack_from(data, off), serial))
        pos = end
        starts.append(start_ns)
        lost += chunk_lost
    if pos != len(data):
        raise SystemExit(f"{path}: {len(data) - pos} trailing bytes")
    origin = min(starts) if starts else 0
    return events, origin, lost


def pauses(events):
    """The pauses a mutator saw: a flip inside a full collection is counted in the full one."""
    return [e for e in events
            if e.kind in (INCREMENT, FULL, FAULT) or (e.kind == FLIP and e.detail == 0)]


def quantile(sorted_values, q):
    if not sorted_values:
        return 0
    i = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[i]


def summary(events, lost):
    lines = []
    counts = {k: 0 for k in KIND_NAMES}
    for e in events:
        counts[e.kind] = counts.get(e.kind, 0) + 1
    cycles = max((e.value2 for e in events if e.kind in (FLIP, INCREMENT, FULL)), default=0)
    lines.append(f"records: {len(events)} (lost {lost}); cycles seen: {cycles}")
    lines.append("records by kind: " + ", ".join(f"{KIND_NAMES[k]} {counts[k]}" for k in KIND_NAMES))
    for kind in (FLIP, INCREMENT, FULL, FAULT):
        d = sorted(e.duration_ns for e in pauses(events) if e.kind == kind)
        if d:
            lines.append(f"{KIND_NAMES[kind]:>15} pauses: n={len(d)} p50={quantile(d, .5) / 1e3:.1f}us "
                         f"p99={quantile(d, .99) / 1e3:.1f}us max={d[-1] / 1e3:.1f}us")
    outcome = [0] * len(OUTCOMES)
    declined = {}
    for e in events:
        if e.kind == FAULT and e.detail < len(OUTCOMES):
            outcome[e.detail] += 1
            if e.detail == 2:
                reason = DECLINE_NAMES[e.reason] if e.reason < len(DECLINE_NAMES) else (
                    "emulation off" if e.reason == 0xffff else str(e.reason))
                key = (reason, e.mnemonic)
                declined[key] = declined.get(key, 0) + 1
    lines.append("faults by outcome: " + ", ".join(f"{n} {c}" for n, c in zip(OUTCOMES, outcome)))
    for (reason, mnemonic), n in sorted(declined.items(), key=lambda kv: -kv[1])[:10]:
        lines.append(f"  declined: {n} x {reason} (capstone mnemonic id {mnemonic})")
    splats = [e.value for e in events if e.kind == SPLAT]
    lines.append(f"splats: {sum(splats)} slots in {len(splats)} weak scans")
    sweeps = [e for e in events if e.kind == SWEEP]
    lines.append(f"sweeps: {sum(e.value for e in sweeps)} bytes freed in "
                 f"{sum(e.value2 for e in sweeps)} segments "
                 f"({sum(e.value2 for e in sweeps if e.detail == 1)} lazily by allocation)")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- picture data

def timeline_series(events, origin):
    series = {}
    for e in pauses(events):
        name = KIND_NAMES[e.kind] if e.kind != FAULT else "fault (" + OUTCOMES[e.detail] + ")"
        series.setdefault(name, []).append(((e.time_ns - origin) / 1e6, max(e.duration_ns, 1) / 1e3))
    return series


def histogram_table(events):
    kinds = [FLIP, INCREMENT, FULL, FAULT]
    buckets = {}
    for e in pauses(events):
        b = max(0, int(e.duration_ns).bit_length() - 1)
        buckets.setdefault(b, {k: 0 for k in kinds})[e.kind] += 1
    if not buckets:
        return kinds, []
    rows = []
    for b in range(min(buckets), max(buckets) + 1):
        row = buckets.get(b, {k: 0 for k in kinds})
        rows.append((bucket_label(b), [row[k] for k in kinds]))
    return kinds, rows


def bucket_label(b):
    ns = 1 << b
    if ns < 1000:
        return f"{ns}ns"
    if ns < 1000000:
        return f"{ns / 1e3:.3g}us"
    return f"{ns / 1e6:.3g}ms"


def fault_series(events, origin):
    series = {name: [] for name in OUTCOMES}
    counts = [0] * len(OUTCOMES)
    for e in events:
        if e.kind == FAULT and e.detail < len(OUTCOMES):
            counts[e.detail] += 1
            series[OUTCOMES[e.detail]].append(((e.time_ns - origin) / 1e6, counts[e.detail]))
    return {k: v for k, v in series.items() if v}


# ------------------------------------------------------------------------------ matplotlib

def draw_matplotlib(events, origin, out, fmt, prefix):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 5))
    for name, pts in sorted(timeline_series(events, origin).items()):
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=2 if name.startswith("fault") else 6,
                   color=COLOURS.get(name, "#7f7f7f"), label=name)
    ax.set_yscale("log")
    ax.set_xlabel("time since the log started (ms)")
    ax.set_ylabel("pause (us)")
    ax.set_title("weakgc pauses")
    ax.legend(markerscale=3, fontsize="small")
    fig.savefig(os.path.join(out, f"{prefix}pause_timeline.{fmt}"))
    plt.close(fig)

    kinds, rows = histogram_table(events)
    fig, ax = plt.subplots(figsize=(10, 5))
    width = 0.8 / len(kinds)
    for i, k in enumerate(kinds):
        ax.bar([x + i * width for x in range(len(rows))], [r[1][i] for r in rows], width,
               label=KIND_NAMES[k])
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(rows))], [r[0] for r in rows],
                  rotation=45, fontsize="small")
    ax.set_yscale("log")
    ax.set_ylabel("pauses")
    ax.set_xlabel("pause length (log2 buckets, lower bound)")
    ax.set_title("weakgc pause histogram")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, f"{prefix}pause_histogram.{fmt}"))
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(10, 5))
    for name, pts in fault_series(events, origin).items():
        ax.step([p[0] for p in pts], [p[1] for p in pts], where="post", label=name,
                color=COLOURS.get(name, "#7f7f7f"))
    ax.set_xlabel("time since the log started (ms)")
    ax.set_ylabel("barrier faults (cumulative)")
    ax.set_title("weakgc barrier faults by outcome")
    ax.legend()
    fig.savefig(os.path.join(out, f"{prefix}faults_by_outcome.{fmt}"))
    plt.close(fig)


# --------------------------------------------------------------------------------- gnuplot

# One colour per series, in both backends (gnuplot's default palette repeats after eight).
COLOURS = {"increment": "#000000", "flip": "#d62728", "full collection": "#9467bd",
           "fault (scanned)": "#1f77b4", "fault (emulated)": "#2ca02c",
           "fault (declined)": "#ff7f0e", "fault (budget)": "#e377c2",
           "fault (weak phase)": "#bcbd22", "scanned": "#1f77b4", "emulated": "#2ca02c",
           "declined": "#ff7f0e", "budget": "#e377c2", "weak phase": "#bcbd22"}


def gp_quote(s):
    return "'" + s.replace("'", "''") + "'"


def draw_gnuplot(events, origin, out, fmt, prefix):
    gnuplot = shutil.which("gnuplot")
    if gnuplot is None:
        raise SystemExit("plot_events: neither matplotlib nor gnuplot is available "
                         "(scripts/setup.sh installs gnuplot-nox)")
    terminal = ("svg size 1000,500 dynamic background rgb 'white' font 'sans,11'" if fmt == "svg"
                else "pngcairo size 1000,500 font 'sans,10'")
    with tempfile.TemporaryDirectory(prefix="weakgc-plot-") as tmp:
        def data(name, rows):
            path = os.path.join(tmp, name)
            with open(path, "w") as f:
                for r in rows:
                    f.write(" ".join(str(x) for x in r) + "\n")
            return path

        script = [f"set terminal {terminal}", "set key outside right top", "set grid"]

        series = timeline_series(events, origin)
        script += [f"set output {gp_quote(os.path.join(out, prefix + 'pause_timeline.' + fmt))}",
                   "set title 'weakgc pauses'", "set logscale y",
                   "set xlabel 'time since the log started (ms)'", "set ylabel 'pause (us)'"]
        plots = [f"{gp_quote(data(f'tl{i}.dat', pts))} using 1:2 with points pt 7 "
                 f"ps {0.3 if name.startswith('fault') else 0.7} "
                 f"lc rgb {gp_quote(COLOURS.get(name, '#7f7f7f'))} title {gp_quote(name)}"
                 for i, (name, pts) in enumerate(sorted(series.items()))]
        script.append("plot " + (", ".join(plots) if plots else "NaN notitle"))
        script.append("unset logscale y")

        kinds, rows = histogram_table(events)
        hist = data("hist.dat", [(label, *counts) for label, counts in rows] or [("none", 0, 0, 0, 0)])
        script += [f"set output {gp_quote(os.path.join(out, prefix + 'pause_histogram.' + fmt))}",
                   "set title 'weakgc pause histogram'", "set style data histograms",
                   "set style histogram clustered gap 1", "set style fill solid 0.8 border -1",
                   "set logscale y", "set yrange [0.8:*]", "set xtics rotate by -45",
                   "set xlabel 'pause length (log2 buckets, lower bound)'",
                   "set ylabel 'pauses'"]
        script.append("plot " + ", ".join(
            f"{gp_quote(hist)} using {i + 2}:xtic(1) title {gp_quote(KIND_NAMES[k])}"
            for i, k in enumerate(kinds)))
        script += ["unset logscale y", "set yrange [*:*]", "unset style data", "set xtics norotate",
                   "set style data lines"]

        fs = fault_series(events, origin)
        script += [f"set output {gp_quote(os.path.join(out, prefix + 'faults_by_outcome.' + fmt))}",
                   "set title 'weakgc barrier faults by outcome'",
                   "set xlabel 'time since the log started (ms)'",
                   "set ylabel 'barrier faults (cumulative)'"]
        plots = [f"{gp_quote(data(f'f{i}.dat', pts))} using 1:2 with steps lw 2 "
                 f"lc rgb {gp_quote(COLOURS.get(name, '#7f7f7f'))} title {gp_quote(name)}"
                 for i, (name, pts) in enumerate(fs.items())]
        script.append("plot " + (", ".join(plots) if plots else "NaN notitle"))
        script.append("set output")
        gp = os.path.join(tmp, "plot.gp")
        with open(gp, "w") as f:
            f.write("\n".join(script) + "\n")
        subprocess.run([gnuplot, gp], check=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("log", help="event log file (WEAKGC_EVENT_LOG)")
    ap.add_argument("--out", default=None, help="output directory (default: docs/img)")
    ap.add_argument("--format", choices=["svg", "png"], default="svg")
    ap.add_argument("--prefix", default="", help="prefix of the picture file names")
    ap.add_argument("--summary-only", action="store_true", help="print the summary, draw nothing")
    ap.add_argument("--backend", choices=["auto", "matplotlib", "gnuplot"], default="auto")
    args = ap.parse_args(argv)

    events, origin, lost = read_log(args.log)
    print(summary(events, lost))
    if args.summary_only:
        return 0
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "img")
    os.makedirs(out, exist_ok=True)
    backend = args.backend
    if backend == "auto":
        try:
            import matplotlib  # noqa: F401
            backend = "matplotlib"
        except ImportError:
            backend = "gnuplot"
    if backend == "matplotlib":
        draw_matplotlib(events, origin, out, args.format, args.prefix)
    else:
        draw_gnuplot(events, origin, out, args.format, args.prefix)
    for name in ("pause_timeline", "pause_histogram", "faults_by_outcome"):
        path = os.path.join(out, f"{args.prefix}{name}.{args.format}")
        if not os.path.exists(path) or os.path.getsize(path) == 0:
            raise SystemExit(f"plot_events: {path} was not written")
        print(f"wrote {os.path.normpath(path)} ({backend})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
