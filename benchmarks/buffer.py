"""Buffer and MQTT figures: observations/s into the outbox, windows/s drained to Mosquitto, and the
database size of one simulated day offline.

    .venv/bin/python benchmarks/buffer.py [--quick]

Needs /usr/sbin/mosquitto for the drain figures (skipped with a note otherwise). Timings are
wall-clock on a shared machine: read the ratios printed side by side more than the absolutes.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the shared Mosquitto helper (tests/support)

from edge_agent.buffer.outbox import Outbox  # noqa: E402
from edge_agent.heatmap.codec import encode_window  # noqa: E402
from edge_agent.heatmap.window import Window, window_id  # noqa: E402
from edge_agent.observations import WifiObs  # noqa: E402
from edge_agent.publish.forward import RAW_BATCH_ROWS, OutboxForwarder  # noqa: E402

T0 = 1_700_000_000.0
SITE, AGENT = "plant-a", "fl-01"
DAY_S = 86_400
WINDOW_S = 60
# A busy forklift crosses ~40 distinct 2 m cells a minute on a 100 x 90 m plant (spread cells).
CELLS_PER_WINDOW = 40
# Monitor mode, 12 surveyed APs at 10 beacons/s heard on the current channel third of the time.
RAW_OBS_PER_S = 40


def make_window(k: int, rng: random.Random) -> Window:
    start = T0 + WINDOW_S * k
    cells = {(rng.randrange(50), rng.randrange(45)): (round(rng.uniform(0.1, 5.0), 3),
                                                      round(rng.uniform(0, 3.0), 3))
             for _ in range(CELLS_PER_WINDOW)}
    dwell = sum(d for d, _ in cells.values())
    moving = sum(m for _, m in cells.values())
    return Window(id=window_id(SITE, AGENT, start, start + WINDOW_S), site=SITE, agent=AGENT,
                  start=start, end=start + WINDOW_S, cell_m=2.0, x0=0.0, y0=0.0, nx=50, ny=45,
                  cells=cells, dwell_s=dwell, moving_s=moving, idle_s=dwell - moving,
                  no_position_s=0.0, distance_m=round(rng.uniform(0, 90), 2),
                  zones={"dock": (20.0, 5.0, 15.0), "aisle-3": (30.0, 20.0, 10.0)})


def wifi_obs(n: int) -> list[WifiObs]:
    bssids = [f"02:9e:34:71:25:{i:02x}" for i in range(12)]
    return [WifiObs(T0 + i / RAW_OBS_PER_S, bssids[i % 12], -40.0 - (i % 50), 1 + 5 * (i % 3))
            for i in range(n)]


def bench_ingest(tmp: Path, n_batched: int, n_single: int) -> None:
    obs = wifi_obs(n_batched)
    with Outbox(tmp / "ingest.db") as box:
        t = time.perf_counter()
        for i in range(0, n_batched, RAW_BATCH_ROWS):
            box.add_observations(obs[i:i + RAW_BATCH_ROWS])
        batched = n_batched / (time.perf_counter() - t)
    with Outbox(tmp / "ingest1.db") as box:
        t = time.perf_counter()
        for o in obs[:n_single]:
            box.add_observations((o,))
        single = n_single / (time.perf_counter() - t)
    print(f"observations into the buffer: batched ({RAW_BATCH_ROWS}/commit) {batched:,.0f}/s, "
          f"one commit each {single:,.0f}/s, ratio {batched / single:.0f}x  "
          f"[{n_batched:,} and {n_single:,} rows]")
    rng = random.Random(1)
    windows = [make_window(k, rng) for k in range(500)]
    with Outbox(tmp / "win.db") as box:
        t = time.perf_counter()
        for w in windows:
            box.put(w.id, "heatmap", w.end, encode_window(w))
        full = len(windows) / (time.perf_counter() - t)
    with Outbox(tmp / "win2.db", durable_windows=False) as box:
        t = time.perf_counter()
        for w in windows:
            box.put(w.id, "heatmap", w.end, encode_window(w))
        normal = len(windows) / (time.perf_counter() - t)
    print(f"window puts (encode + commit): synchronous=FULL {full:,.0f}/s, NORMAL {normal:,.0f}/s "
          f"(one window a minute per agent needs 0.017/s)")


def bench_day(tmp: Path, raw_rows_sample: int) -> None:
    rng = random.Random(2)
    path = tmp / "day.db"
    with Outbox(path) as box:
        for k in range(DAY_S // WINDOW_S):
            w = make_window(k, rng)
            box.put(w.id, "heatmap", w.end, encode_window(w))
        fwd_health = (b'{"agent":"fl-01","buffer":{"pending":{"heatmap":1440,"health":0,'
                      b'"positions":0},"rejected":{"heatmap":0},"used_bytes":1234567,'
                      b'"max_bytes":104857600},"cpu":{"load_1m":0.5,"process_s":123.4},'
                      b'"drops":{},"last_publish_t":1700000000.0,"rejected_total":0,'
                      b'"site":"plant-a","t":1700000000.0,"v":1,"connected":false}')
        for k in range(DAY_S // WINDOW_S):
            box.put(f"fl-01-health-{k}", "health", T0 + WINDOW_S * k, fwd_health)
        day_bytes = box.used_bytes()
        pending = box.counts()["heatmap"]["pending"]
    file_bytes = path.stat().st_size
    print(f"one day offline at default settings (1440 windows of {CELLS_PER_WINDOW} cells + 1440 "
          f"health records): {day_bytes / 1e6:.1f} MB in use, file {file_bytes / 1e6:.1f} MB, "
          f"{pending} windows waiting (bound 100 MB)")
    with Outbox(tmp / "raw.db") as box:
        box.add_observations(wifi_obs(raw_rows_sample))
        per_row = box.used_bytes() / raw_rows_sample
    raw_day = per_row * RAW_OBS_PER_S * DAY_S
    print(f"raw observations (only with record_raw): {per_row:.0f} B/row; at {RAW_OBS_PER_S}/s a "
          f"day is {raw_day / 1e6:.0f} MB, so the 100 MB bound keeps the last "
          f"{100e6 / (per_row * RAW_OBS_PER_S) / 3600:.1f} h of raw data and every window")


def bench_drain(tmp: Path, n: int) -> None:
    from support.mosquitto import mosquitto_available, start_mosquitto

    if not mosquitto_available():
        print("drain to Mosquitto: skipped (no /usr/sbin/mosquitto)")
        return
    rng = random.Random(3)
    windows = [make_window(k, rng) for k in range(n)]
    payloads = [(w.id, w.end, encode_window(w)) for w in windows]
    broker = start_mosquitto(tmp / "broker")
    try:
        rates = {}
        for inflight in (1, 20, 100):
            db = tmp / f"drain-{inflight}.db"
            with Outbox(db) as box:
                box.put_many((i, "heatmap", t, p) for i, t, p in payloads)
            t = time.perf_counter()
            fwd = OutboxForwarder(db, broker.url(), SITE, AGENT, max_inflight=inflight)
            line = fwd.close(timeout_s=300, health=False)
            dt = time.perf_counter() - t
            assert " 0 waiting" in line, line
            rates[inflight] = n / dt
        print("windows drained to Mosquitto (QoS 1, loopback, incl. connect): "
              + ", ".join(f"in-flight {k}: {v:,.0f}/s" for k, v in rates.items())
              + f"  [{n:,} windows of ~{sum(len(p) for *_, p in payloads) // n} B]")
    finally:
        broker.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smaller sizes (CI smoke run)")
    args = ap.parse_args()
    n_obs, n_single, n_win = (100_000, 2_000, 1_000) if args.quick else (500_000, 5_000, 5_000)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        bench_ingest(tmp, n_obs, n_single)
        bench_day(tmp, n_obs)
        bench_drain(tmp, n_win)


if __name__ == "__main__":
    main()
