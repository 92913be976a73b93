"""AWS APIs in tests: moto's server where it emulates the API, a documented stand-in where not.

- EC2 (DescribeInstanceTypes, DescribeSpotPriceHistory): moto's real server process.
  moto knows every instance type's real vCPU and memory; it answers every spot price with
  a flat placeholder of $0.00001 per availability zone.
- The Price List Query API (pricing:GetProducts): moto has no emulation of it and AWS
  cannot be reached here, so :class:`PricingStandIn` serves it over HTTP. It speaks the
  API's real wire protocol (JSON 1.1, ``X-Amz-Target: AWSPriceListService.GetProducts``,
  SigV4-signed requests), applies TERM_MATCH filters and pages with NextToken/MaxResults
  the way the API does, and serves price-list items in the API's ``aws_v1`` format (the
  shape of botocore's own GetProducts example): a product with attributes and a sku, and
  OnDemand and Reserved terms with price dimensions. The products are made by
  :func:`price_list_items`, decoys included (Windows, dedicated tenancy, capacity
  reservations, SQL Server, gp2, EFS Infrequent Access and One Zone) so the refresh's
  filters are exercised. Prices are test values, not a recording of AWS's.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.platform import stop_process, wait_for_http

LOCATIONS = {"us-east-1": ("US East (N. Virginia)", ""), "us-west-2": ("US West (Oregon)", "USW2-")}
DENIED_ACCESS_KEY = "AKIADENIEDPRICING"


MOTO_WITH_EXTRAS = Path(__file__).with_name("moto_extras.py")


class MotoServer:
    """moto's AWS emulation as a real server process on 127.0.0.1 and a free port (with the
    operations moto lacks: tests/moto_extras.py)."""

    def __init__(self, log: Path, env: dict[str, str] | None = None):
        from platform_tools.services.processes import free_tcp_ports

        self.env = env

        self.port = free_tcp_ports(1)[0]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-P", str(MOTO_WITH_EXTRAS), "-H", "127.0.0.1", "-p", str(self.port)],
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(self.env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_http(f"{self.url}/moto-api/", self.process, "moto_server", timeout=60)
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {self.log.read_text()[-2000:]}") from None

    def stop(self) -> None:
        stop_process(self.process)

    def client(self, service: str, region: str = "us-east-1"):
        """A boto3 client of this server, with the fake keys moto accepts."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


def _sku(*parts: str) -> str:
    return hashlib.sha1("/".join(parts).encode()).hexdigest()[:16].upper()


def _item(
    service: str, family: str, attributes: dict, unit: str, usd: float, reserved: float | None = None
) -> dict:
    sku = _sku(service, json.dumps(attributes, sort_keys=True))
    dimension = {
        "unit": unit,
        "endRange": "Inf",
        "beginRange": "0",
        "description": f"${usd} per {unit}",
        "appliesTo": [],
        "rateCode": f"{sku}.JRTCKXETXF.6YS6EN2CT7",
        "pricePerUnit": {"USD": f"{usd:.10f}"},
    }
    terms = {
        "OnDemand": {
            f"{sku}.JRTCKXETXF": {
                "priceDimensions": {dimension["rateCode"]: dimension},
                "sku": sku,
                "effectiveDate": "2026-11-01T00:00:00Z",
                "offerTermCode": "JRTCKXETXF",
                "termAttributes": {},
            }
        }
    }
    if reserved is not None:  # a 1-year no-upfront reservation: must never be taken for on-demand
        code = f"{sku}.4NA7Y494T4"
        terms["Reserved"] = {
            code: {
                "priceDimensions": {
                    f"{code}.6YS6EN2CT7": dict(dimension, pricePerUnit={"USD": f"{reserved:.10f}"})
                },
                "sku": sku,
                "effectiveDate": "2026-11-01T00:00:00Z",
                "offerTermCode": "4NA7Y494T4",
                "termAttributes": {"LeaseContractLength": "1yr", "PurchaseOption": "No Upfront"},
            }
        }
    attributes = dict(attributes, servicecode=service)
    return {
        "product": {"productFamily": family, "attributes": attributes, "sku": sku},
        "serviceCode": service,
        "terms": terms,
        "version": "20261101000000",
        "publicationDate": "2026-11-01T00:00:00Z",
    }


def price_list_items(
    on_demand: dict[str, dict[str, float]], storage: dict[str, dict[str, float]]
) -> list[dict]:
    """Price-list products: {region: {type: $/h}} and {region: {kind: $/GiB-month}}, with decoys."""
    items = []
    for region, prices in on_demand.items():
        location, prefix = LOCATIONS[region]
        for instance_type, usd in prices.items():
            base = {
                "instanceType": instance_type,
                "regionCode": region,
                "location": location,
                "locationType": "AWS Region",
                "operatingSystem": "Linux",
                "tenancy": "Shared",
                "preInstalledSw": "NA",
                "capacitystatus": "Used",
                "marketoption": "OnDemand",
                "licenseModel": "No License required",
                "usagetype": f"{prefix}BoxUsage:{instance_type}",
                "operation": "RunInstances",
            }
            items.append(
                _item("AmazonEC2", "Compute Instance", base, "Hrs", usd, reserved=round(usd * 0.62, 6))
            )
            decoys = [
                ({"operatingSystem": "Windows", "operation": "RunInstances:0002"}, usd + 0.184),
                ({"tenancy": "Dedicated", "usagetype": f"{prefix}DedicatedUsage:{instance_type}"}, usd * 1.1),
                (
                    {
                        "capacitystatus": "UnusedCapacityReservation",
                        "usagetype": f"{prefix}UnusedBox:{instance_type}",
                    },
                    usd,
                ),
                ({"capacitystatus": "AllocatedCapacityReservation"}, 0.0),
                ({"preInstalledSw": "SQL Web", "operation": "RunInstances:0200"}, usd + 0.067),
            ]
            for change, price in decoys:
                items.append(_item("AmazonEC2", "Compute Instance", dict(base, **change), "Hrs", price))
    for region, kinds in storage.items():
        location, prefix = LOCATIONS[region]
        where = {"regionCode": region, "location": location, "locationType": "AWS Region"}
        if "ebs-gp3" in kinds:
            gp3 = dict(
                where,
                volumeApiName="gp3",
                volumeType="General Purpose",
                usagetype=f"{prefix}EBS:VolumeUsage.gp3",
            )
            items.append(_item("AmazonEC2", "Storage", gp3, "GB-Mo", kinds["ebs-gp3"]))
            gp2 = dict(
                where,
                volumeApiName="gp2",
                volumeType="General Purpose",
                usagetype=f"{prefix}EBS:VolumeUsage.gp2",
            )
            items.append(_item("AmazonEC2", "Storage", gp2, "GB-Mo", 0.10))
            iops = dict(where, volumeApiName="gp3", usagetype=f"{prefix}EBS:VolumeP-IOPS.gp3")
            items.append(_item("AmazonEC2", "System Operation", iops, "IOPS-Mo", 0.005))
        if "efs-standard" in kinds:
            standard = dict(where, storageClass="General Purpose", usagetype=f"{prefix}TimedStorage-ByteHrs")
            items.append(_item("AmazonEFS", "Storage", standard, "GB-Mo", kinds["efs-standard"]))
            ia = dict(where, storageClass="Infrequent Access", usagetype=f"{prefix}IATimedStorage-ByteHrs")
            items.append(_item("AmazonEFS", "Storage", ia, "GB-Mo", 0.016))
            one_zone = dict(
                where, storageClass="One Zone-General Purpose", usagetype=f"{prefix}TimedStorage-Z-ByteHrs"
            )
            items.append(_item("AmazonEFS", "Storage", one_zone, "GB-Mo", 0.16))
    return items


class PricingStandIn:
    """The Price List Query API's GetProducts, served on 127.0.0.1 and a free port."""

    def __init__(self, items: list[dict]):
        self.items = items
        self.requests: list[dict] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                return

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                status, answer = stand_in.answer(self.headers, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, headers, body: dict) -> tuple[int, dict]:
        self.requests.append(body)
        authorization = headers.get("Authorization", "")
        if not authorization.startswith("AWS4-HMAC-SHA256 Credential="):
            return 400, _error("MissingAuthenticationTokenException", "Missing Authentication Token")
        if f"Credential={DENIED_ACCESS_KEY}/" in authorization:
            return 400, _error(
                "AccessDeniedException", "User is not authorized to perform: pricing:GetProducts"
            )
        if headers.get("X-Amz-Target") != "AWSPriceListService.GetProducts":
            return 400, _error(
                "InvalidParameterException", f"unsupported target {headers.get('X-Amz-Target')}"
            )
        matches = [item for item in self.items if _matches(item, body)]
        size = int(body.get("MaxResults", 100))
        if not 1 <= size <= 100:
            return 400, _error("InvalidParameterException", "MaxResults must be between 1 and 100")
        start = int(body.get("NextToken") or 0)
        answer = {
            "FormatVersion": "aws_v1",
            "PriceList": [json.dumps(i) for i in matches[start : start + size]],
        }
        if start + size < len(matches):
            answer["NextToken"] = str(start + size)
        return 200, answer


def _matches(item: dict, body: dict) -> bool:
    if item["serviceCode"] != body.get("ServiceCode"):
        return False
    attributes = dict(item["product"]["attributes"], productFamily=item["product"]["productFamily"])
    for term in body.get("Filters", []):
        if term["Type"] != "TERM_MATCH" or attributes.get(term["Field"]) != term["Value"]:
            return False
    return True


def _error(code: str, message: str) -> dict:
    return {"__type": code, "message": message}


def aws_test_env(home: Path, **endpoints: str) -> dict[str, str]:
    """An environment with test credentials, no host AWS config, and endpoints set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        HOME=str(home),
        AWS_ACCESS_KEY_ID="AKIATESTPARHELION",
        AWS_SECRET_ACCESS_KEY="test-secret",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    env.update(endpoints)
    return env
