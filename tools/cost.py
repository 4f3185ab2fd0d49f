#!/usr/bin/env python3
"""The monthly cost of trailguard per million CloudTrail management events, from measured figures.

usage: cost.py MEASURED.json [PATHS]

MEASURED.json is what `perfbench cost` printed (release `detect` through the Runtime API harness against moto):
the share of management events trailguard's rules deliver, the detector's CPU time, invocation durations and
memory, and its AWS calls per delivered event. PATHS is the number of canary paths (default 3: the home region's
IAM path, one regional forwarder, one member account). Prices are us-east-1 list prices, each with the page it
was read from and that page's date, or "unverified" where no source was found; the table is printed as Markdown.
Nothing here is hand-typed into the README: `make cost` prints it.
"""
import json
import os
import sys

# (price in USD per unit, unit, source URL, date of the source)
PRICES = {
    "lambda_gb_s": (0.0000133334, "GB-s (arm64)", "https://cloudchipr.com/blog/aws-lambda-pricing", "2024"),
    "lambda_request": (0.20 / 1e6, "request",
                       "https://git.mcrn.ar/mariano/lambda_local_runner/src/commit/957e45b8adae23ce50b966346229585b5df18b4d/docs/lambdas-md/lambda-13-cost.md",
                       "undated"),
    "eventbridge_custom": (1.00 / 1e6, "custom event published (PutEvents; cross-account delivery likewise)",
                           "https://cloudburn.io/blog/amazon-eventbridge-pricing", "2026-03-13"),
    "scheduler": (1.00 / 1e6, "scheduler invocation after 14M free per month",
                  "https://cloudburn.io/blog/amazon-eventbridge-pricing", "2026-03-13"),
    "dynamodb_write": (0.625 / 1e6, "write request unit (on demand)",
                       "https://airbyte.com/data-engineering-resources/dynamodb-pricing", "2025-07-21"),
    "dynamodb_read": (0.125 / 1e6, "read request unit (on demand)",
                      "https://airbyte.com/data-engineering-resources/dynamodb-pricing", "2025-07-21"),
    "sns_publish": (0.50 / 1e6, "SNS publish", "unverified", ""),
    "kms_request": (0.03 / 1e4, "KMS request (GenerateMac)", "unverified", ""),
    "logs_gb": (0.50, "GB of CloudWatch Logs ingested", "unverified", ""),
    "guardduty_event": (4.00 / 1e6, "CloudTrail management event analysed (first tier)",
                        "https://www.factualminds.com/blog/amazon-guardduty-pricing-data-sources-multi-account/",
                        "2026-06-13"),
    "config_item": (0.003, "configuration item recorded (continuous)", "https://www.vantage.sh/blog/aws-config-pricing",
                    "undated"),
    "config_evaluation": (0.001, "rule evaluation (first 100,000)", "https://www.vantage.sh/blog/aws-config-pricing",
                          "undated"),
}

DETECT_MEMORY_GB = 256 / 1024  # infra/template.yaml: MemorySize 256
MILLION = 1_000_000
HOURS_PER_MONTH = 730


def price(name):
    return PRICES[name][0]


def main():
    measured = json.load(open(sys.argv[1]))
    paths = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    share = measured["delivered_share"]
    delivered = MILLION * share
    calls = measured["calls_per_event"]
    call = lambda *names: sum(calls.get(n, 0.0) for n in names)  # noqa: E731
    billed_s = measured["duration_ms"]["mean"] / 1000
    cpu_s = measured["cpu_ms_per_event"] / 1000
    rows = []

    def row(what, quantity, unit_price, note=""):
        rows.append((what, quantity, quantity * unit_price, note))

    row("detect requests", delivered, price("lambda_request"))
    row("detect compute, GB-s (mean invocation on moto)", delivered * billed_s * DETECT_MEMORY_GB,
        price("lambda_gb_s"), f"{measured['duration_ms']['mean']:.1f} ms mean; CPU alone {cpu_s * 1000:.2f} ms")
    row("DynamoDB writes (UpdateItem, PutItem)", delivered * call("UpdateItem", "PutItem"), price("dynamodb_write"),
        "registry, behaviour counters, locks")
    row("DynamoDB reads (GetItem, Query)", delivered * call("GetItem", "Query"), price("dynamodb_read"))
    row("KMS GenerateMac (signing findings)", delivered * call("GenerateMac"), price("kms_request"))
    row("SNS Publish (alerts)", delivered * call("Publish"), price("sns_publish"))
    row("EventBridge PutEvents (findings bus)", delivered * call("PutEvents"), price("eventbridge_custom"))
    row("EventBridge cross-account forwarding (billed to the member account)", delivered,
        price("eventbridge_custom"), "upper bound: every delivered event from a member account")
    row("CloudWatch Logs, GB", delivered * measured["log_bytes_per_event"] / 1e9, price("logs_gb"),
        f"{measured['log_bytes_per_event']:.0f} bytes per event")
    canary = 12 * HOURS_PER_MONTH * paths
    row(f"canaries: scheduler invocations ({paths} paths, 12/h each)", canary, price("scheduler"),
        "inside the 14M free; priced anyway")
    row("canaries: detect requests + compute", canary,
        price("lambda_request") + billed_s * DETECT_MEMORY_GB * price("lambda_gb_s"))
    total = sum(r[2] for r in rows)

    print(f"Measured (`{os.path.relpath(measured['binary'])}`, Runtime API harness, moto): {measured['events_sent']} events sent "
          f"({measured['delivered_from_gen']} delivered of {measured['management_events']} `trailguard gen` "
          f"management events = {100 * share:.1f}%, plus {measured['from_fixture_corpus']} from the fixture corpus); "
          f"CPU {measured['cpu_ms_per_event']:.2f} ms per event; invocation {measured['duration_ms']['mean']:.1f} ms "
          f"mean, p50 {measured['duration_ms']['p50']:.1f} ms, p99 {measured['duration_ms']['p99']:.1f} ms; peak "
          f"resident memory {measured['peak_rss_mib']:.0f} MiB (configured: 256 MB); "
          f"{measured['failed_invocations']} failed invocations.")
    print()
    print("| per million management events a month | quantity | USD |")
    print("| --- | ---: | ---: |")
    for what, quantity, usd, note in rows:
        print(f"| {what}{' (' + note + ')' if note else ''} | {quantity:,.1f} | {usd:.4f} |")
    print(f"| **trailguard** | | **{total:.2f}** |")
    print(f"| GuardDuty, CloudTrail management event analysis | {MILLION:,} | {MILLION * price('guardduty_event'):.2f} |")
    print(f"| AWS Config, if each delivered event were one configuration item and one rule evaluation (illustration) | "
          f"{delivered:,.0f} | {delivered * (price('config_item') + price('config_evaluation')):.2f} |")
    print()
    print("Prices (us-east-1):")
    for name, (usd, unit, url, date) in PRICES.items():
        source = url if url == "unverified" else f"{url} ({date})"
        print(f"- {name}: ${usd:.10g} per {unit}: {source}")


if __name__ == "__main__":
    main()
