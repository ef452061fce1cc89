"""BLE advertising frames: LE LL with PHDR (pcap link type 256), AD structures, iBeacon, Eddystone.

Pure functions on bytes, shared by pcap replay and the bleak live path (which hands us the
manufacturer and service data already split out), so both identify beacons the same way.
Layouts: tcpdump.org LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR; Core spec Vol 6 Part B 2.3; Eddystone spec.
"""

from __future__ import annotations

import struct
import uuid as uuid_mod
from dataclasses import dataclass, field

ADV_ACCESS_ADDRESS = 0x8E89BED6  # every advertising-channel packet carries this access address
PHDR_LEN = 10  # rf_channel, signal, noise, aa_offenses, reference AA (4), flags (2)

# PHDR flag bits (tcpdump.org/linktypes/LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR.html)
FLAG_SIGNAL_VALID = 0x0002
FLAG_CRC_CHECKED = 0x0400
FLAG_CRC_VALID = 0x0800

# Advertising-channel PDU types (Core spec Vol 6 Part B 2.3)
PDU_ADV_IND = 0x0
PDU_ADV_DIRECT_IND = 0x1
PDU_ADV_NONCONN_IND = 0x2
PDU_SCAN_REQ = 0x3
PDU_SCAN_RSP = 0x4
PDU_CONNECT_IND = 0x5
PDU_ADV_SCAN_IND = 0x6
# PDUs an advertiser itself transmits with its AdvA and AdvData first: these are sightings.
# SCAN_REQ and CONNECT_IND come from the scanner/initiator; ADV_DIRECT_IND has no AdvData.
SIGHTING_PDUS = frozenset({PDU_ADV_IND, PDU_ADV_NONCONN_IND, PDU_ADV_SCAN_IND, PDU_SCAN_RSP})

# Receivers report what they measured; above 0 dBm at the antenna is impossible for a beacon
# (BLE transmitters are at most +20 dBm at the source) and signed 8-bit -128 is the "no value"
# sentinel, so anything outside [-127, 0] is a broken or non-dBm field.
RSSI_MIN_DBM = -127
RSSI_MAX_DBM = 0

AD_FLAGS = 0x01
AD_SHORT_NAME = 0x08
AD_COMPLETE_NAME = 0x09
AD_TX_POWER = 0x0A
AD_SERVICE_DATA_16 = 0x16
AD_MANUFACTURER = 0xFF

APPLE_COMPANY_ID = 0x004C
IBEACON_PREFIX = b"\x02\x15"  # iBeacon type 0x02, length 0x15 (21 bytes follow)
EDDYSTONE_UUID16 = 0xFEAA
EDDYSTONE_SERVICE_UUID = "0000feaa-0000-1000-8000-00805f9b34fb"
_EDDYSTONE_URL_SCHEMES = ("http://www.", "https://www.", "http://", "https://")
_EDDYSTONE_URL_CODES = (".com/", ".org/", ".edu/", ".net/", ".info/", ".biz/", ".gov/",
                        ".com", ".org", ".edu", ".net", ".info", ".biz", ".gov")


@dataclass(frozen=True, slots=True)
class IBeacon:
    uuid: str  # lower case, hyphenated
    major: int
    minor: int
    tx_power_dbm: int  # calibrated power at 1 m

    @property
    def beacon_id(self) -> str:
        return f"{self.uuid}/{self.major}/{self.minor}"


@dataclass(frozen=True, slots=True)
class EddystoneUid:
    namespace: str  # 20 hex digits
    instance: str  # 12 hex digits
    tx_power_0m_dbm: int


@dataclass(frozen=True, slots=True)
class EddystoneUrl:
    url: str
    tx_power_0m_dbm: int


@dataclass(frozen=True, slots=True)
class EddystoneTlm:
    battery_mv: int
    temperature_c: float | None  # None when the beacon reports 0x8000 (not supported)
    adv_count: int
    uptime_s: float


@dataclass(frozen=True, slots=True)
class AdvPayload:
    """What an advertisement says about its sender, from pcap bytes or from bleak's dicts."""

    manufacturer_data: dict[int, bytes] = field(default_factory=dict)
    service_data: dict[int, bytes] = field(default_factory=dict)  # 16-bit UUID -> data
    local_name: str = ""
    tx_power_dbm: int | None = None
    malformed: bool = False  # an AD structure ran past the end (the rest was ignored)

    @property
    def ibeacon(self) -> IBeacon | None:
        return parse_ibeacon(self.manufacturer_data.get(APPLE_COMPANY_ID, b""))

    @property
    def eddystone(self) -> EddystoneUid | EddystoneUrl | EddystoneTlm | None:
        data = self.service_data.get(EDDYSTONE_UUID16)
        return parse_eddystone(data) if data is not None else None


@dataclass(frozen=True, slots=True)
class LeFrame:
    """One link-type-256 record, decoded as far as the advertising layer."""

    rf_channel: int
    rssi_dbm: int | None  # None when the signal-valid flag is clear
    access_address: int
    pdu_type: int | None = None  # None for data-channel packets
    address: str = ""  # AdvA, upper case "AA:BB:..", for advertising PDUs that carry it
    random_address: bool = False
    payload: AdvPayload | None = None


class FrameSkip(Exception):
    """A frame that does not give a sighting; `.reason` is the counter name."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_phdr_frame(data: bytes) -> LeFrame:
    """Decode a LE-LL-with-PHDR record; FrameSkip("truncated"|"crc_invalid") when unusable."""
    if len(data) < PHDR_LEN + 4:
        raise FrameSkip("truncated")
    rf_channel, signal, _noise, _aa_off, _ref_aa, flags = struct.unpack_from("<BbbBIH", data, 0)
    if flags & FLAG_CRC_CHECKED and not flags & FLAG_CRC_VALID:
        raise FrameSkip("crc_invalid")
    rssi = signal if flags & FLAG_SIGNAL_VALID else None
    (aa,) = struct.unpack_from("<I", data, PHDR_LEN)
    if aa != ADV_ACCESS_ADDRESS:
        return LeFrame(rf_channel, rssi, aa)
    pdu = data[PHDR_LEN + 4:]
    if len(pdu) < 2:
        raise FrameSkip("truncated")
    header, length = pdu[0], pdu[1]
    pdu_type = header & 0x0F
    body = pdu[2:2 + length]
    if len(body) < length:
        raise FrameSkip("truncated")
    if pdu_type not in SIGHTING_PDUS:
        return LeFrame(rf_channel, rssi, aa, pdu_type)
    if length < 6:
        raise FrameSkip("truncated")
    address = ":".join(f"{b:02X}" for b in reversed(body[:6]))
    return LeFrame(rf_channel, rssi, aa, pdu_type, address, bool(header & 0x40),
                   parse_ad_structures(body[6:]))


def plausible_rssi(rssi_dbm: float) -> bool:
    return RSSI_MIN_DBM <= rssi_dbm <= RSSI_MAX_DBM


def parse_ad_structures(data: bytes) -> AdvPayload:
    """Split AdvData into its AD structures (length, type, value); stop at a zero length."""
    manufacturer: dict[int, bytes] = {}
    service: dict[int, bytes] = {}
    name = ""
    tx_power: int | None = None
    malformed = False
    pos = 0
    while pos < len(data):
        length = data[pos]
        if length == 0:  # early termination / padding (Core spec Vol 3 Part C 11)
            break
        if pos + 1 + length > len(data):
            malformed = True
            break
        ad_type = data[pos + 1]
        value = data[pos + 2:pos + 1 + length]
        if ad_type == AD_MANUFACTURER and len(value) >= 2:
            manufacturer[value[0] | value[1] << 8] = value[2:]
        elif ad_type == AD_SERVICE_DATA_16 and len(value) >= 2:
            service[value[0] | value[1] << 8] = value[2:]
        elif ad_type in (AD_SHORT_NAME, AD_COMPLETE_NAME) and (ad_type == AD_COMPLETE_NAME
                                                               or not name):
            name = value.decode("utf-8", "replace")
        elif ad_type == AD_TX_POWER and len(value) == 1:
            tx_power = struct.unpack("b", value)[0]
        pos += 1 + length
    return AdvPayload(manufacturer, service, name, tx_power, malformed)


def payload_from_bleak(manufacturer_data: dict[int, bytes], service_data: dict[str, bytes],
                       local_name: str | None = None,
                       tx_power_dbm: int | None = None) -> AdvPayload:
    """The same AdvPayload from bleak's AdvertisementData fields (128-bit service UUID keys)."""
    service: dict[int, bytes] = {}
    for key, value in service_data.items():
        short = _uuid16(key)
        if short is not None:
            service[short] = bytes(value)
    return AdvPayload({k: bytes(v) for k, v in manufacturer_data.items()}, service,
                      local_name or "", tx_power_dbm)


_BLUETOOTH_BASE_SUFFIX = "-0000-1000-8000-00805f9b34fb"


def _uuid16(key: str) -> int | None:
    k = key.lower()
    try:
        if len(k) == 36 and k.startswith("0000") and k.endswith(_BLUETOOTH_BASE_SUFFIX):
            return int(k[4:8], 16)
        if len(k) == 4:
            return int(k, 16)
    except ValueError:
        return None
    return None


def parse_ibeacon(apple_data: bytes) -> IBeacon | None:
    """Apple manufacturer data 02 15 uuid(16) major(2, BE) minor(2, BE) tx_power(1) -> IBeacon."""
    if len(apple_data) < 23 or not apple_data.startswith(IBEACON_PREFIX):
        return None
    u = str(uuid_mod.UUID(bytes=bytes(apple_data[2:18])))
    major, minor, tx = struct.unpack_from(">HHb", apple_data, 18)
    return IBeacon(u, major, minor, tx)


def parse_eddystone(data: bytes) -> EddystoneUid | EddystoneUrl | EddystoneTlm | None:
    """Eddystone service data (after the FEAA UUID): UID 0x00, URL 0x10, TLM 0x20."""
    if len(data) < 2:
        return None
    frame_type = data[0]
    if frame_type == 0x00 and len(data) >= 18:
        tx = struct.unpack_from("b", data, 1)[0]
        return EddystoneUid(data[2:12].hex(), data[12:18].hex(), tx)
    if frame_type == 0x10 and len(data) >= 3:
        tx = struct.unpack_from("b", data, 1)[0]
        if data[2] >= len(_EDDYSTONE_URL_SCHEMES):
            return None
        url = _EDDYSTONE_URL_SCHEMES[data[2]]
        for b in data[3:]:
            if b < len(_EDDYSTONE_URL_CODES):
                url += _EDDYSTONE_URL_CODES[b]
            elif 0x20 < b < 0x7F:
                url += chr(b)
            else:
                return None
        return EddystoneUrl(url, tx)
    if frame_type == 0x20 and len(data) >= 14 and data[1] == 0x00:
        vbatt, temp_raw, adv_cnt, sec_cnt = struct.unpack_from(">HhII", data, 2)
        temp = None if temp_raw == -0x8000 else temp_raw / 256.0
        return EddystoneTlm(vbatt, temp, adv_cnt, sec_cnt / 10.0)
    return None
