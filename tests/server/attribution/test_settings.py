"""Attribution settings are validated once, and every problem is reported together."""

import pytest

from kubenetmon.errors import SettingsError
from kubenetmon.server.attribution.settings import AttributionSettings, PeeredRange


def test_defaults_are_valid_and_private_ranges_are_rfc1918_and_ula() -> None:
    settings = AttributionSettings().validated()
    assert settings.private_ranges == ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")


@pytest.mark.parametrize("bucket", [0, 7, 86401, -60])
def test_a_bucket_that_does_not_divide_a_day_is_rejected(bucket: int) -> None:
    with pytest.raises(SettingsError, match=f"bucket_seconds={bucket}"):
        AttributionSettings(bucket_seconds=bucket).validated()


def test_all_problems_are_listed_at_once() -> None:
    settings = AttributionSettings(
        bucket_seconds=7, private_ranges=("10.0.0.0/33",), peered_ranges=(PeeredRange("nope", ""),)
    )
    with pytest.raises(SettingsError) as caught:
        settings.validated()
    message = str(caught.value)
    for fragment in ("bucket_seconds=7", "'10.0.0.0/33'", "'nope'", "nope needs a region"):
        assert fragment in message
