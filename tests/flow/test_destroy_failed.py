"""destroy removes a Core stack that a failed create left with deletion protection on."""

from __future__ import annotations

import json
from typing import Any

from tests.flow.conftest import client
from tsm_infra.aws import CallCounter, Connector
from tsm_infra.emulator import LocalAws
from tsm_infra.plan import destroy_plan
from tsm_infra.rehearsal import prepare_accounts
from tsm_infra.run import Options, execute
from tsm_infra.spec import Cluster

# A database and a load balancer, both protected, and a record in a zone that does not exist:
# the create fails after both are made, and rollback is off, as tsm-infra deploys.
FAILING_CORE: dict[str, Any] = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Resources": {
        "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.9.0.0/16"}},
        "Subnet": {
            "Type": "AWS::EC2::Subnet",
            "Properties": {"VpcId": {"Ref": "Vpc"}, "CidrBlock": "10.9.0.0/20"},
        },
        "Database": {
            "Type": "AWS::RDS::DBInstance",
            "DeletionPolicy": "Snapshot",
            "Properties": {
                "Engine": "postgres",
                "DBInstanceClass": "db.t4g.micro",
                "AllocatedStorage": "20",
                "MasterUsername": "tsm",
                "ManageMasterUserPassword": True,
                "DeletionProtection": True,
            },
        },
        "LoadBalancer": {
            "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer",
            "Properties": {
                "Type": "network",
                "Subnets": [{"Ref": "Subnet"}],
                "LoadBalancerAttributes": [{"Key": "deletion_protection.enabled", "Value": "true"}],
            },
        },
        "Record": {
            "Type": "AWS::Route53::RecordSet",
            "DependsOn": ["Database", "LoadBalancer"],
            "Properties": {
                "HostedZoneId": "Z0000000NOSUCHZONE",
                "Name": "x.example.com",
                "Type": "A",
                "TTL": "60",
                "ResourceRecords": ["192.0.2.1"],
            },
        },
    },
}


def test_destroy_lifts_protection_of_a_failed_core_stack(cluster: Cluster) -> None:
    node = cluster.nodes[0]
    name = f"tsm-{cluster.name}-node0-core"
    with LocalAws() as aws:
        prepare_accounts(aws, cluster.nodes)
        cfn = client(aws, node, "cloudformation")
        created = cfn.create_change_set(
            StackName=name,
            ChangeSetName="first",
            ChangeSetType="CREATE",
            TemplateBody=json.dumps(FAILING_CORE),
        )
        cfn.get_waiter("change_set_create_complete").wait(ChangeSetName=created["Id"])
        cfn.execute_change_set(ChangeSetName=created["Id"], DisableRollback=True)
        status = cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
        assert status == "CREATE_FAILED"
        rds = client(aws, node, "rds")
        assert [d["DeletionProtection"] for d in rds.describe_db_instances()["DBInstances"]] == [
            True
        ]

        counter = CallCounter()
        result = execute(
            destroy_plan(cluster),
            Connector(endpoint_url=aws.endpoint_url, counter=counter),
            options=Options(poll_interval=0.01),
        )

        outcomes = {o.stack: o.result for o in result.outcomes}
        assert outcomes[name] == "deleted", result.to_dict()
        live = [s["StackName"] for s in cfn.describe_stacks()["Stacks"]]
        assert name not in live
        assert rds.describe_db_instances()["DBInstances"] == []
        assert len(rds.describe_db_snapshots()["DBSnapshots"]) == 1  # DeletionPolicy Snapshot
        lifted = [a for a in result.actions if "deletion protection turned off" in a]
        assert [a.split(" on ", 1)[1].split()[0] for a in lifted] == ["database", "load"]
        calls = counter.counts()
        # on the resources themselves, never by a stack update (it would replace the node)
        assert calls["rds:ModifyDBInstance"] == 1
        assert calls["elbv2:ModifyLoadBalancerAttributes"] == 1
        assert "cloudformation:CreateChangeSet" not in calls
