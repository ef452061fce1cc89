"""site.json loading, validation messages and the WGS84 <-> site-metre conversion."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.spec import spec_site

from edge_agent.errors import SiteError
from edge_agent.site import Origin, enu_to_geodetic, geodetic_to_enu, load_site, site_from_dict

SPEC_EXAMPLE: dict[str, Any] = spec_site()
# the case the spec leaves open: upper-case BSSID, lower-case address, upper-case UUID
SPEC_EXAMPLE["wifi_aps"][0]["bssid"] = "02:9E:34:71:25:60"
SPEC_EXAMPLE["ble_beacons"][0]["address"] = "c0:12:34:56:78:9a"
SPEC_EXAMPLE["ble_beacons"][0]["uuid"] = "FDA50693-A4E2-4FB1-AFCF-C6EB07647825"


def test_spec_example_loads_and_normalises_case(tmp_path: Path) -> None:
    p = tmp_path / "site.json"
    p.write_text(json.dumps(SPEC_EXAMPLE))
    site = load_site(p)
    assert site.ap("02:9e:34:71:25:60") is not None
    assert site.ap("02:9E:34:71:25:60") is None  # lookups take the normalised lower case
    b = site.ble_beacons[0]
    assert b.address == "C0:12:34:56:78:9A"
    assert b.beacon_id == "fda50693-a4e2-4fb1-afcf-c6eb07647825/1/7"
    assert site.beacon_for(uuid=b.uuid.upper(), major=1, minor=7) is b
    assert site.beacon_for(address="c0:12:34:56:78:9a") is b
    assert site.beacon_for(address="C0:12:34:56:78:00") is None
    assert site.aisles[0].width_m == 3.5


def test_round_trip_through_to_dict_is_identity() -> None:
    site = site_from_dict(SPEC_EXAMPLE)
    assert site_from_dict(site.to_dict()) == site


def test_zones_classify_points_and_the_wall_belongs_to_one_side() -> None:
    site = site_from_dict(SPEC_EXAMPLE)
    assert site.zone_at(50, 30).name == "hall"  # type: ignore[union-attr]
    assert site.zone_at(50, 75).name == "yard"  # type: ignore[union-attr]
    assert site.is_indoor(50, 30) and not site.is_indoor(50, 75)
    assert site.zone_at(150, 30) is None


@pytest.mark.parametrize(
    ("patch", "field", "value"),
    [
        ({"wifi_aps": [{**SPEC_EXAMPLE["wifi_aps"][0], "bssid": "02:9e:34"}]},
         "wifi_aps[0].bssid", "02:9e:34"),
        ({"wifi_aps": [{**SPEC_EXAMPLE["wifi_aps"][0], "rssi_1m_dbm": 12}]},
         "wifi_aps[0].rssi_1m_dbm", 12),
        ({"bounds": {"xmin": 0, "ymin": 0, "xmax": "100", "ymax": 90}}, "bounds.xmax", "100"),
        ({"origin": {"lat": 95, "lon": 6.8}}, "origin.lat", 95),
        ({"zones": [{"name": "hall", "polygon": [[0, 0], [1, 1]]}]}, "zones[0].polygon", None),
    ],
)
def test_invalid_fields_are_named_with_their_value(patch: dict[str, Any], field: str,
                                                   value: object) -> None:
    with pytest.raises(SiteError) as err:
        site_from_dict({**SPEC_EXAMPLE, **patch}, "plant/site.json")
    assert err.value.field == field
    assert str(err.value).startswith(f"plant/site.json: {field}: ")
    if value is not None:
        assert repr(value) in str(err.value)


def test_unknown_top_level_key_is_rejected_by_name() -> None:
    with pytest.raises(SiteError, match="wifi_ap"):
        site_from_dict({**SPEC_EXAMPLE, "wifi_ap": []})


def test_missing_and_malformed_files_are_site_errors(tmp_path: Path) -> None:
    with pytest.raises(SiteError, match="file not found"):
        load_site(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    with pytest.raises(SiteError, match="not valid JSON"):
        load_site(bad)


def test_enu_conversion_round_trips_and_has_metre_scale() -> None:
    origin = Origin(47.4735, 6.8112, 340.0)
    # 0.001 degree of latitude is about 111.2 m at this latitude
    e, n, _ = geodetic_to_enu(47.4745, 6.8112, 340.0, origin)
    assert abs(e) < 0.01 and 111.0 < n < 111.4
    lat, lon, alt = enu_to_geodetic(75.0, -40.0, 0.0, origin)
    e2, n2, u2 = geodetic_to_enu(lat, lon, alt, origin)
    assert abs(e2 - 75.0) < 1e-6 and abs(n2 + 40.0) < 1e-6 and abs(u2) < 1e-6
