"""The peers benchmark refuses to time a point-in-time join whose matches differ from Feast's on the sample."""
from datetime import datetime

import pytest

from benchmarks.peers import check_same_matches
from benchmarks.pit_join_bench import declaration
from lakeforge.features.retrieval import point_in_time_join


def test_same_matches_pass_a_tie_is_accepted_and_a_different_value_or_row_fails(spark):
    at = datetime(2013, 1, 2)
    table = spark.createDataFrame(
        [(1, at, 0.1), (1, at, 0.2), (2, at, 0.5), (3, datetime(2012, 1, 1), 0.9)],  # key 1: two rows at one time
        "key long, event_time timestamp, ft_a_value double")
    spine = spark.createDataFrame([(10, 1, datetime(2013, 1, 3)), (20, 2, datetime(2013, 1, 3)),
                                   (30, 3, datetime(2013, 1, 3))], "id long, key long, t timestamp")
    ours = point_in_time_join(spine, {"ft_a": (declaration("ft_a"), table)}, spine_time="t")

    def feast(rows):
        return spark.createDataFrame(rows, "id long, ft_a_value double")

    # key 3's only row is older than the TTL: no match on either side; key 1: Feast took the other tied row
    counts = check_same_matches(ours, feast([(10, 0.1), (20, 0.5), (30, None)]), {"ft_a": table})
    assert counts == {"sample_rows": 3, "matched": {"ft_a": {"lakeforge": 2, "feast": 2}}, "ties": 1}
    with pytest.raises(AssertionError, match="1 of 3 spine rows get a different ft_a_value"):
        check_same_matches(ours, feast([(10, 0.2), (20, 0.7), (30, None)]), {"ft_a": table})
    with pytest.raises(AssertionError, match="not the same spine rows"):
        check_same_matches(ours, feast([(10, 0.2), (20, 0.5)]), {"ft_a": table})
