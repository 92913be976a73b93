"""moto's server, plus the AWS Budgets operations it does not emulate.

moto 5 keeps budgets and their notifications but has no UpdateBudget and no subscriber
calls (DescribeSubscribersForNotification, CreateSubscriber, DeleteSubscriber), which the
parhelion.platform.aws_budget module uses as it would against AWS. These stand-ins work on
moto's own stored budgets, as the Budgets API documents the operations: UpdateBudget
replaces the budget's definition (its time period is kept unless given), subscribers are
per notification. Run as a script with moto_server's arguments.
"""

from __future__ import annotations

import json
import sys


def _plain(notification: dict) -> tuple:
    return (
        notification["NotificationType"],
        notification["ComparisonOperator"],
        float(notification["Threshold"]),
        notification.get("ThresholdType", "PERCENTAGE"),
    )


def install() -> None:
    from moto.budgets.exceptions import NotFoundException
    from moto.budgets.responses import BudgetsResponse

    def _budget(self, account: str, name: str):
        try:
            return self.backend.budgets[account][name]
        except KeyError:
            raise NotFoundException(f"Unable to get budget: {name} - the budget doesn't exist.") from None

    def _notification(self):
        budget = _budget(self, self._get_param("AccountId"), self._get_param("BudgetName"))
        wanted = _plain(self._get_param("Notification"))
        for notification in budget.notifications:
            if _plain(notification.details) == wanted:
                return notification
        raise NotFoundException("Unable to find the notification - it doesn't exist.")

    def update_budget(self) -> str:
        new = self._get_param("NewBudget")
        budget = _budget(self, self._get_param("AccountId"), new["BudgetName"])
        new.setdefault("TimePeriod", budget.budget.get("TimePeriod"))
        new["LastUpdatedTime"] = budget.budget.get("LastUpdatedTime")
        budget.budget = new
        return json.dumps({})

    def describe_subscribers_for_notification(self) -> str:
        return json.dumps({"Subscribers": list(_notification(self).subscribers)})

    def create_subscriber(self) -> str:
        _notification(self).subscribers.append(self._get_param("Subscriber"))
        return json.dumps({})

    def delete_subscriber(self) -> str:
        notification = _notification(self)
        gone = self._get_param("Subscriber")
        notification.subscribers = [s for s in notification.subscribers if s != gone]
        return json.dumps({})

    for operation in (
        update_budget,
        describe_subscribers_for_notification,
        create_subscriber,
        delete_subscriber,
    ):
        setattr(BudgetsResponse, operation.__name__, operation)


if __name__ == "__main__":
    install()
    from moto.server import main

    main(sys.argv[1:])
