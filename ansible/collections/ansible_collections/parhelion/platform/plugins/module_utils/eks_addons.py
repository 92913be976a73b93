# Copyright: Parhelion developers
# BSD-3-Clause (see LICENSE in the repository)
"""What eks_addon and eks_addon_info share: reading an add-on as EKS describes it, its
configuration values as data (EKS keeps them as the JSON or YAML text it was given, so two
texts of the same values must compare equal), its health as a sentence, and waiting for it
with a bounded timeout that ends in a message naming the add-on, its status and its issues."""

from __future__ import annotations

import json
import time

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code

try:
    import yaml
except ImportError:  # ansible-core depends on PyYAML; this is only for a broken install
    yaml = None

# Statuses EKS moves an add-on out of by itself; DEGRADED is among them because a driver whose
# pods are still being scheduled (nodes starting) reports it and then turns ACTIVE.
SETTLING = ("CREATING", "UPDATING", "DELETING", "DEGRADED")
FAILED = ("CREATE_FAILED", "UPDATE_FAILED", "DELETE_FAILED")
BUSY = ("CREATING", "UPDATING", "DELETING")  # EKS refuses UpdateAddon in these


class AddonError(Exception):
    """An add-on that did not reach the state asked for; the message says which and why."""


def configuration_of(text):
    """An add-on's configuration values as data: EKS accepts (and returns) JSON or YAML text."""
    if not text:
        return {}
    try:
        return json.loads(text)
    except ValueError:
        if yaml is None:
            raise
        return yaml.safe_load(text) or {}


def configuration_text(values):
    """What is sent to EKS: compact JSON with sorted keys, so a run sends the same text twice."""
    return json.dumps(values, sort_keys=True, separators=(",", ":"))


def health_of(addon):
    """The add-on's health issues as one sentence ("" when it has none)."""
    issues = (addon.get("health") or {}).get("issues") or []
    said = []
    for issue in issues:
        where = ", ".join(issue.get("resourceIds") or [])
        said.append(
            f"{issue.get('code', 'issue')}: {issue.get('message', '').strip()}"
            + (f" ({where})" if where else "")
        )
    return "; ".join(said)


def described(addon):
    """An add-on for a module's result: snake_case keys, configuration values as data."""
    result = camel_dict_to_snake_dict(addon, ignore_list=["tags"])
    result["configuration_values"] = configuration_of(addon.get("configurationValues"))
    return result


class Addons:
    """The EKS add-on calls of one cluster, with the waits a provisioner needs."""

    def __init__(self, client, cluster, sleep=time.sleep, clock=time.monotonic):
        self.client, self.cluster = client, cluster
        self.sleep, self.clock = sleep, clock

    def describe(self, name):
        """The add-on as DescribeAddon returns it, or None if it (or the cluster) is not there."""
        try:
            return self.client.describe_addon(clusterName=self.cluster, addonName=name)["addon"]
        except is_boto3_error_code("ResourceNotFoundException"):
            return None

    def names(self):
        """Every add-on of the cluster, or None if the cluster does not exist."""
        try:
            pages = self.client.get_paginator("list_addons").paginate(clusterName=self.cluster)
            return [name for page in pages for name in page.get("addons", [])]
        except is_boto3_error_code("ResourceNotFoundException"):
            return None

    def _poll(self, timeout, look):
        """Call look() until it returns something other than None, or timeout seconds pass
        (then look(final=True) says why). Polls quickly at first, then every 15 s."""
        deadline = self.clock() + timeout
        delay = 2
        while True:
            found = look(final=self.clock() >= deadline)
            if found is not None:
                return found
            self.sleep(max(0.0, min(delay, deadline - self.clock())))
            delay = min(delay * 2, 15)

    def wait_active(self, name, timeout):
        """Wait for ACTIVE; a failed status stops at once, a timeout names the last status."""

        def look(final):
            addon = self.describe(name)
            if addon is None:
                raise AddonError(
                    f"EKS add-on {name} of cluster {self.cluster} disappeared while waiting for it"
                )
            status = addon.get("status")
            if status == "ACTIVE":
                return addon
            if status in FAILED or final:
                health = health_of(addon)
                why = f"is {status}" if status in FAILED else f"is still {status} after {timeout} s"
                raise AddonError(
                    f"EKS add-on {name} of cluster {self.cluster} {why}"
                    + (f"; health: {health}" if health else "; EKS reports no health issues")
                )
            return None

        return self._poll(timeout, look)

    def wait_gone(self, name, timeout):
        def look(final):
            addon = self.describe(name)
            if addon is None:
                return True
            if addon.get("status") == "DELETE_FAILED" or final:
                health = health_of(addon)
                raise AddonError(
                    f"EKS add-on {name} of cluster {self.cluster} is {addon.get('status')}, not deleted"
                    + (f" after {timeout} s" if final else "")
                    + (f"; health: {health}" if health else "")
                )
            return None

        return self._poll(timeout, look)

    def wait_update(self, name, update_id, timeout):
        """Follow an UpdateAddon to its end, as DescribeUpdate reports it (EKS's documented way)."""

        def look(final):
            update = self.client.describe_update(name=self.cluster, updateId=update_id, addonName=name)[
                "update"
            ]
            status = update.get("status")
            if status == "Successful":
                return update
            if status in ("Failed", "Cancelled") or final:
                errors = "; ".join(
                    f"{e.get('errorCode')}: {e.get('errorMessage')}" for e in update.get("errors") or []
                )
                raise AddonError(
                    f"the update of EKS add-on {name} of cluster {self.cluster} is {status}"
                    + (f" after {timeout} s" if status not in ("Failed", "Cancelled") else "")
                    + (f": {errors}" if errors else "")
                )
            return None

        return self._poll(timeout, look)
