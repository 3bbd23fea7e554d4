"""The dashboard test's reading of PromQL finds every series name and label, and nothing
else (no function, keyword, string, duration or Grafana variable)."""

from __future__ import annotations

import pytest

from tests.observability.promql import read, variable_metrics

CASES = [
    ("bare", "up", {"up"}, {}, set()),
    (
        "rate_with_variables",
        'rate(process_cpu_seconds_total{job=~"$job"}[$__rate_interval])',
        {"process_cpu_seconds_total"},
        {"process_cpu_seconds_total": {"job"}},
        set(),
    ),
    (
        "quantile_by_before",
        "histogram_quantile(0.99, sum by (grpc_service, le) "
        '(rate(grpc_server_handling_seconds_bucket{grpc_type="unary"}[5m])))',
        {"grpc_server_handling_seconds_bucket"},
        {"grpc_server_handling_seconds_bucket": {"grpc_type"}},
        {"grpc_service", "le"},
    ),
    (
        "ratio_by_after",
        'sum(rate(a_total{code=~"5..|Internal"}[1m])) by (route)'
        " / sum(rate(b_total[1m])) by (route)",
        {"a_total", "b_total"},
        {"a_total": {"code"}},
        {"route"},
    ),
    (
        "regex_braces_and_names_in_strings",
        'sum(x_total{type=~"tool[.]call[.]{1,2}(completed|failed)", hook!="by(y)"})',
        {"x_total"},
        {"x_total": {"type", "hook"}},
        set(),
    ),
    (
        "binary_keywords_offset_and_numbers",
        "a_open - on (job) group_left (version) b_info > bool 1e3 unless c offset 5m or d * 0.5",
        {"a_open", "b_info", "c", "d"},
        {},
        {"job", "version"},
    ),
    (
        "colon_names_and_without",
        "sum without (instance) (job:calls:rate5m)",
        {"job:calls:rate5m"},
        {},
        {"instance"},
    ),
]


@pytest.mark.parametrize(
    ("expression", "metrics", "matched", "grouped"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_read_finds_the_series_and_labels_of_an_expression(
    expression: str, metrics: set[str], matched: dict[str, set[str]], grouped: set[str]
) -> None:
    query = read(expression)

    assert query.metrics == metrics
    assert {name: set(labels) for name, labels in query.matched} == matched
    assert query.grouped == grouped


@pytest.mark.parametrize(
    ("query", "metrics"),
    [
        ("label_values(plugmesh_build_info, job)", {"plugmesh_build_info"}),
        ('label_values(plugmesh_build_info{job=~"$job"}, instance)', {"plugmesh_build_info"}),
        ("label_values(job)", set()),
        ("query_result(topk(3, up))", {"up"}),
    ],
    ids=["label_values", "label_values_selector", "label_values_label_only", "query_result"],
)
def test_variable_metrics_reads_the_series_of_a_variable_query(
    query: str, metrics: set[str]
) -> None:
    assert variable_metrics(query) == metrics
