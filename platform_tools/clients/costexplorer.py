"""All I/O to AWS Cost Explorer, behind one small class: the deployment's bill per day.

``CostExplorer.daily_bill`` asks ``ce:GetCostAndUsage`` for DAILY cost (UnblendedCost, or
the configured metric) filtered by the cluster's cost-allocation tag and grouped by SERVICE
and USAGE_TYPE (what tells compute from EBS, EFS, S3, NAT and data transfer), following
``NextPageToken``. ``tag_values`` asks the same grouped by the tag itself, without the
filter: Cost Explorer puts cost not tagged (or tagged before the tag was activated for cost
allocation) under the bare ``<key>$`` value, which is how a missing tag is told apart from a
day with nothing run.

Failures become a :class:`CostExplorerError` that says what to do: throttling is retried
with exponential backoff here (botocore's own retries are off, so one place decides and a
test can see it; each request costs $0.01), then said; a denied permission names the IAM
action and the role to grant it to.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

ACTION = "ce:GetCostAndUsage"
#: Cost Explorer has one endpoint, in us-east-1.
REGION = "us-east-1"
NO_RETRIES = Config(retries={"total_max_attempts": 1})
THROTTLED = {
    "ThrottlingException",
    "LimitExceededException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
}
METRICS = ("UnblendedCost", "AmortizedCost", "BlendedCost", "NetUnblendedCost", "NetAmortizedCost")


class CostExplorerError(RuntimeError):
    """Cost Explorer could not answer; the message says why and what to do."""


@dataclass(frozen=True)
class BillLine:
    """One service and usage type's cost on one day."""

    service: str
    usage_type: str
    amount: Decimal
    unit: str


@dataclass
class BillDay:
    """One UTC day of the bill: its lines and whether AWS still calls it an estimate."""

    day: date
    estimated: bool
    lines: list[BillLine] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))


class CostExplorer:
    """Reads the deployment's daily bill (or an endpoint standing in for Cost Explorer)."""

    def __init__(
        self,
        tag_key: str,
        tag_value: str,
        metric: str = "UnblendedCost",
        *,
        client=None,
        session: boto3.session.Session | None = None,
        endpoint_url: str | None = None,
        role_hint: str = "the accounting role (ansible eks_irsa: <cluster>-accounting)",
        attempts: int = 5,
        first_delay: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if metric not in METRICS:
            raise ValueError(f"unknown Cost Explorer metric {metric!r} (one of {', '.join(METRICS)})")
        self.tag_key, self.tag_value, self.metric = tag_key, tag_value, metric
        self.client = client or (session or boto3.session.Session()).client(
            "ce", region_name=REGION, endpoint_url=endpoint_url, config=NO_RETRIES
        )
        self.role_hint = role_hint
        self.attempts, self.first_delay, self.sleep = attempts, first_delay, sleep
        self.requests = 0  # how many requests were sent ($0.01 each)

    def daily_bill(self, first: date, last: date) -> list[BillDay]:
        """Each day from ``first`` to ``last`` included that Cost Explorer answered for."""
        params = {
            "TimePeriod": {"Start": first.isoformat(), "End": (last + timedelta(days=1)).isoformat()},
            "Granularity": "DAILY",
            "Metrics": [self.metric],
            "Filter": {"Tags": {"Key": self.tag_key, "Values": [self.tag_value], "MatchOptions": ["EQUALS"]}},
            "GroupBy": [{"Type": "DIMENSION", "Key": "SERVICE"}, {"Type": "DIMENSION", "Key": "USAGE_TYPE"}],
        }
        days: dict[date, BillDay] = {}
        for result in self._results(params):
            day = date.fromisoformat(result["TimePeriod"]["Start"])
            found = days.setdefault(day, BillDay(day, bool(result.get("Estimated"))))
            found.estimated = found.estimated or bool(result.get("Estimated"))
            for group in result.get("Groups", []):
                service, usage_type = (group["Keys"] + ["", ""])[:2]
                metric = group["Metrics"][self.metric]
                found.lines.append(BillLine(service, usage_type, Decimal(metric["Amount"]), metric["Unit"]))
        return [days[day] for day in sorted(days)]

    def tag_values(self, first: date, last: date) -> dict[str, Decimal]:
        """The window's cost per value of the tag, all of the account's cost ("" : untagged)."""
        params = {
            "TimePeriod": {"Start": first.isoformat(), "End": (last + timedelta(days=1)).isoformat()},
            "Granularity": "MONTHLY",
            "Metrics": [self.metric],
            "GroupBy": [{"Type": "TAG", "Key": self.tag_key}],
        }
        values: dict[str, Decimal] = {}
        for result in self._results(params):
            for group in result.get("Groups", []):
                value = group["Keys"][0].partition("$")[2]
                amount = Decimal(group["Metrics"][self.metric]["Amount"])
                values[value] = values.get(value, Decimal(0)) + amount
        return values

    # ------------------------------------------------------------------ I/O

    def _results(self, params: dict):
        token = None
        while True:
            page = self._call(dict(params, NextPageToken=token) if token else params)
            yield from page.get("ResultsByTime", [])
            token = page.get("NextPageToken")
            if not token:
                return

    def _call(self, params: dict) -> dict:
        delay = self.first_delay
        waited = 0.0
        for attempt in range(1, self.attempts + 1):
            try:
                self.requests += 1
                return self.client.get_cost_and_usage(**params)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                message = exc.response.get("Error", {}).get("Message", "")
                if code in THROTTLED and attempt < self.attempts:
                    self.sleep(delay)
                    waited += delay
                    delay *= 2
                    continue
                raise CostExplorerError(self._explain(code, message, attempt, waited)) from exc
            except NoCredentialsError as exc:
                raise CostExplorerError(
                    "no AWS credentials: Cost Explorer needs the credentials of a principal allowed "
                    f"{ACTION} (the accounting service has them through {self.role_hint})"
                ) from exc
            except BotoCoreError as exc:
                raise CostExplorerError(f"Cost Explorer did not answer: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _explain(self, code: str, message: str, attempt: int, waited: float) -> str:
        if code in THROTTLED:
            return (
                f"Cost Explorer is throttling requests ({code}) and still was after {attempt} "
                f"attempts over {waited:g} s of backoff: try again in a minute (each request "
                "costs $0.01; the admin page keeps an answer for an hour)"
            )
        if code in ("AccessDeniedException", "AccessDenied", "UnauthorizedOperation"):
            return (
                f"Cost Explorer denied {ACTION}: {message or code}. Grant {ACTION} (read-only) to "
                f"{self.role_hint} - provision.yml's eks_irsa role does - or run this with "
                "credentials that have it"
            )
        if code == "DataUnavailableException":
            return (
                "Cost Explorer has no data for this account yet: enable Cost Explorer once in the "
                "Billing console; its first data takes up to 24 hours"
            )
        if code == "BillExpirationException":
            return "Cost Explorer no longer holds that period (older than 14 months): ask for later dates"
        return f"Cost Explorer refused the request ({code}): {message}"
