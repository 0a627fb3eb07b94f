"""The targets of the benchmark and the printed report."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.runner import Bench, REPO, Row, Target, fmt_ms, ratio_ci

# -- targets and report --------------------------------------------------------------------


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def samples(row: Row | None, variant: str = "kstlib") -> list[float]:
    if row is None or variant not in row.stats:
        return []
    return list(row.stats[variant]["samples_ms"])


def ci_of(num: list[float], den: list[float]) -> tuple[float, float] | None:
    return ratio_ci(num, den) if len(num) > 1 and den else None


def evaluate(bench: Bench) -> list[Target]:
    targets: list[Target] = []
    for r in bench.rows:
        if r.backend == "tmux-scale":
            continue  # its own targets, below
        k, raw, cli = r.median("kstlib"), r.median("raw"), r.median("cli")
        where = f"{r.backend} {r.op}" + (f" [{r.size}]" if r.size is not None else "")
        ks, rs, cs = samples(r), samples(r, "raw"), samples(r, "cli")
        if raw is not None and r.backend != "cli":  # the cli rows' raw is a floor, below
            targets.append(
                Target(
                    f"raw:{where}",
                    f"{where}: kstlib/raw <= 1.25",
                    ratio(k, raw),
                    1.25,
                    ci=ci_of(ks, rs),
                )
            )
        if (
            cli is not None
            and r.backend in ("docker", "podman")
            and r.op in ("status", "logs(100)")
        ):
            targets.append(
                Target(
                    f"cli:{where}",
                    f"{where}: cli/kstlib >= 10",
                    ratio(cli, k),
                    10,
                    higher_is_better=True,
                    ci=ci_of(cs, ks),
                )
            )
        if cli is not None and r.backend == "tmux":
            targets.append(
                Target(
                    f"cli:{where}",
                    f"{where}: cli/kstlib >= 1 (no slower than tmux CLI)",
                    ratio(cli, k),
                    1.0,
                    higher_is_better=True,
                    ci=ci_of(cs, ks),
                )
            )
    for r in bench.rows:  # issue 24: the control channel >= 10x below the forked call
        if r.backend == "tmux" and r.op in ("status (control)", "exists (control)") and r.size:
            targets.append(
                Target(
                    f"control:tmux {r.op} [{r.size}]",
                    f"tmux {r.op} [{r.size}]: raw/kstlib >= 10",
                    ratio(r.median("raw"), r.median("kstlib")),
                    10,
                    higher_is_better=True,
                    ci=ci_of(samples(r, "raw"), samples(r)),
                )
            )
    for r in bench.rows:  # issue 24: the fork path within 1.2x of the same raw tmux call
        if r.backend == "tmux" and r.op in ("start", "list_sessions", "status") and r.size:
            targets.append(
                Target(
                    f"fork:tmux {r.op} [{r.size}]",
                    f"tmux {r.op} [{r.size}]: kstlib/raw <= 1.2 (one tmux call)",
                    ratio(r.median("kstlib"), r.median("raw")),
                    1.2,
                    ci=ci_of(samples(r), samples(r, "raw")),
                )
            )
    sizes = bench.settings.tmux_sizes

    def sized(backend: str, op: str, want: int) -> Row | None:
        # The engine may hold containers from others: match the nearest size measured.
        rows = [r for r in bench.rows if r.backend == backend and r.op == op and r.size is not None]
        if not rows:
            return None
        return min(rows, key=lambda r: abs((r.size or 0) - want))

    lo, hi = sized("tmux", "list_sessions", sizes[0]), sized("tmux", "list_sessions", sizes[-1])
    if lo and hi and lo is not hi:
        targets.append(
            Target(
                "o1:tmux list",
                f"tmux list_sessions {hi.size} vs {lo.size} sessions <= 3x",
                ratio(hi.median("kstlib"), lo.median("kstlib")),
                3.0,
                ci=ci_of(samples(hi), samples(lo)),
            )
        )
    lo, hi = sized("tmux", "status", sizes[0]), sized("tmux", "status", sizes[-1])
    if lo and hi and lo is not hi:
        targets.append(
            Target(
                "flat:tmux status",
                f"tmux status with {hi.size} vs {lo.size} sessions <= 1.2x",
                ratio(hi.median("kstlib"), lo.median("kstlib")),
                1.2,
                ci=ci_of(samples(hi), samples(lo)),
            )
        )
    for rt in ("docker", "podman"):
        lo = sized(rt, "list_sessions", bench.settings.container_sizes[0])
        hi = sized(rt, "list_sessions", bench.settings.container_sizes[-1])
        if lo and hi and lo is not hi:
            targets.append(
                Target(
                    f"o1:{rt} list",
                    f"{rt} list_sessions {hi.size} vs {lo.size} containers <= 2x",
                    ratio(hi.median("kstlib"), lo.median("kstlib")),
                    2.0,
                    ci=ci_of(samples(hi), samples(lo)),
                )
            )
        g = bench.row(rt, "graceful stop")
        if g is not None:
            targets.append(
                Target(
                    f"grace:{rt}",
                    f"{rt} graceful stop of a SIGTERM-handling container < 1000 ms",
                    g.median("kstlib"),
                    1000,
                    unit="ms",
                    ci=ci_of(samples(g), [1.0]),
                )
            )
    targets += scale_targets(bench)
    imp = bench.row("python", "import kstlib.ops")
    targets.append(
        Target(
            "import",
            "import kstlib.ops < 30 ms (bytecode cached)",
            imp.median("kstlib") if imp else None,
            30,
            unit="ms",
            ci=ci_of(samples(imp), [1.0]),
        )
    )
    cli_row = bench.row("cli", "kstlib ops list --json -b tmux")
    targets.append(
        Target(
            "ops list",
            "kstlib ops list --json (tmux only) < 250 ms",
            cli_row.median("kstlib") if cli_row else None,
            250,
            unit="ms",
            ci=ci_of(samples(cli_row), [1.0]),
        )
    )
    floor = versus(  # issue 24: against the floor, `python -c pass` + one tmux call
        "ops list floor",
        "kstlib ops list --json (tmux only) <= 1.5x python -c pass + one tmux call",
        cli_row,
        "raw",
        1.5,
    )
    if floor is not None:
        targets.append(floor)
    return targets


def versus(key: str, text: str, row: Row | None, other: str, limit: float) -> Target | None:
    """Target: median kstlib / median ``other`` of ``row`` <= ``limit``."""
    if row is None or other not in row.stats:
        return None
    return Target(
        key,
        text,
        ratio(row.median("kstlib"), row.median(other)),
        limit,
        ci=ci_of(samples(row), samples(row, other)),
    )


def scale_targets(bench: Bench) -> list[Target]:
    """The targets of issue 11 (tmux at scale)."""
    found: list[Target | None] = [
        versus(
            "upstream:tmux start+stop",
            "tmux start()+stop(graceful=False): kstlib/upstream kstlib <= 1.0",
            bench.row("tmux", "start+stop"),
            "upstream",
            1.0,
        )
    ]
    scale = bench.facts.get("tmux_scale", {}).get("sizes", {})
    for size in bench.settings.tmux_scale_sizes:
        found += [
            versus(
                f"scale:start [{size}]",
                f"tmux [{size}] start of each: kstlib/plain tmux new-session <= 2.0",
                bench.row("tmux-scale", "start each", size),
                "raw",
                2.0,
            ),
            versus(
                f"scale:status [{size}]",
                f"tmux [{size}] status(): kstlib/raw list-panes on the plain server <= 1.2",
                bench.row("tmux-scale", "status", size),
                "raw",
                1.2,
            ),
            versus(
                f"scale:list [{size}]",
                f"tmux [{size}] list_sessions(): kstlib/raw list-sessions on the plain "
                "server <= 1.3",
                bench.row("tmux-scale", "list_sessions", size),
                "raw",
                1.3,
            ),
            versus(
                f"scale:upstream [{size}]",
                f"tmux [{size}] start()+stop(graceful=False): kstlib/upstream kstlib <= 1.0",
                bench.row("tmux-scale", "start+stop", size),
                "upstream",
                1.0,
            ),
        ]
        memory = scale.get(str(size), {}).get("memory", {}).get("kstlib")
        if memory is not None:
            found.append(
                Target(
                    f"scale:memory [{size}]",
                    f"tmux [{size}] memory beyond the commands (PSS) <= 1 MB a session",
                    memory["pss_beyond_mb_per_session"],
                    1.0,
                    unit="MB",
                )
            )
    return [t for t in found if t is not None]


def render_scale(bench: Bench) -> list[str]:
    """The tmux scale table: one line per size and operation, the three servers side by side."""
    rows = [r for r in bench.rows if r.backend == "tmux-scale"]
    scale = bench.facts.get("tmux_scale", {}).get("sizes", {})
    if not rows and not scale:
        return []
    cols = ("raw", "libtmux", "upstream", "kstlib")
    head = (
        f"{'N':>5} {'operation':14} {'plain tmux':>16} {'libtmux API':>16} "
        f"{'upstream':>16} {'kstlib':>16} {'k/plain':>8} {'k/upstr':>8}"
    )
    lines = ["", "tmux at scale (ms: median [p90]; memory: MB a session beyond the commands)"]
    lines += [head, "-" * len(head)]
    for size in bench.settings.tmux_scale_sizes:
        for r in rows:
            if r.size != size:
                continue
            cells = []
            for c in cols:
                st = r.stats.get(c)
                cells.append(
                    "-" if st is None else f"{fmt_ms(st['median_ms'])} [{fmt_ms(st['p90_ms'])}]"
                )
            kr = ratio(r.median("kstlib"), r.median("raw"))
            ku = ratio(r.median("kstlib"), r.median("upstream"))
            lines.append(
                f"{size:>5} {r.op:14} "
                + " ".join(f"{c:>16}" for c in cells)
                + f" {(f'{kr:.2f}' if kr else '-'):>8} {(f'{ku:.2f}' if ku else '-'):>8}"
            )
            same = r.median("raw_kstlib_server")
            if same is not None:
                lines.append(
                    f"{'':>5} {'':14} {'(same raw query on kstlib server: ' + fmt_ms(same) + ' ms)':>50}"
                )
        memory = scale.get(str(size), {}).get("memory", {})
        if memory:
            cells = []
            for c in cols:
                fp = memory.get(c)
                cells.append(
                    "-"
                    if fp is None
                    else f"{fp['pss_beyond_mb_per_session']:.3f} ({fp['processes']}p)"
                )
            k, p = memory.get("kstlib"), memory.get("raw")
            kr = (
                ratio(k["pss_beyond_mb_per_session"], p["pss_beyond_mb_per_session"])
                if k and p
                else None
            )
            lines.append(
                f"{size:>5} {'memory/session':14} "
                + " ".join(f"{c:>16}" for c in cells)
                + f" {(f'{kr:.1f}' if kr else '-'):>8} {'-':>8}"
            )
    return lines


def render(bench: Bench, targets: list[Target]) -> str:
    head = (
        f"{'backend':7} {'operation':36} {'kstlib ms [p10-p90]':22} {'raw ms':>8} {'cli ms':>8} "
        f"{'k/raw':>6} {'cli/k':>6} {'n':>4}"
    )
    lines = [head, "-" * len(head)] if any(r.backend != "tmux-scale" for r in bench.rows) else []
    for r in bench.rows:
        if r.backend == "tmux-scale":
            continue  # in its own table
        k = r.stats["kstlib"]
        op = r.op + (f" [{r.size}]" if r.size is not None else "")
        spread = f"{fmt_ms(k['median_ms'])} [{fmt_ms(k['p10_ms'])}-{fmt_ms(k['p90_ms'])}]"
        kr = ratio(r.median("kstlib"), r.median("raw"))
        ck = ratio(r.median("cli"), r.median("kstlib"))
        lines.append(
            f"{r.backend:7} {op:36} {spread:22} {fmt_ms(r.median('raw')):>8} {fmt_ms(r.median('cli')):>8} "
            f"{(f'{kr:.2f}' if kr else '-'):>6} {(f'{ck:.1f}' if ck else '-'):>6} {k['n']:>4}"
        )
    up = bench.row("tmux", "start+stop")
    if up is not None and "upstream" in up.stats:
        lines.append(
            f"{'':7} {'(upstream kstlib start+stop)':36} "
            f"{fmt_ms(up.median('upstream')):>22} {'':>8} {'':>8} "
            f"{ratio(up.median('kstlib'), up.median('upstream')) or 0:>6.2f}  (kstlib/upstream)"
        )
    lines += render_scale(bench)
    lines.append("")
    lines.append("Targets (issues 7 and 11):")
    for t in targets:
        fig = (
            "-"
            if t.figure is None
            else (
                f"{t.figure:.2f}x"
                if t.unit == "x"
                else (f"{t.figure:.3f} MB" if t.unit == "MB" else f"{t.figure:.0f} ms")
            )
        )
        if t.ci is not None:
            lo, hi = t.ci
            fig += (
                f" (90% CI {lo:.2f}-{hi:.2f})" if t.unit == "x" else f" (90% CI {lo:.0f}-{hi:.0f})"
            )
            if t.within_noise:
                fig += ", within noise"
        lines.append(f"  [{t.verdict:^6}] {t.text}: {fig}")
    met = sum(t.verdict == "met" for t in targets)
    missed = sum(t.verdict == "MISSED" for t in targets)
    lines.append(f"  {met} met, {missed} missed, {len(targets) - met - missed} not measured")
    for note in bench.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
    }
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if hasattr(os, "getloadavg"):
        info["load_at_start"] = [round(x, 2) for x in os.getloadavg()]
    return info


def git_state() -> dict[str, Any]:
    """The commit measured, and whether kstlib/ had uncommitted changes."""

    def git(*args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return proc.stdout.strip()

    import kstlib

    return {
        "kstlib": str(Path(kstlib.__file__).parent),
        # KSTLIB_BENCH_COMMIT labels a source tree that is not a git checkout (git archive).
        "head": git("rev-parse", "--short", "HEAD") or os.environ.get("KSTLIB_BENCH_COMMIT", ""),
        "dirty": git("status", "--short", "kstlib"),
    }
