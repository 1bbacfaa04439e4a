"""CloudWatch: alarms, stored and never evaluated."""

from __future__ import annotations

from typing import Any

from tsm_infra.emulator.registry import Context, Installed, provider
from tsm_infra.emulator.resources import Emulated, EmulatedType, Request
from tsm_infra.emulator.services.common import types


@provider(
    "cloudwatch-alarm",
    emulates="CloudWatch alarms are created but never evaluated.",
)
def cloudwatch_alarm(ctx: Context) -> Installed:
    from moto.cloudwatch.models import cloudwatch_backends  # noqa: PLC0415

    def put(req: Request, name: str) -> Emulated:
        backend: Any = cloudwatch_backends[req.account][req.region]
        p = req.properties
        backend.put_metric_alarm(
            name=name,
            namespace=p.get("Namespace"),
            metric_name=p.get("MetricName"),
            comparison_operator=p.get("ComparisonOperator"),
            evaluation_periods=int(p.get("EvaluationPeriods", 1)),
            period=int(p.get("Period", 60)),
            threshold=float(p.get("Threshold", 0)),
            statistic=p.get("Statistic"),
            description=p.get("AlarmDescription"),
            dimensions=[
                {"Name": d["Name"], "Value": str(d["Value"])} for d in p.get("Dimensions") or []
            ],
            alarm_actions=list(p.get("AlarmActions") or []),
            treat_missing_data=p.get("TreatMissingData"),
        )
        arn = f"arn:aws:cloudwatch:{req.region}:{req.account}:alarm:{name}"
        return Emulated(name, {"Arn": arn}, lambda: backend.delete_alarms([name]))

    def create(req: Request) -> Emulated:
        return put(req, str(req.properties.get("AlarmName") or req.name))

    def update(original: Emulated, req: Request) -> Emulated:
        name = str(req.properties.get("AlarmName") or original.physical_id)
        if name != original.physical_id:
            made = put(req, name)
            original.delete(req.account, req.region)
            return made
        return put(req, name)  # PutMetricAlarm overwrites in place

    return [types(AWS__CloudWatch__Alarm=EmulatedType(create, update))]
