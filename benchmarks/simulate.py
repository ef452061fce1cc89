"""Simulator speed: seconds to simulate and write a 30-minute bundle, per scenario.

Side by side: the template writer (one frame per AP, signal byte patched, records merged with
numpy) against building every beacon with scapy, timed on a sample and scaled to the bundle.
Run: .venv/bin/python benchmarks/simulate.py [--duration S] [--seed N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from firmware_sim import SCENARIOS, simulate
from firmware_sim.world import SITE_SSID

SCAPY_SAMPLE = 2000
BUDGET_S = 10.0  # the target for a 30-minute bundle


def scapy_s_per_frame() -> float:
    from scapy.layers.dot11 import Dot11, Dot11Beacon, Dot11Elt, RadioTap

    t = time.perf_counter()
    for i in range(SCAPY_SAMPLE):
        pkt = (RadioTap(present="Flags+Rate+Channel+dBm_AntSignal+Antenna", Flags=0, Rate=2,
                        ChannelFrequency=2437, ChannelFlags=0xA0, dBm_AntSignal=-60 - i % 30,
                        Antenna=0)
               / Dot11(type=0, subtype=8, addr1="ff:ff:ff:ff:ff:ff", addr2="b4:fb:e4:00:00:01",
                       addr3="b4:fb:e4:00:00:01")
               / Dot11Beacon(cap=0x0431) / Dot11Elt(ID=0, info=SITE_SSID.encode())
               / Dot11Elt(ID=3, info=bytes([6])))
        bytes(pkt)
    return (time.perf_counter() - t) / SCAPY_SAMPLE


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--duration", type=float, default=1800.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    per_frame = scapy_s_per_frame()
    print(f"{args.duration:.0f} s bundles, seed {args.seed}; budget {BUDGET_S:.0f} s\n")
    print("| scenario | simulate s | write s | total s | Wi-Fi frames | BLE frames | "
          "bundle MB | scapy-built frames (est.) s |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in SCENARIOS:
            t0 = time.perf_counter()
            run = simulate(name, args.seed, args.duration)
            t1 = time.perf_counter()
            out = run.write_bundle(Path(tmp) / name)
            t2 = time.perf_counter()
            n_wifi = sum(len(c.t_us) for c in run.wifi)
            n_ble = sum(len(c.t_us) for c in run.ble)
            mb = sum(p.stat().st_size for p in out.iterdir()) / 1e6
            print(f"| {name} | {t1 - t0:.2f} | {t2 - t1:.2f} | {t2 - t0:.2f} | {n_wifi} | "
                  f"{n_ble} | {mb:.1f} | {(n_wifi + n_ble) * per_frame:.0f} |")
    print(f"\nscapy builds one beacon in {per_frame * 1e6:.0f} us (sample of {SCAPY_SAMPLE}).")


if __name__ == "__main__":
    main()
