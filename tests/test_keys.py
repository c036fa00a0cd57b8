"""S3 object keys and prefix validation, as Firehose does them (docs/compatibility.md)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from firehose.javatime import format_java_timestamp, java_pattern_problems
from firehose.keys import (
    KeyFormatError,
    KeyTooLongError,
    MissingPartitionKeyError,
    ObjectKeyFormat,
    file_extension_problems,
    prefix_problems,
)

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
RANDOM_STRING = r"[0-9a-f-]{11}"


def epoch_ms(
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    *,
    tz: timezone = UTC,
) -> int:
    """Epoch milliseconds of a wall-clock time, the unit records arrive with."""
    moment = datetime(year, month, day, hour, minute, second, tzinfo=tz)
    return int(moment.timestamp() * 1000)


# Firehose's documented examples: the oldest record arrived 2018-08-27 10:30 UTC.
ARRIVAL_2018 = epoch_ms(2018, 8, 27, 10, 30)
ARRIVAL_2026 = epoch_ms(2026, 11, 22, 10, 5, 7)


def key_format(**options: object) -> ObjectKeyFormat:
    return ObjectKeyFormat(stream_name="clicks", version=1, **options)  # type: ignore[arg-type]


def split_key(key: str) -> tuple[str, str]:
    """(prefix, file name): the file name is everything after the last slash."""
    prefix, _, name = key.rpartition("/")
    return (prefix + "/" if prefix else ""), name


# ---- object keys --------------------------------------------------------------------------------


def test_file_name_has_stream_version_timestamp_uuid_and_extension() -> None:
    key = ObjectKeyFormat(stream_name="clicks", version=7, extension=".gz").object_key(ARRIVAL_2026)
    _, name = split_key(key)
    assert re.fullmatch(rf"clicks-7-2026-11-22-10-05-07-{UUID}\.gz", name)


def test_file_name_without_extension() -> None:
    key = key_format().object_key(ARRIVAL_2026)
    assert re.fullmatch(rf"2026/11/22/10/clicks-1-2026-11-22-10-05-07-{UUID}", key)


def test_version_may_be_a_string() -> None:
    key = ObjectKeyFormat(stream_name="s", version="3").object_key(ARRIVAL_2026, "id")
    assert key == "2026/11/22/10/s-3-2026-11-22-10-05-07-id"


def test_each_key_gets_a_fresh_uuid() -> None:
    keys = key_format()
    assert keys.object_key(ARRIVAL_2026) != keys.object_key(ARRIVAL_2026)


def test_object_id_replaces_the_uuid_so_a_retry_reuses_the_key() -> None:
    keys = key_format(
        prefix="r=!{firehose:random-string}/",
        error_output_prefix="e/!{firehose:error-output-type}/",
    )
    first = keys.object_key(ARRIVAL_2026, "0f5e0c9e-2a47-4d4e-9d8a-3f1b2c7d9e01")
    assert first == keys.object_key(ARRIVAL_2026, "0f5e0c9e-2a47-4d4e-9d8a-3f1b2c7d9e01")
    assert first.endswith("-0f5e0c9e-2a47-4d4e-9d8a-3f1b2c7d9e01")
    assert first != keys.object_key(ARRIVAL_2026, "another-id")


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("", "2026/11/22/10/"),
        ("logs/", "logs/2026/11/22/10/"),
        ("logs", "logs2026/11/22/10/"),
    ],
)
def test_default_timestamp_is_appended_without_a_slash(prefix: str, expected: str) -> None:
    key = key_format(prefix=prefix).object_key(ARRIVAL_2026, "id")
    assert key == expected + "clicks-1-2026-11-22-10-05-07-id"


def test_no_default_timestamp_when_prefix_has_one() -> None:
    keys = key_format(
        prefix="d=!{timestamp:yyyy-MM-dd}/", error_output_prefix="e/!{firehose:error-output-type}/"
    )
    assert keys.object_key(ARRIVAL_2026, "id") == "d=2026-11-22/clicks-1-2026-11-22-10-05-07-id"


def test_every_timestamp_in_a_prefix_is_the_same_instant() -> None:
    keys = key_format(
        prefix="!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/!{timestamp:HH-mm-ss.SSS}/",
        error_output_prefix="e/!{firehose:error-output-type}/",
    )
    arrival = epoch_ms(2026, 12, 31, 23, 59, 59) + 999
    assert split_key(keys.object_key(arrival, "id"))[0] == "2026/12/31/23-59-59.999/"


def test_timestamp_is_the_oldest_arrival_in_milliseconds() -> None:
    keys = key_format(
        prefix="!{timestamp:ss.SSS}/", error_output_prefix="e/!{firehose:error-output-type}/"
    )
    assert keys.object_key(ARRIVAL_2026 + 123, "id").startswith("07.123/")


def test_time_zone_shifts_prefix_and_file_name_alike() -> None:
    # 2026-11-22 20:30 UTC is 2026-11-23 05:30 in Tokyo (UTC+9, no DST).
    arrival = epoch_ms(2026, 11, 22, 20, 30)
    key = key_format(time_zone="Asia/Tokyo").object_key(arrival, "id")
    assert key == "2026/11/23/05/clicks-1-2026-11-23-05-30-00-id"
    assert key_format().object_key(arrival, "id") == "2026/11/22/20/clicks-1-2026-11-22-20-30-00-id"


def test_time_zone_reaches_timestamp_expressions_and_offsets() -> None:
    keys = key_format(
        prefix="!{timestamp:yyyy-MM-dd'T'HHZ}/",
        error_output_prefix="e/!{firehose:error-output-type}/",
        time_zone="Asia/Tokyo",
    )
    assert keys.object_key(epoch_ms(2026, 12, 31, 15, 0), "id").startswith("2027-01-01T00+0900/")


def test_time_zone_follows_daylight_saving() -> None:
    keys = key_format(time_zone="America/New_York")
    assert keys.object_key(epoch_ms(2026, 7, 1, 12, 0), "id").startswith("2026/07/01/08/")
    assert keys.object_key(epoch_ms(2026, 1, 1, 12, 0), "id").startswith("2026/01/01/07/")


def test_unknown_time_zone_is_refused() -> None:
    with pytest.raises(KeyFormatError, match="CustomTimeZone: must be an IANA time zone name"):
        key_format(time_zone="Mars/Olympus")


def test_random_string_shape_and_freshness_per_use() -> None:
    keys = key_format(
        prefix="a=!{firehose:random-string}/b=!{firehose:random-string}/",
        error_output_prefix="e/!{firehose:error-output-type}/",
    )
    prefix, _ = split_key(keys.object_key(ARRIVAL_2026))
    match = re.fullmatch(rf"a=({RANDOM_STRING})/b=({RANDOM_STRING})/2026/11/22/10/", prefix)
    assert match is not None
    assert match.group(1) != match.group(2)
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{2}", match.group(1))
    assert split_key(keys.object_key(ARRIVAL_2026))[0] != prefix


# ---- the error prefix ---------------------------------------------------------------------------


def test_error_prefix_without_prefix() -> None:
    keys = key_format(error_output_prefix="fail/!{firehose:error-output-type}/")
    assert split_key(keys.object_key(ARRIVAL_2018, "id"))[0] == "2018/08/27/10/"
    assert keys.error_key("processing-failed", ARRIVAL_2018, "id") == (
        "fail/processing-failed/clicks-1-2018-08-27-10-30-00-id"
    )


def test_default_error_prefix_follows_the_prefix() -> None:
    keys = key_format(prefix="p/")
    assert split_key(keys.object_key(ARRIVAL_2018, "id"))[0] == "p/2018/08/27/10/"
    assert split_key(keys.error_key("processing-failed", ARRIVAL_2018))[0] == (
        "p/processing-failed/2018/08/27/10/"
    )


def test_expressions_in_both_prefixes() -> None:
    keys = key_format(
        prefix="y=!{timestamp:yyyy}/r=!{firehose:random-string}/",
        error_output_prefix="e/!{firehose:error-output-type}/!{timestamp:dd}/",
    )
    assert re.fullmatch(rf"y=2018/r={RANDOM_STRING}/", split_key(keys.object_key(ARRIVAL_2018))[0])
    assert split_key(keys.error_key("processing-failed", ARRIVAL_2018))[0] == (
        "e/processing-failed/27/"
    )


def test_prefix_expressions_need_an_error_prefix() -> None:
    assert prefix_problems("!{timestamp:yyyy/MM/dd}", None) == [
        ("ErrorOutputPrefix", "is required when Prefix contains expressions")
    ]
    with pytest.raises(KeyFormatError, match="ErrorOutputPrefix: is required"):
        key_format(prefix="!{timestamp:yyyy/MM/dd}")


def test_default_error_prefix_without_any_prefix() -> None:
    key = key_format().error_key("format-conversion-failed", ARRIVAL_2018, "id")
    assert key == "format-conversion-failed/2018/08/27/10/clicks-1-2018-08-27-10-30-00-id"


def test_error_key_file_name_matches_the_object_suffix() -> None:
    keys = ObjectKeyFormat(stream_name="clicks", version=2, extension=".gz")
    _, name = split_key(keys.error_key("http-endpoint-failed", ARRIVAL_2018))
    assert re.fullmatch(rf"clicks-2-2018-08-27-10-30-00-{UUID}\.gz", name)


def test_error_prefix_gets_no_default_timestamp() -> None:
    keys = key_format(prefix="p/", error_output_prefix="errors/")
    assert keys.error_key("processing-failed", ARRIVAL_2018, "id") == (
        "errors/clicks-1-2018-08-27-10-30-00-id"
    )


def test_error_prefix_random_string_and_time_zone() -> None:
    keys = key_format(
        error_output_prefix="!{firehose:error-output-type}/!{timestamp:yyyy-MM-dd}/!{firehose:random-string}/",
        time_zone="Asia/Tokyo",
    )
    prefix, _ = split_key(keys.error_key("splunk-failed", epoch_ms(2026, 11, 22, 20, 30)))
    assert re.fullmatch(rf"splunk-failed/2026-11-23/{RANDOM_STRING}/", prefix)


def test_error_key_needs_an_error_output_type() -> None:
    with pytest.raises(ValueError, match="error_output_type"):
        key_format().error_key("", ARRIVAL_2018)


# ---- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "error_output_prefix"),
    [
        ("", None),
        ("", ""),
        ("logs/", None),
        ("plain text with ! and { and } and : characters", None),
        ("y=!{timestamp:yyyy}/", "e/!{firehose:error-output-type}/"),
        ("!{firehose:random-string}/", "errors/"),
        ("", "e/!{firehose:error-output-type}/!{timestamp:yyyy}/!{firehose:random-string}/"),
        ("!{timestamp:'year='yyyy'/month='MM}/", "e/!{firehose:error-output-type}"),
    ],
)
def test_valid_prefixes(prefix: str, error_output_prefix: str | None) -> None:
    assert prefix_problems(prefix, error_output_prefix) == []


@pytest.mark.parametrize(
    ("prefix", "error_output_prefix", "field", "message"),
    [
        ("a!{b/", None, "Prefix", "`!{` at position 2 does not start a complete"),
        ("a!{timestamp}/", None, "Prefix", "does not start a complete !{namespace:value}"),
        ("!{ab!{timestamp:yyyy}/", "e/!{firehose:error-output-type}/", "Prefix", "position 1"),
        ("", "e/!{firehose:error-output-type", "ErrorOutputPrefix", "complete"),
        ("!{time:yyyy}/", "e/!{firehose:error-output-type}/", "Prefix", "unknown namespace `time`"),
        ("!{Timestamp:yyyy}/", "e/!{firehose:error-output-type}/", "Prefix", "namespace"),
        (
            "!{firehose:uuid}/",
            "e/!{firehose:error-output-type}/",
            "Prefix",
            "unknown firehose value",
        ),
        ("!{timestamp:}/", "e/!{firehose:error-output-type}/", "Prefix", "needs a value"),
        ("!{timestamp:yyyyQ}/", "e/!{firehose:error-output-type}/", "Prefix", "letter `Q`"),
        (
            "!{firehose:error-output-type}/",
            "e/!{firehose:error-output-type}/",
            "Prefix",
            "may not contain",
        ),
        ("!{timestamp:yyyy}/", None, "ErrorOutputPrefix", "is required when Prefix contains"),
        ("!{timestamp:yyyy}/", "", "ErrorOutputPrefix", "is required"),
        (
            "",
            "e/!{timestamp:yyyy}/",
            "ErrorOutputPrefix",
            "must contain !{firehose:error-output-type}",
        ),
        ("", "e/!{firehose:random-string}/", "ErrorOutputPrefix", "must contain"),
        ("x" * 1025, None, "Prefix", "is 1025 characters long, at most 1024"),
        ("", "x" * 1025, "ErrorOutputPrefix", "is 1025 characters long, at most 1024"),
    ],
)
def test_invalid_prefixes(
    prefix: str, error_output_prefix: str | None, field: str, message: str
) -> None:
    problems = prefix_problems(prefix, error_output_prefix)
    assert any(f == field and message in m for f, m in problems), problems


def test_1024_characters_are_allowed_as_configured() -> None:
    assert prefix_problems("x" * 400, "y" * 1024) == []
    # A plain Prefix that long would evaluate past 512 at every delivery: refused for that alone.
    problems = prefix_problems("x" * 1024, None)
    assert problems == [("Prefix", problems[0][1])]
    assert "1038 characters long, at most 512" in problems[0][1]


def test_every_problem_is_reported_at_once() -> None:
    problems = prefix_problems(
        "!{foo:1}/!{firehose:error-output-type}/!{timestamp:QQ}/", "e/!{timestamp:yyyy}"
    )
    assert [field for field, _ in problems] == ["Prefix", "Prefix", "Prefix", "ErrorOutputPrefix"]


@pytest.mark.parametrize("namespace", ["partitionKeyFromQuery", "partitionKeyFromLambda"])
def test_partition_keys_need_dynamic_partitioning(namespace: str) -> None:
    prefix = f"customer=!{{{namespace}:customer_id}}/"
    assert prefix_problems(prefix, "e/!{firehose:error-output-type}/") == [
        ("Prefix", f"`!{{{namespace}:customer_id}}` needs dynamic partitioning enabled")
    ]
    assert (
        prefix_problems(prefix, "e/!{firehose:error-output-type}/", dynamic_partitioning=True) == []
    )


@pytest.mark.parametrize("namespace", ["partitionKeyFromQuery", "partitionKeyFromLambda"])
def test_error_prefix_never_takes_partition_keys(namespace: str) -> None:
    error_prefix = f"e/!{{firehose:error-output-type}}/!{{{namespace}:id}}/"
    problems = prefix_problems(
        "!{partitionKeyFromQuery:id}/", error_prefix, dynamic_partitioning=True
    )
    assert problems == [
        ("ErrorOutputPrefix", f"may not use `!{{{namespace}:id}}`; partition keys are for Prefix")
    ]


def test_dynamic_partitioning_needs_a_partition_key_and_an_error_prefix() -> None:
    problems = prefix_problems("logs/", None, dynamic_partitioning=True)
    assert [field for field, _ in problems] == ["Prefix", "ErrorOutputPrefix"]
    assert "at least one !{partitionKeyFromQuery:…}" in problems[0][1]
    assert problems[1][1] == "is required with dynamic partitioning"


def test_object_key_format_refuses_invalid_options_with_every_problem() -> None:
    with pytest.raises(KeyFormatError) as raised:
        key_format(prefix="!{firehose:error-output-type}", extension="gz")
    fields = [field for field, _ in raised.value.problems]
    assert fields == ["Prefix", "ErrorOutputPrefix", "FileExtension"]
    assert isinstance(raised.value, ValueError)


def test_object_key_format_refuses_an_empty_stream_name() -> None:
    with pytest.raises(KeyFormatError, match="DeliveryStreamName"):
        ObjectKeyFormat(stream_name="", version=1)


# ---- partition keys (dynamic partitioning) ------------------------------------------------------


def partitioned_format() -> ObjectKeyFormat:
    return key_format(
        prefix="c=!{partitionKeyFromQuery:customer}/d=!{partitionKeyFromLambda:customer}/",
        error_output_prefix="e/!{firehose:error-output-type}/",
        dynamic_partitioning=True,
    )


def test_partition_keys_fill_their_own_namespace() -> None:
    key = partitioned_format().object_key(
        ARRIVAL_2026,
        "id",
        partition_keys={"customer": "42"},
        lambda_partition_keys={"customer": "7"},
    )
    assert key == "c=42/d=7/2026/11/22/10/clicks-1-2026-11-22-10-05-07-id"


def test_missing_partition_key_names_the_expression() -> None:
    with pytest.raises(MissingPartitionKeyError) as raised:
        partitioned_format().object_key(ARRIVAL_2026, partition_keys={"customer": "42"})
    assert isinstance(raised.value, KeyError)
    assert "!{partitionKeyFromLambda:customer}" in str(raised.value)
    assert (raised.value.namespace, raised.value.name) == ("partitionKeyFromLambda", "customer")


# ---- the 512-character evaluated limit ----------------------------------------------------------


def test_evaluated_prefix_of_512_characters_is_fine() -> None:
    # The default timestamp adds 14 characters.
    key = key_format(prefix="x" * (512 - 14)).object_key(ARRIVAL_2026, "id")
    assert len(split_key(key)[0]) == 512


def test_prefix_that_always_evaluates_over_512_characters_is_refused_at_config_time() -> None:
    (problem,) = prefix_problems("x" * (513 - 14), None)
    assert problem[0] == "Prefix" and "513 characters" in problem[1]
    with pytest.raises(KeyFormatError):
        key_format(prefix="x" * (513 - 14))
    # The widest timestamp text counts: September and Wednesday are the longest names.
    assert prefix_problems(
        "x" * (512 - 8) + "!{timestamp:MMMM}", "e/!{firehose:error-output-type}/"
    )
    assert not prefix_problems(
        "x" * (512 - 9) + "!{timestamp:MMMM}", "e/!{firehose:error-output-type}/"
    )


def test_partition_key_values_can_push_the_prefix_over_512() -> None:
    keys = partitioned_format()
    with pytest.raises(KeyTooLongError):
        keys.object_key(
            ARRIVAL_2026,
            partition_keys={"customer": "x" * 300},
            lambda_partition_keys={"customer": "y" * 300},
        )


def test_error_prefix_over_512_characters_raises() -> None:
    keys = key_format(error_output_prefix="!{firehose:error-output-type}/" + "x" * 500)
    with pytest.raises(KeyTooLongError):
        keys.error_key("processing-failed", ARRIVAL_2026)
    assert issubclass(KeyTooLongError, ValueError)


# ---- file extensions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extension", [None, "", ".gz", ".json.gz", ".a-b_c.*'()!", "." + "z" * 127]
)
def test_valid_file_extensions(extension: str | None) -> None:
    assert file_extension_problems(extension) == []


@pytest.mark.parametrize(
    ("extension", "message"),
    [
        ("gz", "must start with '.'"),
        (".GZ", "only 0-9 a-z"),
        (".g/z", "contains '/'"),
        (".g z", "contains ' '"),
        ("." + "z" * 128, "is 129 characters long, at most 128"),
    ],
)
def test_invalid_file_extensions(extension: str, message: str) -> None:
    problems = file_extension_problems(extension)
    assert any(message in problem for problem in problems), problems


# ---- Java DateTimeFormatter subset --------------------------------------------------------------

MOMENT = datetime(2018, 8, 27, 10, 30, 5, 123456, tzinfo=UTC)  # a Monday, day 239, week 35


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("yyyy", "2018"),
        ("yy", "18"),
        ("y", "2018"),
        ("yyyyy", "02018"),
        ("uuuu", "2018"),
        ("yyyy/MM/dd/HH/", "2018/08/27/10/"),
        ("M/d/H", "8/27/10"),
        ("MMM MMMM MMMMM", "Aug August A"),
        ("mm:ss", "30:05"),
        ("DDD D DD", "239 239 239"),
        ("ww w YYYY", "35 35 2018"),
        ("EEE EEEE E", "Mon Monday Mon"),
        ("hh a", "10 AM"),
        ("SSS S SSSSSS SSSSSSSSS", "123 1 123456 123456000"),
        ("Z XXX x ZZZZZ", "+0000 Z +00 Z"),
        ("'year='yyyy", "year=2018"),
        ("''yyyy''", "'2018'"),
        ("'it''s' yyyy", "it's 2018"),
        ("yyyy'T'HH", "2018T10"),
        ("yyyy-MM-dd_HH.mm =/", "2018-08-27_10.30 =/"),
        ("yyyy[-MM]", "2018-08"),
        ("", ""),
    ],
)
def test_java_patterns(pattern: str, expected: str) -> None:
    assert java_pattern_problems(pattern) == []
    assert format_java_timestamp(pattern, MOMENT) == expected


def test_small_days_and_afternoon() -> None:
    moment = datetime(2026, 1, 3, 15, 4, 9, tzinfo=UTC)
    assert format_java_timestamp("D DDD d M H h hh K k a", moment) == "3 003 3 1 15 3 03 3 15 PM"
    assert format_java_timestamp("k", moment.replace(hour=0)) == "24"


def test_weeks_are_counted_as_java_does_in_the_us_locale() -> None:
    # Values printed by JDK 17's DateTimeFormatter.ofPattern(p, Locale.US).
    assert format_java_timestamp("ww", datetime(2026, 11, 29, tzinfo=UTC)) == "49"  # a Sunday
    assert format_java_timestamp("YYYY ww", datetime(2026, 12, 31, tzinfo=UTC)) == "2027 01"
    assert format_java_timestamp("YYYY-w", datetime(2027, 1, 4, tzinfo=UTC)) == "2027-2"
    assert format_java_timestamp("YYYY-w", datetime(2027, 1, 2, tzinfo=UTC)) == "2027-1"


def test_offsets_outside_utc() -> None:
    tokyo = datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=9)))
    assert format_java_timestamp("Z X XX XXX ZZZZZ", tokyo) == "+0900 +09 +0900 +09:00 +09:00"
    india = datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert format_java_timestamp("X", india) == "+0530"
    west = datetime(2026, 1, 1, tzinfo=timezone(-timedelta(hours=3)))
    assert format_java_timestamp("Z", west) == "-0300"


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("yyyy-Q", "pattern letter `Q` is not supported"),
        ("T", "pattern letter `T`"),
        ("ddd", "`ddd` has too many pattern letters"),
        ("HHH", "too many"),
        ("aa", "too many"),
        ("DDDD", "too many"),
        ("ZZZZ", "`ZZZZ` is a form of `Z` that is not supported"),
        ("yyyy 'open", "never closed"),
        ("'''", "never closed"),
        ("yyyy]", "`]` closes an optional section"),
        ("yyyy#", "`#` is reserved"),
        ("{yyyy", "`{` is reserved"),
    ],
)
def test_bad_java_patterns(pattern: str, message: str) -> None:
    problems = java_pattern_problems(pattern)
    assert any(message in problem for problem in problems), problems
    with pytest.raises(ValueError, match=re.escape(message)):
        format_java_timestamp(pattern, MOMENT)


def test_quoted_letters_and_non_ascii_are_literal() -> None:
    assert java_pattern_problems("'Quarter Q' é yyyy") == []
    assert format_java_timestamp("'Quarter Q' é yyyy", MOMENT) == "Quarter Q é 2018"
