#!/usr/bin/python
# Copyright: Parhelion developers
# BSD-3-Clause (see LICENSE in the repository)
"""AWS Budgets for Ansible: neither amazon.aws nor community.aws manages them."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: aws_budget
short_description: Manage an AWS Budgets cost budget and its alert notifications
version_added: "2026.11.0"
description:
  - Creates, updates in place (UpdateBudget) or deletes a cost budget of an account, with its
    notifications (actual or forecasted spend above a percentage of the limit) and their
    e-mail or SNS subscribers.
  - Idempotent; a budget already as asked is left alone. Supports check and diff modes.
  - Parhelion uses it for the account's or the cluster's monthly spend alarm, which is a
    backstop behind the platform's own per-user and per-group caps.
options:
  name:
    description: The budget's name (unique in the account).
    type: str
    required: true
  state:
    description: Whether the budget should exist.
    type: str
    choices: [present, absent]
    default: present
  account_id:
    description: The account; by default the caller's (from STS).
    type: str
  amount:
    description: The limit, in O(currency), per O(time_unit). Required when O(state=present).
    type: float
  currency:
    description: The currency of O(amount).
    type: str
    default: USD
  time_unit:
    description: The period the limit applies to.
    type: str
    choices: [DAILY, MONTHLY, QUARTERLY, ANNUALLY]
    default: MONTHLY
  cost_filters:
    description:
      - "Which costs count, as the Budgets API's CostFilters, for example
        C({\"TagKeyValue\": [\"user:parhelion.dev/cluster$parhelion\"]}) for one cluster's tagged
        resources. Empty counts the whole account."
    type: dict
    default: {}
  notifications:
    description: Alerts; any notification of the budget not listed here is removed.
    type: list
    elements: dict
    default: []
    suboptions:
      threshold:
        description: Percent of the limit (C(threshold_type=PERCENTAGE)) or an amount.
        type: float
        required: true
      threshold_type:
        description: How O(notifications[].threshold) is read.
        type: str
        choices: [PERCENTAGE, ABSOLUTE_VALUE]
        default: PERCENTAGE
      notification_type:
        description: Alert on spend so far, or on the forecast for the period.
        type: str
        choices: [ACTUAL, FORECASTED]
        default: ACTUAL
      comparison:
        description: The comparison with the threshold.
        type: str
        choices: [GREATER_THAN, LESS_THAN, EQUAL_TO]
        default: GREATER_THAN
      emails:
        description: E-mail addresses to alert.
        type: list
        elements: str
        default: []
      sns_topics:
        description: SNS topic ARNs to alert.
        type: list
        elements: str
        default: []
extends_documentation_fragment:
  - parhelion.platform.common
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: The cluster's monthly spend, with alerts at 80% (actual) and 100% (forecast)
  parhelion.platform.aws_budget:
    name: parhelion-monthly
    amount: 2000
    cost_filters:
      TagKeyValue: ["user:parhelion.dev/cluster$parhelion"]
    notifications:
      - {threshold: 80, emails: [platform-team@example.org]}
      - {threshold: 100, notification_type: FORECASTED, emails: [platform-team@example.org]}

- name: No budget any more
  parhelion.platform.aws_budget:
    name: parhelion-monthly
    state: absent
"""

RETURN = r"""
budget:
  description: The budget as the Budgets API describes it (absent when deleted).
  returned: when O(state=present)
  type: dict
notifications:
  description: The budget's notifications and their subscribers, as asked.
  returned: when O(state=present)
  type: list
  elements: dict
"""

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports a missing botocore

NOTIFICATION_OPTIONS = {
    "threshold": {"type": "float", "required": True},
    "threshold_type": {"type": "str", "choices": ["PERCENTAGE", "ABSOLUTE_VALUE"], "default": "PERCENTAGE"},
    "notification_type": {"type": "str", "choices": ["ACTUAL", "FORECASTED"], "default": "ACTUAL"},
    "comparison": {
        "type": "str",
        "choices": ["GREATER_THAN", "LESS_THAN", "EQUAL_TO"],
        "default": "GREATER_THAN",
    },
    "emails": {"type": "list", "elements": "str", "default": []},
    "sns_topics": {"type": "list", "elements": "str", "default": []},
}


def _amount(value):
    """Budgets returns amounts as strings ("2000.0"); compare numbers, send a plain string."""
    return f"{float(value):g}"


def wanted_budget(params):
    return {
        "BudgetName": params["name"],
        "BudgetType": "COST",
        "TimeUnit": params["time_unit"],
        "BudgetLimit": {"Amount": _amount(params["amount"]), "Unit": params["currency"]},
        "CostFilters": {key: list(values) for key, values in (params["cost_filters"] or {}).items()},
    }


def comparable_budget(budget):
    limit = budget.get("BudgetLimit") or {}
    return {
        "BudgetName": budget["BudgetName"],
        "BudgetType": budget.get("BudgetType", "COST"),
        "TimeUnit": budget.get("TimeUnit"),
        "BudgetLimit": {"Amount": _amount(limit.get("Amount", 0)), "Unit": limit.get("Unit", "USD")},
        "CostFilters": {key: sorted(values) for key, values in (budget.get("CostFilters") or {}).items()},
    }


def plain_notification(notification):
    """The fields that identify a notification (the API adds NotificationState and the like)."""
    return {
        "NotificationType": notification["NotificationType"],
        "ComparisonOperator": notification["ComparisonOperator"],
        "Threshold": float(notification["Threshold"]),
        "ThresholdType": notification.get("ThresholdType", "PERCENTAGE"),
    }


def notification_key(notification):
    return (
        notification["NotificationType"],
        notification["ComparisonOperator"],
        float(notification["Threshold"]),
        notification.get("ThresholdType", "PERCENTAGE"),
    )


def wanted_notifications(params):
    wanted = {}
    for item in params["notifications"]:
        notification = {
            "NotificationType": item["notification_type"],
            "ComparisonOperator": item["comparison"],
            "Threshold": float(item["threshold"]),
            "ThresholdType": item["threshold_type"],
        }
        subscribers = [{"SubscriptionType": "EMAIL", "Address": a} for a in item["emails"]]
        subscribers += [{"SubscriptionType": "SNS", "Address": a} for a in item["sns_topics"]]
        wanted[notification_key(notification)] = (notification, subscribers)
    return wanted


def subscriber_set(subscribers):
    return sorted((s["SubscriptionType"], s["Address"]) for s in subscribers)


class Budgets:
    """The few Budgets calls this module makes, for one account."""

    def __init__(self, module, account_id):
        self.module = module
        self.client = module.client("budgets")
        self.account = account_id

    def describe(self, name):
        try:
            return self.client.describe_budget(AccountId=self.account, BudgetName=name)["Budget"]
        except is_boto3_error_code("NotFoundException"):
            return None

    def notifications(self, name):
        found = {}
        pages = self.client.get_paginator("describe_notifications_for_budget")
        for page in pages.paginate(AccountId=self.account, BudgetName=name):
            for notification in page.get("Notifications") or []:
                notification = plain_notification(notification)
                subscribers = self.client.describe_subscribers_for_notification(
                    AccountId=self.account, BudgetName=name, Notification=notification
                ).get("Subscribers", [])
                found[notification_key(notification)] = (notification, subscribers)
        return found

    def create(self, budget, notifications):
        self.client.create_budget(
            AccountId=self.account,
            Budget=budget,
            NotificationsWithSubscribers=[
                {"Notification": n, "Subscribers": s} for n, s in notifications.values()
            ],
        )

    def update(self, budget):
        self.client.update_budget(AccountId=self.account, NewBudget=budget)

    def delete(self, name):
        self.client.delete_budget(AccountId=self.account, BudgetName=name)

    def sync_notifications(self, name, have, want):
        """Make the budget's notifications and subscribers those asked; True if anything changed."""
        changed = False
        for key, (notification, _) in have.items():
            if key not in want:
                self.client.delete_notification(
                    AccountId=self.account, BudgetName=name, Notification=notification
                )
                changed = True
        for key, (notification, subscribers) in want.items():
            if key not in have:
                self.client.create_notification(
                    AccountId=self.account,
                    BudgetName=name,
                    Notification=notification,
                    Subscribers=subscribers,
                )
                changed = True
                continue
            old = set(subscriber_set(have[key][1]))
            new = set(subscriber_set(subscribers))
            for kind, address in new - old:
                self.client.create_subscriber(
                    AccountId=self.account,
                    BudgetName=name,
                    Notification=have[key][0],
                    Subscriber={"SubscriptionType": kind, "Address": address},
                )
            for kind, address in old - new:
                self.client.delete_subscriber(
                    AccountId=self.account,
                    BudgetName=name,
                    Notification=have[key][0],
                    Subscriber={"SubscriptionType": kind, "Address": address},
                )
            changed = changed or old != new
        return changed


def described(notifications):
    return [
        {"notification": n, "subscribers": sorted(s, key=lambda x: (x["SubscriptionType"], x["Address"]))}
        for _, (n, s) in sorted(notifications.items())
    ]


def main():
    argument_spec = {
        "name": {"type": "str", "required": True},
        "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        "account_id": {"type": "str"},
        "amount": {"type": "float"},
        "currency": {"type": "str", "default": "USD"},
        "time_unit": {
            "type": "str",
            "choices": ["DAILY", "MONTHLY", "QUARTERLY", "ANNUALLY"],
            "default": "MONTHLY",
        },
        "cost_filters": {"type": "dict", "default": {}},
        "notifications": {"type": "list", "elements": "dict", "default": [], "options": NOTIFICATION_OPTIONS},
    }
    module = AnsibleAWSModule(
        argument_spec=argument_spec,
        required_if=[("state", "present", ["amount"])],
        supports_check_mode=True,
    )
    params = module.params
    name = params["name"]
    try:
        account = params["account_id"] or module.client("sts").get_caller_identity()["Account"]
        budgets = Budgets(module, account)
        current = budgets.describe(name)
        if params["state"] == "absent":
            if current is not None and not module.check_mode:
                budgets.delete(name)
            module.exit_json(
                changed=current is not None,
                diff={"before": {"budget": comparable_budget(current)} if current else {}, "after": {}},
            )
        want = wanted_budget(params)
        want_notifications = wanted_notifications(params)
        if current is None:
            if not module.check_mode:
                budgets.create(want, want_notifications)
            module.exit_json(
                changed=True,
                budget=want,
                notifications=described(want_notifications),
                diff={"before": {}, "after": {"budget": comparable_budget(want)}},
            )
        have_notifications = budgets.notifications(name)
        before = {"budget": comparable_budget(current), "notifications": described(have_notifications)}
        after = {"budget": comparable_budget(want), "notifications": described(want_notifications)}
        changed = before != after
        if changed and not module.check_mode:
            if before["budget"] != after["budget"]:
                budgets.update(want)
            budgets.sync_notifications(name, have_notifications, want_notifications)
            current = budgets.describe(name)
        module.exit_json(
            changed=changed,
            budget=current if not changed or not module.check_mode else want,
            notifications=after["notifications"],
            diff={"before": before, "after": after},
        )
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
        module.fail_json_aws(error, msg=f"AWS Budgets: budget {name!r}")


if __name__ == "__main__":
    main()
