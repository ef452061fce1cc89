"""NMEA framing (resync on '$', checksums, binary noise) and epoch assembly (dates, joins)."""

from __future__ import annotations

import calendar
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.capture.writers import nmea_sentence
from edge_agent.errors import EdgeAgentError
from edge_agent.sources.base import SourceStats
from edge_agent.sources.nmea import (
    CLOCK_DATE_AFTER_EPOCHS,
    RECEIVER_UERE_M,
    Epoch,
    EpochAssembler,
    NmeaFramer,
    sigma_from_gst,
    sigma_from_hdop,
)

RMC = nmea_sentence("GNRMC,120000.00,A,4728.4100000,N,00648.6720000,E,0.0,,230523,,,A")
GGA = nmea_sentence("GNGGA,120000.00,4728.4100000,N,00648.6720000,E,1,09,0.90,340.0,M,47.0,M,,")
GST = nmea_sentence("GNGST,120000.00,1.2,1.5,1.0,0.0,0.6,0.8,1.9")
T0 = calendar.timegm((2023, 5, 23, 12, 0, 0))


def frame(data: bytes) -> tuple[list[str], SourceStats]:
    stats = SourceStats()
    f = NmeaFramer(stats)
    out = list(f.feed(data)) + list(f.flush())
    return out, stats


def epochs(lines: list[str]) -> tuple[list[Epoch], SourceStats]:
    stats = SourceStats()
    a = EpochAssembler(stats)
    out: list[Epoch] = []
    for s in lines:
        out += list(a.add(s))
    out += list(a.flush())
    return out, stats


def test_good_sentences_pass_with_any_line_ending() -> None:
    out, stats = frame(f"{RMC}\r\n{GGA}\n{GST}".encode())
    assert out == [RMC, GGA, GST] and not stats.skipped


def test_bad_checksum_is_dropped_and_counted() -> None:
    bad = RMC[:-2] + ("00" if RMC[-2:] != "00" else "01")
    out, stats = frame(f"{bad}\n{GGA}\n".encode())
    assert out == [GGA] and stats.skipped == {"bad_checksum": 1}


def test_missing_checksum_is_dropped_and_counted() -> None:
    out, stats = frame(f"{RMC.split('*')[0]}\n{GGA}\n".encode())
    assert out == [GGA] and stats.skipped == {"no_checksum": 1}


def test_run_together_sentences_resync_on_dollar() -> None:
    # A truncated sentence followed by a whole one on the same line (real in gp-320fw log).
    out, stats = frame(f"$GPGSA,A,1,,,,,,{GGA}\n{RMC[:30]}{RMC}\n".encode())
    assert out == [GGA, RMC] and stats.skipped == {"no_checksum": 2}


def test_binary_before_dollar_is_skipped_and_sentence_kept() -> None:
    ubx = bytes([0xB5, 0x62, 0x01, 0x07, 0x5C, 0x00, 0x24 ^ 0xFF, 0x00, 0x9A])
    out, stats = frame(ubx + GGA.encode() + b"\r\n" + ubx + b"\n")
    assert out == [GGA] and stats.skipped == {"non_nmea": 2}


def test_binary_inside_a_sentence_is_malformed() -> None:
    out, stats = frame(b"$GNGGA,12\xb5\x62*00\n")
    assert out == [] and stats.skipped == {"malformed": 1}


def test_comment_lines_are_not_records() -> None:
    out, stats = frame(f"# Name: test receiver\n#\n{GGA}\n".encode())
    assert out == [GGA] and not stats.skipped


def test_gpsd_json_lines_are_not_counted_as_garbage() -> None:
    stats = SourceStats()
    f = NmeaFramer(stats, skip_json=True)
    out = list(f.feed(b'{"class":"VERSION"}\r\n' + GGA.encode() + b"\r\n"))
    assert out == [GGA] and not stats.skipped


def test_chunking_does_not_change_the_result() -> None:
    data = f"{RMC}\r\n{GGA}\r\n{GST}\r\n".encode() * 3
    whole, _ = frame(data)
    stats = SourceStats()
    f = NmeaFramer(stats)
    pieces: list[str] = []
    for i in range(0, len(data), 7):
        pieces += f.feed(data[i:i + 7])
    pieces += f.flush()
    assert pieces == whole


def test_endless_binary_line_is_bounded() -> None:
    out, stats = frame(b"\xb5\x62" * 10000 + b"\n" + GGA.encode() + b"\n")
    assert out == [GGA] and stats.skipped["non_nmea"] >= 1


def test_rmc_gga_gst_of_one_time_join_into_one_fix() -> None:
    out, stats = epochs([RMC, GGA, GST])
    assert len(out) == 1 and not stats.skipped
    e = out[0]
    assert e.t == T0 and e.fix and e.fix_quality == 1 and e.num_sats == 9
    assert math.isclose(e.lat, 47 + 28.41 / 60) and math.isclose(e.lon, 6 + 48.672 / 60)
    assert e.hdop == 0.9 and (e.sigma_lat_m, e.sigma_lon_m) == (0.6, 0.8)


def test_sigma_from_gst_else_hdop_times_uere() -> None:
    assert math.isclose(sigma_from_gst(0.6, 0.8), math.sqrt(0.5))
    assert math.isclose(sigma_from_hdop(1.0), RECEIVER_UERE_M / math.sqrt(2))


def test_gga_without_dated_rmc_takes_last_date_and_rolls_over_midnight() -> None:
    late_rmc = nmea_sentence("GPRMC,235959.00,A,4728.41,N,00648.672,E,0.0,,230523,,,A")
    gga_after = nmea_sentence("GPGGA,000001.00,4728.41,N,00648.672,E,1,05,1.2,340.0,M,47.0,M,,")
    out, _ = epochs([late_rmc, gga_after])
    assert [e.t for e in out] == [T0 + 12 * 3600 - 1, T0 + 12 * 3600 + 1]


def test_gga_before_any_date_is_dropped() -> None:
    out, stats = epochs([GGA])
    assert out == [] and stats.skipped == {"no_date": 1}


def test_zda_dates_a_receiver_without_rmc() -> None:
    zda = nmea_sentence("GPZDA,120000.00,23,05,2023,00,00")
    out, _ = epochs([GGA, zda])
    assert [e.t for e in out] == [T0]


def test_no_fix_epoch_reported_once() -> None:
    rmc_v = nmea_sentence("GNRMC,120001.00,V,,,,,,,230523,,,N")
    gga_0 = nmea_sentence("GNGGA,120001.00,,,,,0,00,99.99,,,,,,")
    gga_0_gl = nmea_sentence("GLGGA,120001.00,,,,,0,00,99.99,,,,,,")
    out, _ = epochs([RMC, GGA, rmc_v, gga_0, gga_0_gl])
    assert [(e.t, e.fix) for e in out] == [(T0, True), (T0 + 1, False)]


def test_implausible_dates_are_rejected() -> None:
    y1980 = nmea_sentence("GPRMC,115959.00,V,,,,,,,050180,,,N")
    rollover = nmea_sentence("GPRMC,120005.00,A,4728.41,N,00648.672,E,0.0,,070904,,,A")
    out, stats = epochs([y1980, RMC, rollover])
    assert [e.t for e in out] == [T0]
    assert stats.skipped == {"implausible_date": 2}


def test_proprietary_and_unused_sentences() -> None:
    out, stats = epochs([nmea_sentence("PMTK001,604,3"), nmea_sentence("GPGSV,1,1,00"), RMC])
    assert len(out) == 1 and stats.skipped == {"proprietary": 1}


def test_rmc_only_fix_uses_unknown_hdop() -> None:
    out, _ = epochs([RMC])
    assert out[0].fix and out[0].hdop == 0.0 and out[0].sigma_lat_m is None


def test_null_island_is_not_a_fix() -> None:
    rmc0 = nmea_sentence("GPRMC,120000.00,A,0000.0000,N,00000.0000,E,,,230523,,,N")
    out, stats = epochs([rmc0])
    assert out == [] and stats.skipped == {"null_position": 1}


# -- property-based: nothing but the project's errors, ever -------------------------------------

def run_all(data: bytes) -> list[Epoch]:
    stats = SourceStats()
    f = NmeaFramer(stats)
    a = EpochAssembler(stats)
    out: list[Epoch] = []
    try:
        for s in list(f.feed(data)) + list(f.flush()):
            out += a.add(s)
        out += a.flush()
    except EdgeAgentError:
        pass
    return out


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_never_raise(data: bytes) -> None:
    run_all(data)


_GOOD = f"{RMC}\r\n{GGA}\r\n{GST}\r\n".encode()


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_GOOD) - 1), st.integers(0, 255)), max_size=6),
       st.integers(0, len(_GOOD)))
def test_mutated_sentences_never_raise_and_stay_ordered(edits: list[tuple[int, int]],
                                                       cut: int) -> None:
    data = bytearray(_GOOD * 2)
    for pos, value in edits:
        data[pos] = value
    out = run_all(bytes(data[:len(_GOOD) + cut]))
    assert [e.t for e in out] == sorted(e.t for e in out)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="$GPNRMCAZD0123456789,.*ENWSV-", max_size=80), max_size=8))
def test_random_sentence_like_lines_never_raise(lines: list[str]) -> None:
    bodies = [nmea_sentence(s.replace("$", "").replace("*", "")) if i % 2 else s
              for i, s in enumerate(lines)]
    run_all("\r\n".join(bodies).encode())


def test_complete_epoch_closes_without_waiting_for_the_next() -> None:
    """Live latency: once the receiver's sentence set is known, an epoch is out on its last one."""
    stats = SourceStats()
    a = EpochAssembler(stats, early_close=True)
    second = [s.replace("120000.00", "120001.00") for s in (RMC, GGA, GST)]
    second = [nmea_sentence(s[1:s.index("*")]) for s in second]
    first_out = [e for s in (RMC, GGA, GST) for e in a.add(s)]
    assert first_out == []  # first epoch: the set of sentence types is not known yet
    out = [list(a.add(s)) for s in second]
    assert [len(o) for o in out] == [1, 0, 1]  # epoch 1 on a new time; epoch 2 on its GST
    assert out[2][0].t == T0 + 1 and out[2][0].sigma_lat_m == 0.6
    late_dup = nmea_sentence(second[1][1:second[1].index("*")].replace("GNGGA", "GLGGA"))
    assert list(a.add(late_dup)) == [] and list(a.flush()) == []
    assert not stats.skipped


def test_new_sentence_type_is_waited_for_after_it_first_arrives_late() -> None:
    a = EpochAssembler(SourceStats(), early_close=True)
    at = [[nmea_sentence(s[1:s.index("*")].replace("120000.00", f"12000{i}.00"))
           for s in (RMC, GGA)] for i in range(4)]
    out = [e for s in at[0][:1] + at[1][:1] + at[2] + at[3] for e in a.add(s)]
    out += a.flush()
    # epochs 0, 1: RMC only; epoch 2's GGA arrives after the early close (RMC-only fix);
    # epoch 3 waits for its GGA again and carries its HDOP
    assert [e.t - T0 for e in out] == [0, 1, 2, 3]
    assert [e.hdop for e in out] == [0.0, 0.0, 0.0, 0.9]


def test_live_gga_only_receiver_is_dated_by_the_clock_day_nearest() -> None:
    # clock just after midnight of the 24th; an epoch at 23:59:59 belongs to the 23rd
    now = calendar.timegm((2023, 5, 24, 0, 0, 2))
    stats = SourceStats()
    a = EpochAssembler(stats, date_clock=lambda: now)
    lines = [nmea_sentence(f"GPGGA,{tod},4728.41,N,00648.672,E,1,05,1.2,340.0,M,47.0,M,,")
             for tod in ("235953.00", "235954.00", "235955.00", "235956.00", "235957.00",
                         "235959.00", "000001.00")]
    out = [e for s in lines for e in a.add(s)] + list(a.flush())
    # the first CLOCK_DATE_AFTER_EPOCHS epochs wait for an RMC/ZDA date that never comes
    assert stats.skipped == {"no_date": CLOCK_DATE_AFTER_EPOCHS}
    assert [e.t for e in out] == [now - 3, now - 1]
    assert stats.warnings


_FIELD = st.text(alphabet="0123456789ABCDEFabz.,-* +$", max_size=40)


@settings(max_examples=300, deadline=None)
@given(talker=st.sampled_from(["GN", "GP", "GL", "QQ"]),
       kind=st.sampled_from(["RMC", "GGA", "GST", "ZDA", "GSA"]), fields=_FIELD,
       case=st.sampled_from(["upper", "lower", "space", "plus"]))
def test_checked_fast_path_builds_what_pynmea2_parses(talker: str, kind: str, fields: str,
                                                       case: str) -> None:
    """EpochAssembler.add(checked=True) builds pynmea2's sentence object itself for the plain
    shape: the same class and data as pynmea2.parse, or pynmea2.parse decides."""
    import pynmea2

    from edge_agent.sources.nmea import _talker_sentence, nmea_checksum

    body = f"{talker}{kind},{fields}"
    given_cs = f"{nmea_checksum(body):02X}"
    given_cs = {"upper": given_cs, "lower": given_cs.lower(), "space": " " + given_cs[1],
                "plus": "+" + given_cs[1]}[case]
    sentence = f"${body}*{given_cs}"
    fast = _talker_sentence(sentence, talker + kind)
    try:
        ref = pynmea2.parse(sentence, check=False)
    except (pynmea2.ParseError, ValueError):
        assert fast is None
        return
    if fast is not None:
        assert (type(fast), fast.talker, fast.sentence_type, fast.data) == (
            type(ref), ref.talker, ref.sentence_type, ref.data)


def test_gnss_source_gives_the_same_epochs_as_pynmea2_parse_on_real_logs() -> None:
    """Every real receiver log: the source's checked path against add() without it."""
    from pathlib import Path

    from edge_agent.sources.gnss import GnssSource

    logs = sorted((Path(__file__).parents[1] / "data/real-captures/gnss").glob("*.log"))
    assert logs
    for log in logs:
        src = GnssSource.replay(log, None)
        fast = list(src)
        stats = SourceStats()
        framer, assembler = NmeaFramer(stats), EpochAssembler(stats)
        slow = [e for s in [*framer.feed(log.read_bytes()), *framer.flush()]
                for e in assembler.add(s)] + list(assembler.flush())
        assert [(o.t, getattr(o, "lat", None), getattr(o, "lon", None),
                 getattr(o, "hdop", None), getattr(o, "fix_quality", None))
                for o in fast] == [(e.t, e.lat, e.lon, e.hdop, e.fix_quality) if e.fix
                                   else (e.t, None, None, None, None) for e in slow], log.name
        assert src.stats.skipped == stats.skipped, log.name
